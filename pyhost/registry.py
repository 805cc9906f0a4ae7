"""The hosts running in this process: port hand-over, stop_all() and exit cleanup.

Re-running a notebook cell must just work: a new host for the *same* target on
a port that a running host of this process holds replaces it (in a notebook
also with ``port=0``, taking over the old host's port so the URL stays); a
*different* target there is ``PortInUse`` naming the holder. Every host still
running at interpreter exit is stopped (``atexit``).

Hosts appear here only through their public attributes (``config``, ``port``,
``target_label``, ``name``, ``pid``, ``stop()``): this module sits below
:mod:`pyhost.host` and does not import it.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .errors import ErrorType, make_error
from .ports import find_port_holder

__all__ = ["starting", "claim", "release", "running_hosts", "stop_all", "describe_holder"]

log = logging.getLogger("pyhost")
_lock = threading.RLock()
_running: List[Any] = []
#: One lock per (host, port) being started: two threads starting hosts on one
#: explicit port take turns, so the second sees the first one running (and
#: replaces it, or gets PortInUse) instead of both binding at once.
_address_locks: Dict[Tuple[str, int], threading.RLock] = {}


def _port_of(host: Any) -> Optional[int]:
    return host.port or host.config.port or None


def _same_address(a: Any, b: Any, port: int) -> bool:
    return _port_of(b) == port and (
        a.config.host == b.config.host or "0.0.0.0" in (a.config.host, b.config.host)
    )


def _replaces_on_any_port(host: Any) -> bool:
    """A host of ``@hosted(...).start()``, or of port 0 in a notebook (a re-run cell)."""
    if host.config.external_url is not None:
        return False
    if getattr(host, "replaces_same_target", False):
        return True
    if host.config.port != 0:
        return False
    from .notebook import in_notebook

    return in_notebook()


@contextlib.contextmanager
def starting(host: Any) -> Iterator[Optional[int]]:
    """Claim ``host``'s address for the whole of its start.

    Yields the port a replaced host of the same target had (port 0 in a
    notebook), so the new host can keep its URL; None otherwise.
    """
    port = _port_of(host)
    if host.config.external_url is not None or not port:
        yield claim(host)
        return
    with _lock:
        lock = _address_locks.setdefault((host.config.host, port), threading.RLock())
    with lock:
        yield claim(host)


def claim(host: Any) -> Optional[int]:
    """Register ``host`` as running; hand over or refuse a port another host holds."""
    port = _port_of(host)
    to_stop = []
    with _lock:
        for other in _running:
            if other is host or other.config.external_url is not None:
                continue
            same_target = str(other.target_label) == str(host.target_label)
            if same_target and _replaces_on_any_port(host) \
                    and other.config.host == host.config.host:
                to_stop.append(other)
                continue
            if host.config.external_url is not None or not port \
                    or not _same_address(host, other, port):
                continue
            if not same_target:
                raise make_error(
                    ErrorType.PORT_IN_USE,
                    "Port %d is held by another FlaskHost in this process (%s, target %s). "
                    "Stop it first (host.stop() or pyhost.stop_all()), or use another port."
                    % (port, other.name, other.target_label),
                    port=port, details={"holder": "FlaskHost(%s)" % other.target_label,
                                        "holder_pid": None, "holder_in_process": True},
                )
            to_stop.append(other)
        if host not in _running:
            _running.append(host)
    reuse = None
    for other in to_stop:
        reuse = reuse or other.port
        log.warning("⚠ Replacing the running %r on port %s (same target, e.g. a re-run "
                    "notebook cell)", other, other.port)
        other.stop()
    return reuse


def release(host: Any) -> None:
    with _lock:
        if host in _running:
            _running.remove(host)


def running_hosts() -> List[Any]:
    with _lock:
        return list(_running)


def stop_all(timeout: Optional[float] = None) -> int:
    """Stop every host of this process; returns how many were stopped."""
    hosts = running_hosts()
    for host in reversed(hosts):
        try:
            host.stop(timeout)
        except Exception:  # noqa: BLE001 - keep stopping the others
            log.exception("stopping %r failed", host)
    return len(hosts)


def describe_holder(host: Any, port: Optional[int]) -> Optional[Dict[str, Any]]:
    """Who holds ``port``: another host of this process, or a process found in /proc."""
    if not port:
        return None
    with _lock:
        for other in _running:
            if other is not host and _port_of(other) == port:
                return {"holder": "FlaskHost(%s) in this process" % other.target_label,
                        "holder_pid": other.pid, "holder_in_process": True}
    found = find_port_holder(port)
    if found is None:
        return None
    pid, cmdline = found
    return {"holder": "pid %d (%s)" % (pid, cmdline[:120]), "holder_pid": pid,
            "holder_cmdline": cmdline}


# atexit runs handlers last-registered-first. multiprocessing's own handler
# SIGTERMs daemonic children; ours must run before it, so that hosts stop
# gracefully instead of seeing their children "crash" and restarting them.
import multiprocessing.util  # noqa: E402,F401 - registers its handler first

atexit.register(stop_all)
