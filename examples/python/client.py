# A multiprocessing.connection Client, as a Python service would write it.
# The Go example passes the address and the authkey in the environment.
import os
import sys
from multiprocessing.connection import Client

address = ("127.0.0.1", int(os.environ["MP_PORT"]))
authkey = bytes.fromhex(os.environ["MP_AUTHKEY"])

with Client(address, authkey=authkey) as conn:
    conn.send_bytes(b"hello from Python " + sys.version.split()[0].encode())
    while True:
        msg = conn.recv_bytes()
        if msg == b"bye":
            break
        conn.send_bytes(msg.upper())
