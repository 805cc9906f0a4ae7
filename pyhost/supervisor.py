"""Supervision (parent side): restart policy, crash and hang handling, the circuit breaker.

:class:`Supervisor` brings a host up (``bring_up``: launch, and relaunch
transient failures under the restart policy) and, once it is ready, watches it
from its own thread (``run``): a child's exit arrives as an event the moment
its sentinel fires; a hang is found by liveness probes every
``liveness_interval``. A failed child is restarted by
:func:`pyhost.policies.restart_retrying` (exponential backoff, a window budget
that works as a circuit breaker, deterministic errors never retried). When the
budget is spent the host is FAILED; with ``cooldown`` set, the supervisor tries
once more after that many seconds (half-open) and closes the circuit if it works.

Everything with a clock is injected (``clock``, ``sleep``, the event queue and
the launcher that makes children), so this logic is tested with a fake child
and a fake clock in milliseconds (tests/test_supervisor_logic.py). The
threading model is written down in :mod:`pyhost.lifecycle`.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional, Tuple

import tenacity

from . import protocol
from .config import HostConfig
from .errors import DETERMINISTIC, ErrorType, HostError, error_from_record, make_error
from .launcher import Interrupted, Launcher
from .lifecycle import Lifecycle, event
from .policies import RestartBudget, restart_retrying
from .process import Exited
from .status import HostState

__all__ = ["Supervisor"]

log = logging.getLogger("pyhost")

S = HostState
_ACTIVE = frozenset({S.STARTING, S.READY, S.UNHEALTHY, S.RESTARTING})
_UP = frozenset({S.READY, S.UNHEALTHY})


class Supervisor:
    """Brings one host up and keeps it up."""

    def __init__(self, config: HostConfig, *, lifecycle: Lifecycle, launcher: Launcher,
                 budget: RestartBudget, stopping: threading.Event,
                 events: "queue.Queue[Any]",
                 claim: Callable[[], Any] = lambda: None,
                 release: Callable[[], Any] = lambda: None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Optional[Callable[[float], Any]] = None) -> None:
        self.config = config
        self.lifecycle = lifecycle
        self.launcher = launcher
        self.budget = budget
        self.stopping = stopping
        self.events = events
        self.claim = claim
        self.release = release
        self.clock = clock
        #: Waits ``seconds`` or until stop(); truthy when stopped.
        self.sleep = sleep if sleep is not None else stopping.wait
        self.workers: Tuple[int, ...] = ()
        self._thread: Optional[threading.Thread] = None
        self._failures = 0  # liveness probes failed in a row

    # -- bringing up -------------------------------------------------------------
    def bring_up(self, error: Optional[HostError] = None, *, starting: bool = False) -> None:
        """Launch until a child is ready (READY); raise the ``HostError`` that ends it.

        ``error`` is the failure that opened this round (None: a fresh start,
        which launches at once). ``Interrupted`` when ``stop()`` cuts it short.
        """
        if error is None:
            try:
                self._launch_ready(restarted=False)
                return
            except HostError as exc:
                if not self._transient(exc, starting):
                    raise
                error = exc
        self.budget.failure(_summary(error))
        opening = [error]

        def attempt() -> None:
            if opening:  # the failure that opened the round is its first attempt
                raise opening.pop()
            if self.stopping.is_set():
                raise Interrupted()
            self.budget.launched()
            try:
                self._launch_ready(restarted=True)
            except HostError as exc:
                self.budget.failure(_summary(exc))
                raise

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failed = state.outcome.exception() if state.outcome else None
            number = self.budget.record()
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("↻ Attempting automatic restart (%d/%d) of %s in %.1fs...",
                        number, self.config.max_restart_attempts, self.launcher.name, delay)
            self.lifecycle.to(S.RESTARTING, event("restarting", failed, attempt=number,
                                                  delay=delay),
                              error=failed, only_from=_ACTIVE)

        retrying = restart_retrying(
            self.config, self.budget, stopping=self.stopping,
            retry=lambda exc: isinstance(exc, HostError) and self._transient(exc, starting),
            sleep=self.sleep, before_sleep=before_sleep)
        try:
            retrying(attempt)
        except HostError as final:
            if self.stopping.is_set():
                raise Interrupted() from None
            if self._transient(final, starting) and self.budget.spent():
                raise self._gave_up(final) from None
            raise

    def _transient(self, error: HostError, starting: bool) -> bool:
        """Whether a restart may fix ``error`` (never a deterministic one)."""
        if not self.config.auto_restart or error.type in DETERMINISTIC:
            return False
        # At start() a health-check timeout has already used its whole budget:
        # raise it, don't multiply it.
        return not (starting and error.type is ErrorType.HEALTH_CHECK_TIMEOUT)

    def _launch_ready(self, *, restarted: bool) -> None:
        started = time.monotonic()
        self.workers = ()  # the new child's server reports its own
        child = self.launcher.launch()
        pid = child.pid if child is not None else None
        events = [event("ready", pid=pid, seconds=time.monotonic() - started)]
        if restarted:
            events.append(event("restarted", pid=pid))
        self._failures = 0
        self.budget.ready()
        if not self.lifecycle.to(S.READY, *events, only_from=_ACTIVE):
            raise Interrupted()  # stop() won the race: READY would describe a child that is gone
        if restarted:
            log.info("✓ %s restarted successfully (pid %s)", self.launcher.name, pid)

    def _gave_up(self, error: HostError) -> HostError:
        history = self.budget.describe()
        # The last attempt's error with a new message (and steps made for it).
        return error_from_record(dict(
            error.to_dict(), troubleshooting=None,
            message="Gave up on %s after %d restart attempts (circuit open; history: %s): %s"
            % (self.launcher.name, self.budget.max_attempts, history, error.message),
            details=dict(error.details, history=history, gave_up=True)))

    # -- the supervisor thread ---------------------------------------------------
    def start_thread(self) -> None:
        thread = threading.Thread(target=self.run, daemon=True,
                                  name="pyhost-supervisor-%s" % self.launcher.name)
        self._thread = thread
        thread.start()

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def run(self) -> None:
        """Watch the ready host until ``stop()``; restart, give up, retry after ``cooldown``."""
        try:
            self._run()
        except Exception:  # noqa: BLE001 - say so, instead of a thread that ends silently
            log.exception("pyhost's supervisor of %s stopped on an unexpected error; the app "
                          "is no longer supervised", self.launcher.name)

    def _run(self) -> None:
        while not self.stopping.is_set():
            error = self.watch()
            if error is None or self.stopping.is_set():
                return
            if self.recover(error):
                continue
            if self.stopping.is_set() or self.lifecycle.state is not S.FAILED:
                return
            if self.config.cooldown is None or not self.launcher.restartable:
                return  # the circuit stays open: nothing left to supervise
            if not self.half_open():
                return

    def watch(self) -> Optional[HostError]:
        """Wait for the current child to fail (its error) or for ``stop()`` (None)."""
        interval = self.config.liveness_interval
        next_probe = self.clock() + interval if interval else None
        while not self.stopping.is_set():
            timeout = None if next_probe is None else max(0.0, next_probe - self.clock())
            try:
                item = self.events.get(timeout=timeout)
            except queue.Empty:
                assert interval is not None
                error = self._liveness()
                if error is not None:
                    return error
                next_probe = self.clock() + interval
                continue
            if self.stopping.is_set():
                return None
            message, child = item.message, self.launcher.child
            if item.child is not child or child is None:
                continue  # an earlier child's last words
            if isinstance(message, protocol.Workers):
                self.workers = tuple(message.pids)
            elif isinstance(message, protocol.WorkerExited):
                log.warning("⚠ %s: worker pid %d exited (%s); the server replaces it",
                            self.launcher.name, message.pid, _exit_text(message.exitcode))
                self.lifecycle.emit("worker_exited", pid=message.pid, exitcode=message.exitcode)
            elif isinstance(message, Exited):
                return self.launcher.crash_error(child, "unexpectedly")
        return None

    def _liveness(self) -> Optional[HostError]:
        """One liveness probe; the hang's error once ``liveness_failures`` failed in a row."""
        child = self.launcher.child
        if self.launcher.restartable and (child is None or child.exited.is_set()):
            return None  # its exit event is on its way
        result = self.launcher.liveness_probe()
        if self.stopping.is_set():
            return None
        if not result.ok and child is not None and child.exited.wait(0.1):
            return None  # it died: the exit event reports a crash, not a hang
        if result.ok:
            self._failures = 0
            self.budget.healthy()
            if self.lifecycle.to(S.READY, event("healthy"), only_from=frozenset({S.UNHEALTHY})):
                log.info("✓ %s is healthy again", self.launcher.name)
                self.budget.ready()  # a new healthy stretch for the circuit breaker
            return None
        self._failures += 1
        failures, limit = self._failures, self.config.liveness_failures
        if self.lifecycle.to(S.UNHEALTHY, event("unhealthy", reason=result.reason),
                             only_from=frozenset({S.READY})):
            self.budget.unhealthy()  # a hang is not healthy time toward restart_window
        log.warning("⚠ Liveness probe failed for %s (%s; %d in a row, limit %d)",
                    self.launcher.name, result.reason, failures, limit)
        if failures != limit and (failures < limit or not self.launcher.restartable):
            return None
        if not self.launcher.restartable:  # recorded once, at the limit; nothing to restart
            error = self.launcher.liveness_error(failures, result)  # type: ignore[attr-defined]
            self.lifecycle.set_error(error)
            log.error("❌ %s", error.message)
            return None
        stuck = self.launcher.kill_hung(child)
        return make_error(
            ErrorType.HEALTH_CHECK_TIMEOUT,
            "%s stopped answering: %d liveness probes failed in a row (last: %s); the app is "
            "hung%s" % (self.launcher.name, failures, result.reason,
                        " at %s" % stuck if stuck else ""),
            stderr_tail=self.launcher.output.tail(),
            details={"phase": "liveness", "pid": child.pid if child else None,
                     "stuck_at": stuck})

    def recover(self, error: HostError) -> bool:
        """A ready child failed with ``error``: restart it; False when the host is not up."""
        log.error("❌ %s", error.message)
        if not self.config.auto_restart:
            # Closed and released before FAILED shows: its port is free for another host.
            self.launcher.shutdown(self.config.shutdown_timeout)
            self.release()
            self.lifecycle.to(S.FAILED, event("crashed", error), error=error, only_from=_UP)
            return False
        if not self.lifecycle.to(S.RESTARTING, event("crashed", error), error=error,
                                 only_from=_UP):
            return False  # stop() got there first
        try:
            self.bring_up(error)
        except Interrupted:
            return False
        except HostError as final:
            # The budget is spent, or the new child failed in a way a retry cannot fix.
            self.fail(final, "%s is down" % self.launcher.name, gave_up=True)
            return False
        return True

    def fail(self, error: HostError, what: str, *, gave_up: bool, raised: bool = False) -> None:
        """FAILED with ``error``: a start that failed, or supervision that gave up.

        ``raised``: the caller gets ``error`` as an exception (``start()``), so
        it is logged at DEBUG, not reported twice; in development mode (a
        notebook, FLASK_DEBUG) at ERROR, where showing it in full was asked for.
        """
        self.launcher.shutdown(self.config.shutdown_timeout)
        self.release()
        self.lifecycle.to(S.FAILED, *([event("gave_up", error)] if gave_up else []),
                          error=error, only_from=_ACTIVE)
        quiet = raised and not self.config.development
        # Output shown as it came (development mode) is not repeated.
        text = error.describe(output=not self.launcher.output.live)
        log.log(logging.DEBUG if quiet else logging.ERROR, "❌ %s: %s", what, text)

    def half_open(self) -> bool:
        """After ``cooldown``, one more launch; True when it is ready (circuit closed)."""
        cooldown = self.config.cooldown
        assert cooldown is not None
        while True:
            log.info("%s: circuit open; trying once more in %.1fs", self.launcher.name, cooldown)
            if self.sleep(cooldown) or self.stopping.is_set():
                return False
            if not self.lifecycle.to(S.RESTARTING, event("half_open", cooldown=cooldown),
                                     only_from=frozenset({S.FAILED}), half_open=True):
                return False
            try:
                self.claim()
                self.budget.reset()
                self.budget.launched()
                self._launch_ready(restarted=True)
            except Interrupted:
                return False
            except HostError as error:
                self.fail(error, "%s is still down (half-open attempt)" % self.launcher.name,
                          gave_up=True)
                continue
            return True


def _summary(error: HostError) -> str:
    """``PROCESS_CRASH (exit 7)``: one entry of the restart history."""
    how = error.signal or ("exit %s" % error.exit_code if error.exit_code is not None else None)
    return "%s (%s)" % (error.type.value, how) if how else error.type.value


def _exit_text(code: int) -> str:
    return "killed by signal %d" % -code if code < 0 else "exit code %d" % code
