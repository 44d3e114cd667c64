"""A multiprocessing.connection Listener: mp_listener.py AUTHKEY_HEX

Prints "PORT <n>", accepts one connection and prints "AUTH FAILED <reason>"
(exit status 3) or "AUTH OK" before running mp_echo.exchange.
"""
import sys
from multiprocessing.connection import Listener, AuthenticationError

import mp_echo

with Listener(('127.0.0.1', 0), authkey=bytes.fromhex(sys.argv[1])) as listener:
    print("PORT", listener.address[1], flush=True)
    try:
        conn = listener.accept()
    except (AuthenticationError, EOFError, ConnectionError) as e:
        print("AUTH FAILED", type(e).__name__, e, flush=True)
        sys.exit(3)
print("AUTH OK", flush=True)
mp_echo.exchange(conn)
