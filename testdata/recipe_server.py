"""The Python Cookbook recipe 11.9 server, as deployed: the recipe's own
server_authenticate with a digest passed to hmac.new (the printed recipe
omits it, which fails on Python 3.8 and later).

Usage: recipe_server.py KEY_HEX DIGEST

Listens on 127.0.0.1 on a free port, prints "PORT <n>", authenticates one
client and echoes what it sends until it closes. Prints "AUTH OK" or
"AUTH FAILED" (exit status 3).
"""
import hmac
import os
import sys
from socket import socket, AF_INET, SOCK_STREAM

DIGEST = sys.argv[2]


def server_authenticate(connection, secret_key):
    '''
    Request client authentication.
    '''
    message = os.urandom(32)
    connection.send(message)
    hash = hmac.new(secret_key, message, DIGEST)
    digest = hash.digest()
    response = connection.recv(len(digest))
    return hmac.compare_digest(digest, response)


def echo_handler(client_sock, secret_key):
    if not server_authenticate(client_sock, secret_key):
        client_sock.close()
        print("AUTH FAILED", flush=True)
        sys.exit(3)
    print("AUTH OK", flush=True)
    while True:
        msg = client_sock.recv(8192)
        if not msg:
            break
        client_sock.sendall(msg)
    client_sock.close()


def main():
    secret_key = bytes.fromhex(sys.argv[1])
    s = socket(AF_INET, SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    s.listen(5)
    print("PORT", s.getsockname()[1], flush=True)
    c, a = s.accept()
    s.close()
    echo_handler(c, secret_key)


main()
