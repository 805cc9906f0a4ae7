"""The messages the parent and the child exchange, and the constants both sides share.

Standard library only, and importing nothing from pyhost: the child imports it
too, also when another interpreter (``HostConfig.python``) loads the child's
code by path without pyhost installed.

On the pipe a message travels as a plain tuple, ``("Bound", 8123, ...)``: its
class name, then its fields. Both sides turn tuples into the named tuples
below with :func:`decode` and back with :func:`encode`, so no pyhost class is
ever pickled across the boundary (the two sides may even run different copies
of this file). Errors travel as plain dicts (``Failed.record``), never as
pickled exceptions.

Child → parent, in order: ``Hello`` (pyhost's code runs), ``Loaded`` (the app
was imported), ``Bound`` (the socket listens and the server serves), then at
most one of ``Failed`` or ``Stopped``; ``WorkerExited`` and ``Workers`` at any
time while a multi-worker server runs. Parent → child: ``Stop``.
"""
import enum
from typing import Any, Dict, NamedTuple, Tuple

__all__ = [
    "Hello", "Loaded", "Bound", "Failed", "Stopped", "Workers", "WorkerExited", "Stop",
    "Message", "encode", "decode", "ProtocolError",
    "ErrorType", "PROBE_AGENT", "EXIT_REPORTED", "STACKS_SIGNAL", "connect_address",
    "port_in_use_message",
]

#: The User-Agent of the parent's health probes (servers leave them out of the request log).
PROBE_AGENT = "pyhost-health"

#: The child's exit code after a failure it reported over the pipe.
EXIT_REPORTED = 3

#: The signal on which the child writes every thread's Python stack to its
#: stderr (``faulthandler.register``), asked before a hung child is killed.
#: A name, not a number: resolved with ``getattr(signal, STACKS_SIGNAL, None)``.
STACKS_SIGNAL = "SIGUSR1"


def connect_address(address: Tuple[str, int]) -> Tuple[str, int]:
    """Where to connect to reach a server bound at ``address``: a wildcard means loopback."""
    host = address[0]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, address[1]


class ErrorType(str, enum.Enum):
    """What went wrong: the ``type`` of every error record (``pyhost.errors`` has a class each)."""

    PYTHON_NOT_FOUND = "PYTHON_NOT_FOUND"
    SCRIPT_NOT_FOUND = "SCRIPT_NOT_FOUND"
    DEPENDENCY_ERROR = "DEPENDENCY_ERROR"
    PORT_IN_USE = "PORT_IN_USE"
    PROCESS_SPAWN_ERROR = "PROCESS_SPAWN_ERROR"
    PROCESS_CRASH = "PROCESS_CRASH"
    HEALTH_CHECK_TIMEOUT = "HEALTH_CHECK_TIMEOUT"
    NETWORK_ERROR = "NETWORK_ERROR"
    APP_LOAD_ERROR = "APP_LOAD_ERROR"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"

    def __str__(self) -> str:
        return self.value



def port_in_use_message(port: int, holder: str = "another program") -> str:
    """What both sides say when the port is taken (the child before it knows who holds it)."""
    return ("Port %s is in use by %s. Either identify and stop it, or start with a different "
            "port (port=0 picks a free one)." % (port, holder))


class ProtocolError(ValueError):
    """A message that is not one of this module's (a different pyhost on the other side)."""


# ------------------------------------------------------------------ child → parent
class Hello(NamedTuple):
    """pyhost's code runs in the child (it did not die in multiprocessing's bootstrap)."""

    pid: int


class Loaded(NamedTuple):
    """The target was imported; ``kind`` is ``"wsgi"`` or ``"asgi"``."""

    seconds: float
    kind: str = "wsgi"


class Bound(NamedTuple):
    """The socket listens on ``port`` and ``server`` serves the app (readiness, pushed)."""

    port: int
    server: str = "werkzeug"


class Failed(NamedTuple):
    """Startup failed; ``record`` is an error record (``type``, ``message``, ``details``...)."""

    record: Dict[str, Any]


class Stopped(NamedTuple):
    """The server finished its in-flight requests after ``Stop`` and is exiting."""


class Workers(NamedTuple):
    """The pids of a multi-worker server's current workers."""

    pids: Tuple[int, ...]


class WorkerExited(NamedTuple):
    """A worker of a multi-worker server exited (the server replaces it)."""

    pid: int
    exitcode: int


# ------------------------------------------------------------------ parent → child
class Stop(NamedTuple):
    """Stop serving: finish in-flight requests, then exit."""


Message = Any  # one of the classes above
_BY_NAME = {cls.__name__: cls for cls in (Hello, Loaded, Bound, Failed, Stopped, Workers,
                                           WorkerExited, Stop)}


def encode(message: Message) -> Tuple[Any, ...]:
    """The plain tuple that goes on the pipe."""
    return (type(message).__name__,) + tuple(message)


def decode(data: Any) -> Message:
    """The named tuple for a tuple read from the pipe; ``ProtocolError`` if it is none."""
    if not isinstance(data, tuple) or not data or data[0] not in _BY_NAME:
        raise ProtocolError("not a pyhost message: %r" % (data,))
    try:
        return _BY_NAME[data[0]](*data[1:])
    except TypeError as exc:
        raise ProtocolError("malformed %s message %r: %s" % (data[0], data, exc)) from None
