"""What HTTP clients may see of a host: the one projection of errors and status
served by the route guard's 503, the health app and the metrics labels.

A hosted app's error often carries secrets: an exception text with a
connection string, output lines, a traceback with file paths, and for
``PortInUse`` the command line of another program (``--db-password=...``).
The operator keeps all of it on the error object, in ``host.status()`` and in
the logs. Clients get, by default, the error type, a short message written
here (never the app's own text), the exit signal or code, and the status
fields that say what the host is doing; with ``expose_details=True`` (a
``HostConfig`` field, or the guard's/health app's option) they get the full
``to_dict()`` of both.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional

from .errors import ErrorType, HostError

__all__ = ["public_error", "public_status", "public_message", "public_probe_result",
           "expose_details_for"]

#: One short, fixed sentence per type: nothing of the app's own words.
_MESSAGES = {
    ErrorType.PYTHON_NOT_FOUND: "The interpreter chosen for the app cannot run",
    ErrorType.SCRIPT_NOT_FOUND: "The app's module or file was not found",
    ErrorType.DEPENDENCY_ERROR: "A module the app needs is not installed",
    ErrorType.PORT_IN_USE: "The app's port is in use by another program",
    ErrorType.PROCESS_SPAWN_ERROR: "The app's process could not be started",
    ErrorType.PROCESS_CRASH: "The app's process exited unexpectedly",
    ErrorType.HEALTH_CHECK_TIMEOUT: "The app did not answer its health checks in time",
    ErrorType.NETWORK_ERROR: "The app could not bind its address or could not be reached",
    ErrorType.APP_LOAD_ERROR: "The app raised an exception while loading",
    ErrorType.UNKNOWN_ERROR: "The app failed",
}

#: Status fields that name processes, paths or internal addresses.
_INTERNAL_STATUS_FIELDS = ("pid", "port", "url", "target", "workers")

# Probe results pyhost writes itself; anything else (an OSError's text) is cut.
_PROBE_RESULT = re.compile(r"^(HTTP \d{3}|Connection refused|Connection reset|Timeout|OK)$")


def expose_details_for(host: Any, expose_details: Optional[bool]) -> bool:
    """An explicit option wins; None means the host's ``expose_details`` config field."""
    if expose_details is not None:
        if not isinstance(expose_details, bool):
            raise ValueError("expose_details must be True, False or None (the host's "
                             "config), got %r" % (expose_details,))
        return expose_details
    config = getattr(host, "config", None)
    return bool(getattr(config, "expose_details", False))


def public_message(error: HostError) -> str:
    """The type's fixed sentence, plus how the process ended (a signal or an exit code)."""
    message = _MESSAGES.get(error.type, _MESSAGES[ErrorType.UNKNOWN_ERROR])
    if error.type is ErrorType.PROCESS_CRASH or error.type is ErrorType.UNKNOWN_ERROR:
        if error.signal:
            message += " (%s)" % error.signal
        elif error.exit_code is not None:
            message += " (exit code %d)" % error.exit_code
    if error.details.get("gave_up"):
        message += "; automatic restarts gave up"
    return message


def public_error(error: Optional[HostError], expose_details: bool = False
                 ) -> Optional[Dict[str, Any]]:
    """``error.to_dict()`` with details, else type, short message, signal and exit code."""
    if error is None:
        return None
    if expose_details:
        return error.to_dict()
    return {"type": error.type.value, "message": public_message(error),
            "signal": error.signal, "exit_code": error.exit_code}


def public_probe_result(reason: Optional[str]) -> Optional[str]:
    """A probe's result as pyhost words it ("HTTP 500", "Timeout"), else "error"."""
    if reason is None or _PROBE_RESULT.match(reason):
        return reason
    return "error"


def public_status(status: Any, expose_details: bool = False) -> Dict[str, Any]:
    """``status.to_dict()``, without pids, ports, paths, URLs and error details by default."""
    data = status.to_dict()
    if expose_details:
        return data
    for name in _INTERNAL_STATUS_FIELDS:
        data.pop(name, None)
    data["last_error"] = public_error(status.last_error)
    data["error_history"] = [{"type": error.type.value, "message": public_message(error)}
                             for error in status.error_history]
    health = dict(data.get("health") or {})
    if "last_result" in health:
        health["last_result"] = public_probe_result(health["last_result"])
    data["health"] = health
    return data
