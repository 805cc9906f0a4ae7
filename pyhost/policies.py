"""Every retry and backoff, as tenacity objects built from ``HostConfig`` here.

- :func:`health_probe_retrying`: probes after "bound" (seed: 500 ms, ×1.2, max 2 s, 20 tries)
- :func:`preflight_retrying`: interpreter and ``requires`` checks (2 tries, 1 s apart)
- :func:`restart_wait` and :class:`RestartBudget`: restart backoff and the circuit breaker

Sleeps and clocks are injectable so tests record waits instead of sleeping.
"""
from __future__ import annotations

import time
from typing import Any, Callable, List, Optional, Tuple

import tenacity

from .config import HostConfig

__all__ = ["health_probe_retrying", "preflight_retrying", "restart_wait", "RestartBudget"]


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
    """The seed's environment validation: 2 tries, 1 second apart."""
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


def restart_wait(config: HostConfig) -> tenacity.wait.wait_base:
    """``restart_delay × 2^(n-1)`` before the n-th consecutive restart."""
    return tenacity.wait_exponential(multiplier=config.restart_delay, exp_base=2, min=0,
                                     max=float("inf"))


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


class RestartBudget:
    """The circuit breaker: at most ``max_attempts`` restarts until a child stays healthy.

    The counter resets only after a child has been ready and healthy for
    ``window`` seconds, so an app that crashes (or hangs) a second after every
    start gives up after ``max_attempts`` restarts instead of restarting
    forever. A hung child's healthy time ends at its last passing probe, not
    when the failed probes finally get it killed.
    """

    def __init__(self, max_attempts: int, window: float, wait: tenacity.wait.wait_base,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_attempts = max_attempts
        self.window = window
        self.wait = wait
        self.clock = clock
        self.attempts = 0
        self.total = 0
        self.ready_since: Optional[float] = None
        self.healthy_at: Optional[float] = None
        self.history: List[Tuple[float, str]] = []

    @classmethod
    def from_config(cls, config: HostConfig,
                    clock: Callable[[], float] = time.monotonic) -> "RestartBudget":
        return cls(config.max_restart_attempts, config.restart_window, restart_wait(config), clock)

    def ready(self) -> None:
        """A child became ready (healthy) now, or is healthy again after failed probes."""
        self.ready_since = self.healthy_at = self.clock()

    def healthy(self) -> None:
        """A liveness probe of the ready child passed now."""
        self.healthy_at = self.clock()

    def unhealthy(self) -> None:
        """The ready child stopped answering: it was healthy until its last passing probe."""
        self._end_stretch(self.healthy_at)

    def not_ready(self) -> None:
        """The ready child is gone (it was healthy until now)."""
        self._end_stretch(self.clock())

    def _end_stretch(self, end: Optional[float]) -> None:
        """A healthy stretch ended at ``end``: a full window of it earns a reset."""
        since = self.ready_since
        if since is not None and end is not None and end - since >= self.window:
            self.attempts = 0
        self.ready_since = None

    def current_attempts(self) -> int:
        """Restarts counted in the current window (0 once a child stayed ready for it)."""
        if self.ready_since is not None and self.clock() - self.ready_since >= self.window:
            return 0
        return self.attempts

    def reset(self) -> None:
        self.attempts = 0
        self.ready_since = self.healthy_at = None
        self.history.clear()

    def restarting(self) -> None:
        """A restart's child is launched now (one stopped during its backoff never is)."""
        self.total += 1

    def next_attempt(self, reason: str) -> Optional[Tuple[int, float]]:
        """``(n, delay)`` for the next restart, or None when the budget is spent."""
        self.not_ready()
        self.history.append((self.clock(), reason))
        if self.attempts >= self.max_attempts:
            return None
        self.attempts += 1
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = self.attempts
        return self.attempts, float(self.wait(state))
