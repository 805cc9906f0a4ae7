"""Typed errors: one ``HostError`` subclass per ``ErrorType``.

Errors cross the process boundary as plain records (``ErrorRecord``, a dict of
strings and numbers); the parent rebuilds the typed exception with
:func:`error_from_record`. No exception object is ever pickled.
"""
from __future__ import annotations

import errno as _errno
import signal as _signal
from typing import Any, Dict, List, Mapping, Optional, Sequence, Type

from .protocol import ErrorType
from .troubleshooting import steps_for

__all__ = [
    "ErrorType",
    "HostError",
    "PythonNotFound",
    "AppNotFound",
    "DependencyError",
    "PortInUse",
    "SpawnError",
    "ProcessCrash",
    "HealthCheckTimeout",
    "NetworkError",
    "AppLoadError",
    "UnknownHostError",
    "error_from_record",
    "signal_name",
]


#: Errors that no restart can fix: retrying them only hides the message.
DETERMINISTIC = frozenset(
    {
        ErrorType.DEPENDENCY_ERROR,
        ErrorType.SCRIPT_NOT_FOUND,
        ErrorType.APP_LOAD_ERROR,
        ErrorType.PYTHON_NOT_FOUND,
        ErrorType.PORT_IN_USE,
        ErrorType.PROCESS_SPAWN_ERROR,
        ErrorType.NETWORK_ERROR,
    }
)


def signal_name(signum: Optional[int]) -> Optional[str]:
    """``9`` -> ``"SIGKILL"``; None for None or an unknown number."""
    if signum is None:
        return None
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return "signal %d" % signum


class HostError(Exception):
    """Base of every pyhost failure; ``except HostError`` catches them all."""

    type: ErrorType = ErrorType.UNKNOWN_ERROR

    def __init__(
        self,
        message: str,
        *,
        troubleshooting: Optional[Sequence[str]] = None,
        stderr_tail: Optional[Sequence[str]] = None,
        remote_traceback: Optional[str] = None,
        exit_code: Optional[int] = None,
        signal: Optional[str] = None,
        missing_module: Optional[str] = None,
        port: Optional[int] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if troubleshooting is None:
            # Raised directly (not via make_error): still say what to do.
            troubleshooting = steps_for(
                self.type, message=message, port=port, signal=signal, exit_code=exit_code,
                missing_module=missing_module, details=details or {})
        self.troubleshooting: List[str] = list(troubleshooting)
        self.stderr_tail: List[str] = list(stderr_tail or ())
        self.remote_traceback = remote_traceback
        self.exit_code = exit_code
        self.signal = signal
        self.missing_module = missing_module
        self.port = port
        self.details: Dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self.message)

    def __reduce__(self) -> Any:
        # Round-trips through pickle (pytest-xdist, multiprocessing pools).
        return (_rebuild, (self.to_dict(),))

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serialisable form (the ``type`` is the string value)."""
        return {
            "type": self.type.value,
            "message": self.message,
            "troubleshooting": list(self.troubleshooting),
            "stderr_tail": list(self.stderr_tail),
            "remote_traceback": self.remote_traceback,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "missing_module": self.missing_module,
            "port": self.port,
            "details": dict(self.details),
        }

    def _render_traceback_(self) -> List[str]:
        """IPython shows this instead of the parent-side traceback through pyhost."""
        lines = ["%s: %s" % (type(self).__name__, self.describe())]
        if self.remote_traceback:
            lines.append("Traceback in the app process:\n" + self.remote_traceback.rstrip())
        return lines

    def describe(self, output: bool = True) -> str:
        """Multi-line text for humans: message, type, troubleshooting, and (``output``)
        the app's recent output."""
        lines = [self.message, "Error type: %s" % self.type.value]
        if self.troubleshooting:
            lines.append("Troubleshooting:")
            lines.extend("  %d. %s" % (i, step) for i, step in enumerate(self.troubleshooting, 1))
        if output and self.stderr_tail:
            lines.append("Recent output from the app:")
            lines.extend("  " + line for line in self.stderr_tail[-10:])
        return "\n".join(lines)


class PythonNotFound(HostError):
    """The interpreter chosen for the child does not exist or cannot run."""

    type = ErrorType.PYTHON_NOT_FOUND


class AppNotFound(HostError):
    """The target's module, file or attribute does not exist."""

    type = ErrorType.SCRIPT_NOT_FOUND


class DependencyError(HostError, ImportError):
    """Importing the app failed on a module other than the target itself."""

    type = ErrorType.DEPENDENCY_ERROR

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.name = self.missing_module  # as ImportError.name: the module that is missing


class PortInUse(HostError, OSError):
    """Binding failed with EADDRINUSE (``.errno`` says so, as for any ``OSError``)."""

    type = ErrorType.PORT_IN_USE

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.errno = _errno.EADDRINUSE


class SpawnError(HostError):
    """The child could not be started (OS error, unpicklable target)."""

    type = ErrorType.PROCESS_SPAWN_ERROR


class ProcessCrash(HostError):
    """The child exited unexpectedly."""

    type = ErrorType.PROCESS_CRASH


class HealthCheckTimeout(HostError, TimeoutError):
    """Bound, but health probes never passed; or loading took too long."""

    type = ErrorType.HEALTH_CHECK_TIMEOUT


class NetworkError(HostError, OSError):
    """Any other socket error (EADDRNOTAVAIL, EACCES, unreachable URL)."""

    type = ErrorType.NETWORK_ERROR


class AppLoadError(HostError):
    """The app's own code raised while importing or in its factory."""

    type = ErrorType.APP_LOAD_ERROR


class UnknownHostError(HostError):
    """Anything else."""

    type = ErrorType.UNKNOWN_ERROR


_BY_TYPE: Dict[ErrorType, Type[HostError]] = {
    cls.type: cls
    for cls in (
        PythonNotFound,
        AppNotFound,
        DependencyError,
        PortInUse,
        SpawnError,
        ProcessCrash,
        HealthCheckTimeout,
        NetworkError,
        AppLoadError,
        UnknownHostError,
    )
}


def error_class(error_type: ErrorType) -> Type[HostError]:
    return _BY_TYPE[ErrorType(error_type)]


def make_error(error_type: ErrorType, message: str, **fields: Any) -> HostError:
    """The typed error for ``error_type`` (its constructor fills in the troubleshooting)."""
    return error_class(error_type)(message, **fields)


def error_from_record(record: Mapping[str, Any], **extra: Any) -> HostError:
    """Rebuild a typed error from a plain record sent by the child."""
    fields = {
        key: record.get(key)
        for key in ("troubleshooting", "stderr_tail", "remote_traceback", "exit_code",
                    "signal", "missing_module", "port")
        if record.get(key) is not None
    }
    details = dict(record.get("details") or {})
    fields.update(extra)
    if details:
        fields["details"] = {**details, **(fields.get("details") or {})}
    try:
        error_type = ErrorType(record.get("type", ErrorType.UNKNOWN_ERROR))
    except ValueError:
        error_type = ErrorType.UNKNOWN_ERROR
    return make_error(error_type, str(record.get("message", "unknown error")), **fields)


def _rebuild(data: Mapping[str, Any]) -> HostError:
    return error_from_record(data)
