"""Supervision (parent side): the restart policy and the supervisor thread.

Mixed into :class:`pyhost.host.FlaskHost`, which owns the lifecycle
(``_launch``: start a child, wait for "bound", probe, READY). This module
decides what happens when a child fails: restart it after
``restart_delay × 2^(n-1)`` within the restart budget (the circuit breaker),
raise deterministic errors at once, notice crashes (the pump's exit event) and
hangs (liveness probes), and give up with the history when the budget is spent.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Optional, cast

from . import registry
from .errors import DETERMINISTIC, ErrorType, HostError, error_from_record, make_error
from .process import Exited
from .status import HostState

if TYPE_CHECKING:  # pragma: no cover
    from .config import HostConfig
    from .health import ProbeResult
    from .host import FlaskHost
    from .output import OutputBuffer
    from .policies import RestartBudget
    from .process import ChildEvent, ChildProcess

__all__ = ["Supervision"]

log = logging.getLogger("pyhost")


class _Stopped(Exception):
    """stop() was called while a start or restart was under way."""


class Supervision:
    """Restarts, crash and hang handling for a host (the FlaskHost mixin)."""

    if TYPE_CHECKING:  # provided by FlaskHost
        config: HostConfig
        name: str
        _stopping: threading.Event
        _events: queue.Queue[ChildEvent]
        _budget: RestartBudget
        _output: OutputBuffer
        _child: Optional[ChildProcess]
        _state: HostState
        _lock: Any
        _ready_at: Optional[float]
        _last_error: Optional[HostError]
        _liveness_failures: int
        _supervisor: Optional[threading.Thread]

        @property
        def pid(self) -> Optional[int]: ...
        def _launch(self) -> None: ...
        def _crash_error(self, child: ChildProcess, when: str) -> HostError: ...
        def _probe_url(self) -> str: ...
        def _probe_once(self, url: str, timeout: float) -> ProbeResult: ...
        def _fail(self, error: HostError, what: str) -> None: ...
        def _set_state(self, state: HostState) -> None: ...
        def _emit(self, name: str, error: Optional[HostError] = None, **data: Any) -> None: ...

    def _run_until_ready(self, error: Optional[HostError], starting: bool = False) -> None:
        """Launch children until one is ready, restarting transient failures.

        ``error`` is what ended the previous child (None on a fresh start),
        already logged. Returns when READY; raises the HostError that ends the
        attempts.
        """
        logged = error
        while True:
            if self._stopping.is_set():
                raise _Stopped()
            if error is not None:
                if error.type in DETERMINISTIC or not self.config.auto_restart or (
                    # At start() a health-check timeout has already used its whole
                    # budget: raise it (the ancestor's scenario 5), don't multiply it.
                    starting and error.type is ErrorType.HEALTH_CHECK_TIMEOUT
                ):
                    raise error
                attempt = self._budget.next_attempt(_failure_summary(error))
                if attempt is None:
                    raise self._gave_up(error)
                number, delay = attempt
                if error is not logged:
                    log.error("❌ %s: %s", error.type.value, error.message)
                self._set_state(HostState.RESTARTING)
                log.warning("↻ Attempting automatic restart (%d/%d) of %s in %.1fs...",
                            number, self.config.max_restart_attempts, self.name, delay)
                self._emit("restarting", error, attempt=number, delay=delay)
                if self._stopping.wait(delay):
                    raise _Stopped()
                self._budget.restarting()
            try:
                self._launch()
            except HostError as exc:
                self._last_error = exc
                error = exc
                continue
            if error is not None:
                log.info("✓ %s restarted successfully (pid %s)", self.name, self.pid)
                self._emit("restarted")
            return


    def _start_supervisor(self) -> None:
        thread = threading.Thread(target=self._supervise, name="pyhost-supervisor-%s" % self.name,
                                  daemon=True)
        self._supervisor = thread
        thread.start()

    def _supervise(self) -> None:
        interval = self.config.liveness_interval
        next_probe = time.monotonic() + interval if interval else None
        while not self._stopping.is_set():
            timeout = None if next_probe is None else max(0.0, next_probe - time.monotonic())
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                if self._state in (HostState.READY, HostState.UNHEALTHY):
                    self._liveness_check()
                if self._state is HostState.FAILED:
                    return
                next_probe = time.monotonic() + interval if interval else None
                continue
            if self._stopping.is_set():
                return
            child = self._child
            if not isinstance(event.message, Exited) or child is None or event.child is not child:
                continue
            if self._state not in (HostState.READY, HostState.UNHEALTHY):
                continue
            self._child_lost(self._crash_error(child, "unexpectedly"))
            if self._state is HostState.FAILED:
                return  # the circuit is open: nothing left to supervise
            next_probe = time.monotonic() + interval if interval else None

    def _liveness_check(self) -> None:
        child = self._child
        if self.config.external_url is None and (child is None or child.exited.is_set()):
            return  # the exit event is on its way
        # At least 1 s: a tiny liveness_interval must not fail slightly slow apps.
        timeout = min(5.0, max(1.0, self.config.liveness_interval or 5.0))
        result = self._probe_once(self._probe_url(), timeout)
        if self._stopping.is_set():
            return
        if not result.ok and child is not None and child.exited.wait(0.1):
            return  # it died: the exit event reports a crash, not a hang
        if result.ok:
            if self._state is HostState.UNHEALTHY:
                log.info("✓ %s is healthy again", self.name)
                self._set_state(HostState.READY)
                self._budget.ready()  # a new healthy stretch for the circuit breaker
            self._budget.healthy()
            self._liveness_failures = 0
            return
        self._liveness_failures += 1
        failures, limit = self._liveness_failures, self.config.liveness_failures
        if self._state is HostState.READY:
            self._budget.unhealthy()  # a hang is not healthy time toward restart_window
            self._set_state(HostState.UNHEALTHY)
            self._emit("unhealthy", reason=result.reason)
        log.warning("⚠ Liveness probe failed for %s (%s; %d in a row, limit %d)", self.name,
                    result.reason, failures, limit)
        external = self.config.external_url
        if failures < limit or (external and failures > limit):
            return  # an external_url's error is recorded once, at the limit
        error = make_error(
            ErrorType.HEALTH_CHECK_TIMEOUT,
            "%s stopped answering: %d liveness probes failed in a row (last: %s); %s"
            % (self.name, failures, result.reason,
               "not restarted (external_url)" if external else "the app is hung"),
            stderr_tail=self._output.tail(), details={"phase": "liveness", "pid": self.pid},
        )
        if external:  # status() says why it is UNHEALTHY; there is nothing to restart
            self._last_error = error
            log.error("❌ %s", error.message)
            return
        if child is not None:
            child.abort.set()
            child.signal("kill")
            child.wait(5)
        self._child_lost(error)

    def _child_lost(self, error: HostError) -> None:
        self._last_error = error
        with self._lock:
            self._ready_at = None
        log.error("❌ %s", error.message)
        self._emit("crashed", error)
        if self._stopping.is_set():
            return  # a callback stopped the host
        old = self._child
        if old is not None:
            old.close()
        if not self.config.auto_restart:
            self._set_state(HostState.FAILED)
            registry.release(cast("FlaskHost", self))  # its port is free again
            return
        try:
            self._run_until_ready(error)
        except _Stopped:
            return
        except HostError as final:
            # The budget is spent, or the new child failed in a way a retry cannot fix.
            self._fail(final, "%s is down" % self.name)
            self._emit("gave_up", final)

    def _gave_up(self, error: HostError) -> HostError:
        entries = self._budget.history
        first = entries[0][0] if entries else 0.0
        history = "; ".join("+%.1fs %s" % (at - first, reason) for at, reason in entries)
        # The last attempt's error with a new message (and steps made for it).
        return error_from_record(dict(
            error.to_dict(), troubleshooting=None,
            message="Gave up on %s after %d restart attempts (circuit open; history: %s): %s"
            % (self.name, self._budget.max_attempts, history, error.message),
            details=dict(error.details, history=history, gave_up=True)))


def _failure_summary(error: HostError) -> str:
    """``PROCESS_CRASH (exit 7)``: one entry of the restart history."""
    how = error.signal or ("exit %s" % error.exit_code if error.exit_code is not None else None)
    return "%s (%s)" % (error.type.value, how) if how else error.type.value
