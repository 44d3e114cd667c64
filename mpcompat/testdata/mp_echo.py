"""The message exchange shared by mp_client.py and mp_listener.py.

Python speaks first: a 25,600-byte message (over CPython's 16 KiB
single-write threshold) and its version. Then it echoes: every message it
receives comes back as b'echo:' + the message reversed, until b'bye'.
"""
import sys


def big_message():
    return bytes(range(256)) * 100


def exchange(conn):
    conn.send_bytes(big_message())
    conn.send_bytes(b'python ' + sys.version.split()[0].encode())
    while True:
        msg = conn.recv_bytes()
        if msg == b'bye':
            break
        conn.send_bytes(b'echo:' + msg[::-1])
    conn.close()
