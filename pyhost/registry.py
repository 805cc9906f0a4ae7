"""The hosts running in this process: port hand-over, stop_all() and exit cleanup.

Re-running a notebook cell must just work: a new host for the *same* target on
a port that a running host of this process holds replaces it; a *different*
target there is ``PortInUse`` naming the holder. Every host still running at
interpreter exit is stopped (``atexit``).
"""
from __future__ import annotations

import atexit
import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .errors import ErrorType, make_error
from .ports import find_port_holder

if TYPE_CHECKING:  # pragma: no cover
    from .host import FlaskHost

__all__ = ["claim", "release", "running_hosts", "stop_all", "describe_holder"]

log = logging.getLogger("pyhost")
_lock = threading.RLock()
_running: List["FlaskHost"] = []


def _port_of(host: "FlaskHost") -> Optional[int]:
    return host._port or host.config.port or None


def _same_address(a: "FlaskHost", b: "FlaskHost", port: int) -> bool:
    return _port_of(b) == port and (
        a.config.host == b.config.host or "0.0.0.0" in (a.config.host, b.config.host)
    )


def claim(host: "FlaskHost") -> None:
    """Register ``host`` as running; hand over or refuse a port another host holds."""
    port = _port_of(host)
    to_stop = []
    with _lock:
        if host.config.external_url is None and port:
            for other in _running:
                if other is host or not _same_address(host, other, port):
                    continue
                if str(other.target_label) == str(host.target_label):
                    to_stop.append(other)
                else:
                    raise make_error(
                        ErrorType.PORT_IN_USE,
                        "Port %d is held by another FlaskHost in this process (%s, target %s). "
                        "Stop it first (host.stop() or pyhost.stop_all()), or use another port."
                        % (port, other.name, other.target_label),
                        port=port, details={"holder": "FlaskHost(%s)" % other.target_label,
                                            "holder_pid": None},
                    )
        if host not in _running:
            _running.append(host)
    for other in to_stop:
        log.warning("⚠ Replacing the running %r on port %d (same target, e.g. a re-run "
                    "notebook cell)", other, port)
        other.stop()


def release(host: "FlaskHost") -> None:
    with _lock:
        if host in _running:
            _running.remove(host)


def running_hosts() -> List["FlaskHost"]:
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


def describe_holder(host: "FlaskHost", port: Optional[int]) -> Optional[Dict[str, Any]]:
    """Who holds ``port``: another host of this process, or a process found in /proc."""
    if not port:
        return None
    with _lock:
        for other in _running:
            if other is not host and _port_of(other) == port:
                return {"holder": "FlaskHost(%s) in this process" % other.target_label,
                        "holder_pid": other.pid}
    found = find_port_holder(port)
    if found is None:
        return None
    pid, cmdline = found
    return {"holder": "pid %d (%s)" % (pid, cmdline[:120]), "holder_pid": pid}


# atexit runs handlers last-registered-first. multiprocessing's own handler
# SIGTERMs daemonic children; ours must run before it, so that hosts stop
# gracefully instead of seeing their children "crash" and restarting them.
import multiprocessing.util  # noqa: E402,F401 - registers its handler first

atexit.register(stop_all)
