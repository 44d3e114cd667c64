"""A multiprocessing.connection Client: mp_client.py PORT|PATH AUTHKEY_HEX

A number is a TCP port on 127.0.0.1; anything else a Unix socket path.

Prints "AUTH FAILED <reason>" and exits 3 when authentication fails,
"AUTH OK" before running mp_echo.exchange otherwise.
"""
import sys
from multiprocessing.connection import Client, AuthenticationError

import mp_echo

where = sys.argv[1]
address = ('127.0.0.1', int(where)) if where.isdigit() else where
try:
    conn = Client(address, authkey=bytes.fromhex(sys.argv[2]))
except (AuthenticationError, EOFError, ConnectionError) as e:
    print("AUTH FAILED", type(e).__name__, e, flush=True)
    sys.exit(3)
print("AUTH OK", flush=True)
mp_echo.exchange(conn)
