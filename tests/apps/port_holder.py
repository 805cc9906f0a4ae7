"""Listens on a free port, prints it, and holds it until stdin closes: another
program on the port, with whatever arguments the test gives it."""
import socket
import sys

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
print(sock.getsockname()[1], flush=True)
sys.stdin.read()
