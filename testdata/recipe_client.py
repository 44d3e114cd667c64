"""The Python Cookbook recipe 11.9 client, as deployed: the recipe's own
client_authenticate with a digest passed to hmac.new (the printed recipe
omits it, which fails on Python 3.8 and later).

Usage: recipe_client.py PORT KEY_HEX DIGEST

Authenticates to 127.0.0.1:PORT, sends b'Hello World' and prints the reply
as "REPLY <hex>", or "CLOSED" (exit status 3) if the server hung up.
"""
import hmac
import sys
from socket import socket, AF_INET, SOCK_STREAM

DIGEST = sys.argv[3]


def client_authenticate(connection, secret_key):
    '''
    Authenticate client to a remote service.
    connection represents a network connection.
    secret_key is a key known only to both client/server.
    '''
    message = connection.recv(32)
    hash = hmac.new(secret_key, message, DIGEST)
    digest = hash.digest()
    connection.send(digest)


def main():
    secret_key = bytes.fromhex(sys.argv[2])
    s = socket(AF_INET, SOCK_STREAM)
    s.settimeout(10)
    s.connect(('127.0.0.1', int(sys.argv[1])))
    client_authenticate(s, secret_key)
    try:
        s.send(b'Hello World')
        resp = s.recv(1024)
    except ConnectionError:
        resp = b''
    if not resp:
        print("CLOSED", flush=True)
        sys.exit(3)
    print("REPLY", resp.hex(), flush=True)
    s.close()


main()
