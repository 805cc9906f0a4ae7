"""``HostState`` and the frozen ``HostStatus`` snapshot."""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Dict, Optional, Tuple

from .errors import HostError

__all__ = ["HostState", "HostStatus"]


class HostState(str, enum.Enum):
    """STOPPED → STARTING → READY ⇄ UNHEALTHY → RESTARTING → … → FAILED/STOPPED."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    READY = "READY"
    UNHEALTHY = "UNHEALTHY"
    RESTARTING = "RESTARTING"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        """Started and not yet stopped or failed: STARTING, READY, UNHEALTHY, RESTARTING."""
        return self not in (HostState.STOPPED, HostState.FAILED)


@dataclasses.dataclass(frozen=True, repr=False)
class HostStatus:
    """A point-in-time view of a host; ``to_dict()`` is JSON-serialisable."""

    state: HostState
    is_ready: bool
    is_restarting: bool
    restart_attempts: int
    total_restarts: int
    last_error: Optional[HostError]
    uptime: Optional[float]
    last_health_check: Optional[float]
    pid: Optional[int]
    port: Optional[int]
    url: Optional[str]
    target: str = ""
    health: Dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The circuit breaker: "closed", "open" (FAILED) or "half-open" (the try after cooldown).
    circuit: str = "closed"
    #: Worker pids of a multi-worker server (gunicorn), as its arbiter last reported them.
    workers: Tuple[int, ...] = ()
    #: Recent errors, oldest first, including crashes the host recovered from.
    error_history: Tuple[HostError, ...] = ()

    @property
    def health_probes(self) -> int:
        return int(self.health.get("probes", 0))

    @property
    def health_failures(self) -> int:
        return int(self.health.get("failures", 0))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "state": self.state.value,
            "is_ready": self.is_ready,
            "is_restarting": self.is_restarting,
            "restart_attempts": self.restart_attempts,
            "total_restarts": self.total_restarts,
            "last_error": self.last_error.to_dict() if self.last_error else None,
            "uptime": round(self.uptime, 3) if self.uptime is not None else None,
            "last_health_check": self.last_health_check,
            "pid": self.pid,
            "port": self.port,
            "url": self.url,
            "target": self.target,
            "health": dict(self.health),
            "circuit": self.circuit,
            "workers": list(self.workers),
            "error_history": [{"type": error.type.value, "message": error.message}
                              for error in self.error_history],
        }

    def __repr__(self) -> str:
        return "<HostStatus %s>" % self.summary()

    def summary(self) -> str:
        """One line for terminals and logs."""
        parts = [self.state.value]
        if self.url:
            parts.append(self.url)
        if self.pid:
            parts.append("pid %d" % self.pid)
        if self.uptime is not None:
            parts.append("up %.1fs" % self.uptime)
        if self.total_restarts:
            plural = "s" if self.total_restarts != 1 else ""
            parts.append("%d restart%s" % (self.total_restarts, plural))
        if self.last_error is not None and self.state is not HostState.READY:
            error = self.last_error
            parts.append("last error %s: %s" % (error.type.value, error.message))
        return " · ".join(parts)

    def _repr_html_(self) -> str:
        from .display import status_html

        return status_html(self)
