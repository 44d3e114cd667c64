"""A multiprocessing.connection Client: mp_client.py PORT AUTHKEY_HEX

Prints "AUTH FAILED <reason>" and exits 3 when authentication fails,
"AUTH OK" before running mp_echo.exchange otherwise.
"""
import sys
from multiprocessing.connection import Client, AuthenticationError

import mp_echo

try:
    conn = Client(('127.0.0.1', int(sys.argv[1])), authkey=bytes.fromhex(sys.argv[2]))
except (AuthenticationError, EOFError, ConnectionError) as e:
    print("AUTH FAILED", type(e).__name__, e, flush=True)
    sys.exit(3)
print("AUTH OK", flush=True)
mp_echo.exchange(conn)
