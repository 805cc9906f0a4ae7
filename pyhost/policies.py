"""Every retry and backoff, as tenacity objects built from ``HostConfig`` here.

- :func:`health_probe_retrying`: probes after "bound" (500 ms, ×1.2, max 2 s, 20 tries)
- :func:`preflight_retrying`: interpreter and ``requires`` checks (2 tries, 1 s apart)
- :func:`restart_retrying` and :class:`RestartBudget`: restart backoff, the circuit breaker

Sleeps and clocks are injectable so tests record waits instead of sleeping.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, List, Optional, Tuple

import tenacity

from .config import HostConfig

__all__ = ["health_probe_retrying", "preflight_retrying", "restart_retrying", "RestartBudget"]


def health_probe_retrying(
    config: HostConfig,
    *,
    abort: Callable[[], bool],
    sleep: Callable[[float], Any] = time.sleep,
    before_sleep: Optional[Callable[[tenacity.RetryCallState], None]] = None,
) -> tenacity.Retrying:
    """Retry a probe until it passes, the budget runs out, or ``abort()`` says stop.

    The first probe runs at once; the waits only grow while probes fail. The
    last ``ProbeResult`` is returned either way (never ``RetryError``).
    """
    return tenacity.Retrying(
        stop=(
            tenacity.stop_after_attempt(config.health_check_max_retries)
            | tenacity.stop_after_delay(config.health_check_timeout)
            | _stop_when(abort)
        ),
        wait=_wait_within(tenacity.wait_exponential(
            multiplier=config.health_check_interval,
            exp_base=config.health_check_backoff,
            max=config.health_check_max_interval,
        ), config.health_check_timeout),
        retry=tenacity.retry_if_result(lambda result: not result.ok),
        before_sleep=before_sleep,
        retry_error_callback=_last_result,
        sleep=sleep,
        reraise=True,
    )


def preflight_retrying(*, sleep: Callable[[float], Any] = time.sleep) -> tenacity.Retrying:
    """Environment validation: 2 tries, 1 second apart."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(2),
        wait=tenacity.wait_fixed(1.0),
        retry=tenacity.retry_if_result(lambda problems: bool(problems)),
        retry_error_callback=_last_result,
        sleep=sleep,
    )


def _last_result(state: tenacity.RetryCallState) -> Any:
    """When the attempts run out, hand back the last result instead of RetryError."""
    assert state.outcome is not None
    return state.outcome.result()


class _wait_within(tenacity.wait.wait_base):
    """``inner``'s wait, but never past ``budget`` seconds from the first attempt.

    ``stop_after_delay`` is only checked between attempts: without this cap a
    long wait could start just before the deadline and end well after it.
    """

    def __init__(self, inner: tenacity.wait.wait_base, budget: float) -> None:
        self.inner = inner
        self.budget = budget

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        remaining = self.budget - (retry_state.seconds_since_start or 0.0)
        return max(0.0, min(float(self.inner(retry_state)), remaining))


class _stop_when(tenacity.stop.stop_base):
    """Stop when ``predicate()`` is true (the child died, or stop() was called)."""

    def __init__(self, predicate: Callable[[], bool]) -> None:
        self.predicate = predicate

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.predicate()


def restart_retrying(
    config: HostConfig,
    budget: "RestartBudget",
    *,
    stopping: threading.Event,
    retry: Callable[[BaseException], bool],
    sleep: Optional[Callable[[float], Any]] = None,
    before_sleep: Optional[Callable[[tenacity.RetryCallState], None]] = None,
) -> tenacity.Retrying:
    """The restart policy: relaunch a failed child until one is ready.

    Each round starts with the failure that opened it (a crash, a hang, a death
    during startup) as its first attempt. Between attempts it waits
    ``restart_delay × 2^(n-1)`` before the n-th restart of the window, sleeping
    on ``stopping`` so ``stop()`` ends the wait at once; it retries only what
    ``retry`` calls transient, and stops when ``budget`` is spent (the circuit
    breaker, whose count carries over from round to round until a child stays
    healthy for ``restart_window``) or ``stop()`` was called. The last error
    is re-raised when it stops.
    """
    return tenacity.Retrying(
        stop=_stop_when(budget.spent) | _stop_when(stopping.is_set),
        wait=wait_restart(budget, config.restart_delay),
        retry=tenacity.retry_if_exception(retry),
        before_sleep=before_sleep,
        sleep=sleep if sleep is not None else stopping.wait,
        reraise=True,
    )


class wait_restart(tenacity.wait.wait_base):
    """``base × 2^n`` where n counts the window's restarts so far (not just this round's)."""

    def __init__(self, budget: "RestartBudget", base: float) -> None:
        self.budget = budget
        self.base = base

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.base * 2 ** self.budget.attempts


class RestartBudget:
    """The circuit breaker: at most ``max_attempts`` restarts until a child stays healthy.

    The count resets only after a child has been ready and healthy for
    ``window`` seconds, so an app that crashes (or hangs) a second after every
    start gives up after ``max_attempts`` restarts instead of restarting
    forever. A hung child's healthy time ends at its last passing probe, not
    when the failed probes finally get it killed.
    """

    def __init__(self, max_attempts: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_attempts = max_attempts
        self.window = window
        self.clock = clock
        self.attempts = 0
        self.total = 0
        self.ready_since: Optional[float] = None
        self.healthy_at: Optional[float] = None
        self.history: List[Tuple[float, str]] = []

    @classmethod
    def from_config(cls, config: HostConfig,
                    clock: Callable[[], float] = time.monotonic) -> "RestartBudget":
        return cls(config.max_restart_attempts, config.restart_window, clock)

    def ready(self) -> None:
        """A child became ready (healthy) now, or is healthy again after failed probes."""
        self.ready_since = self.healthy_at = self.clock()

    def healthy(self) -> None:
        """A liveness probe of the ready child passed now."""
        self.healthy_at = self.clock()

    def unhealthy(self) -> None:
        """The ready child stopped answering: it was healthy until its last passing probe."""
        self._end_stretch(self.healthy_at)

    def failure(self, reason: str) -> None:
        """A child failed now (``reason`` goes into the history the gave-up error shows)."""
        self._end_stretch(self.clock())
        self.history.append((self.clock(), reason))

    def _end_stretch(self, end: Optional[float]) -> None:
        """A healthy stretch ended at ``end``: a full window of it closes the circuit."""
        since = self.ready_since
        if since is not None and end is not None and end - since >= self.window:
            self.attempts = 0
            self.history.clear()
        self.ready_since = None

    def current_attempts(self) -> int:
        """Restarts counted in the current window (0 once a child stayed ready for it)."""
        if self.ready_since is not None and self.clock() - self.ready_since >= self.window:
            return 0
        return self.attempts

    def spent(self) -> bool:
        """No restart left in this window: the circuit opens."""
        return self.attempts >= self.max_attempts

    def record(self) -> int:
        """A restart is scheduled; returns its number in the window."""
        self.attempts += 1
        return self.attempts

    def launched(self) -> None:
        """A restart's child is launched now (one stopped during its backoff never is)."""
        self.total += 1

    def reset(self) -> None:
        """A new start, or a half-open attempt that succeeded: the circuit is closed."""
        self.attempts = 0
        self.ready_since = self.healthy_at = None
        self.history.clear()

    def describe(self) -> str:
        """``+0.0s PROCESS_CRASH (SIGKILL); +2.1s ...``: the failures of this window."""
        first = self.history[0][0] if self.history else 0.0
        return "; ".join("+%.1fs %s" % (at - first, reason) for at, reason in self.history)
