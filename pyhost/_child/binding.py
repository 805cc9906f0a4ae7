"""The listening socket, bound by the child itself (child side).

Every backend serves this socket: a bind failure is an ``OSError`` with an
errno here (``werkzeug.serving.make_server`` would print and ``sys.exit(1)``),
reported as a typed record before the app is even imported.
"""
import errno
import os
import socket

from .. import protocol
from .failures import NETWORK_ERROR, PORT_IN_USE, record

__all__ = ["bind", "classify_bind_error"]


def bind(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host not in ("", "0.0.0.0", "::") and not _is_literal_ip(host):
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
    # proto=IPPROTO_TCP, as getaddrinfo() would give: asyncio (uvicorn) sets
    # TCP_NODELAY on accepted connections only when the socket says it is TCP,
    # and without it small responses wait ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Not SO_REUSEPORT: two servers on one port must be an error, but a
        # restart must not wait for the old socket's TIME_WAIT.
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _is_literal_ip(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


def classify_bind_error(exc, spec):
    port = spec["port"]
    host = spec["host"]
    if exc.errno == errno.EADDRINUSE:
        found = record(
            PORT_IN_USE,
            protocol.port_in_use_message(port, "another program (%s:%d)" % (host, port)), exc,
            with_traceback=False)
    elif exc.errno == errno.EACCES:
        found = record(NETWORK_ERROR, "Permission denied binding %s:%d (ports below 1024 "
                       "need privileges)" % (host, port), exc, with_traceback=False)
    elif exc.errno == errno.EADDRNOTAVAIL:
        found = record(NETWORK_ERROR, "Cannot bind %s:%d: the address is not available on "
                       "this machine" % (host, port), exc, with_traceback=False)
    else:
        found = record(NETWORK_ERROR, "Cannot bind %s:%d: %s" % (host, port, exc), exc,
                       with_traceback=False)
    found["port"] = port
    found["details"].update(host=host, errno=exc.errno)
    return found
