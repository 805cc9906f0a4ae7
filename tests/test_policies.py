"""Retry and restart policies, in-process: recorded waits and a fake clock, no sleeping."""
from __future__ import annotations

import threading

import pytest

from pyhost.config import HostConfig
from pyhost.health import ProbeResult
from pyhost.policies import (
    RestartBudget,
    health_probe_retrying,
    preflight_retrying,
    restart_retrying,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(ok: bool, reason: str = "Connection refused") -> ProbeResult:
    return ProbeResult(ok, reason, 200 if ok else None, 0.001, 0.0)


def test_health_probe_waits_follow_the_seed_backoff():
    waits = []
    config = HostConfig(health_check_max_retries=20, health_check_timeout=1000)
    retrying = health_probe_retrying(config, abort=lambda: False, sleep=waits.append)
    outcome = retrying(lambda: result(False))
    assert outcome.ok is False
    assert len(waits) == 19  # 20 probes, 19 waits between them
    assert waits[:4] == pytest.approx([0.5, 0.6, 0.72, 0.864])
    assert max(waits) == pytest.approx(2.0)  # capped by health_check_max_interval


def test_health_probe_waits_never_reach_past_the_budget(monkeypatch):
    import types

    import tenacity

    now = [100.0]
    monkeypatch.setattr(tenacity, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    starts, waits = [], []

    def slow_probe():  # each probe takes 0.3 s
        starts.append(now[0] - 100.0)
        now[0] += 0.3
        return result(False)

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    config = HostConfig(health_check_timeout=1.0, health_check_interval=0.8)
    assert health_probe_retrying(config, abort=lambda: False, sleep=sleep)(slow_probe).ok is False
    # 0.8 s after the first probe would start the second at 1.1 s, past the 1.0 s budget.
    assert waits == pytest.approx([0.7])
    assert starts == pytest.approx([0.0, 1.0])


def test_health_probe_first_probe_is_immediate_and_stops_on_success():
    waits = []
    answers = iter([result(False), result(False), result(True, "HTTP 200")])
    retrying = health_probe_retrying(HostConfig(), abort=lambda: False, sleep=waits.append)
    outcome = retrying(lambda: next(answers))
    assert outcome.ok and outcome.reason == "HTTP 200"
    assert waits == pytest.approx([0.5, 0.6])


def test_health_probe_abort_stops_at_once():
    calls = []
    aborted = {"now": False}

    def attempt():
        calls.append(1)
        aborted["now"] = True  # the child died during the first probe
        return result(False)

    retrying = health_probe_retrying(HostConfig(), abort=lambda: aborted["now"],
                                     sleep=lambda s: None)
    assert retrying(attempt).ok is False
    assert len(calls) == 1


def test_preflight_retries_twice_one_second_apart():
    waits = []
    calls = []

    def attempt():
        calls.append(1)
        return ["flask_cors"]

    assert preflight_retrying(sleep=waits.append)(attempt) == ["flask_cors"]
    assert len(calls) == 2 and waits == [1.0]


def restart_round(config, budget, launches, *, retry=lambda exc: True, stopping=None):
    """One round as the supervisor runs it: the opening failure, then ``launches``.

    Each launch is an exception to raise or a value to return; returns the
    waits that were slept and the round's result (or raises its last error).
    """
    waits = []
    opening = [RuntimeError("the crash that opened the round")]
    budget.failure("PROCESS_CRASH")
    pending = iter(launches)

    def attempt():
        if opening:
            raise opening.pop()
        budget.launched()
        outcome = next(pending)
        if isinstance(outcome, Exception):
            budget.failure(type(outcome).__name__)
            raise outcome
        budget.ready()
        return outcome

    retrying = restart_retrying(config, budget, stopping=stopping or threading.Event(),
                                retry=retry, sleep=waits.append,
                                before_sleep=lambda state: budget.record())
    return waits, retrying(attempt)


def test_restart_delays_double_per_consecutive_attempt():
    budget = RestartBudget(max_attempts=3, window=60, clock=FakeClock())
    with pytest.raises(OSError):
        restart_round(HostConfig(), budget, [OSError(1), OSError(2), OSError(3)])
    assert budget.attempts == 3 and budget.spent()  # circuit open
    assert budget.total == 3
    assert [reason for _, reason in budget.history] == ["PROCESS_CRASH"] + ["OSError"] * 3


def test_restart_waits_are_exponential_from_restart_delay():
    budget = RestartBudget(3, 60, FakeClock())
    config = HostConfig(restart_delay=2.0)
    waits = []
    retrying = restart_retrying(config, budget, stopping=threading.Event(),
                                retry=lambda exc: True, sleep=waits.append,
                                before_sleep=lambda state: budget.record())
    with pytest.raises(OSError):
        retrying(lambda: (_ for _ in ()).throw(OSError("down")))
    assert waits == [2.0, 4.0, 8.0]


def test_the_window_budget_carries_over_between_rounds():
    clock = FakeClock()
    budget = RestartBudget(3, 60, clock)
    config = HostConfig(restart_delay=1)
    waits, value = restart_round(config, budget, ["up"])
    assert value == "up" and waits == [1.0]
    clock.now += 5  # healthy for 5 s, well under the window: the next round continues the count
    waits, value = restart_round(config, budget, [OSError(), "up"])
    assert value == "up" and waits == [2.0, 4.0]
    clock.now += 5
    with pytest.raises(RuntimeError):  # the opening failure: no restart left
        restart_round(config, budget, [])
    assert budget.spent()


def test_restart_counter_resets_after_a_healthy_window():
    clock = FakeClock()
    budget = RestartBudget(2, 60, clock)
    config = HostConfig(restart_delay=1)
    waits, _ = restart_round(config, budget, [OSError(), "up"])
    assert waits == [1.0, 2.0]
    clock.now += 60  # stayed healthy for the whole window
    waits, _ = restart_round(config, budget, ["up"])
    assert waits == [1.0] and budget.attempts == 1


def test_only_transient_errors_are_retried():
    budget = RestartBudget(3, 60, FakeClock())
    with pytest.raises(KeyError):
        restart_round(HostConfig(), budget, [KeyError("deterministic"), "never"],
                      retry=lambda exc: not isinstance(exc, KeyError))
    assert budget.total == 1


def test_a_stopped_host_makes_no_more_attempts():
    stopping = threading.Event()
    stopping.set()
    budget = RestartBudget(3, 60, FakeClock())
    with pytest.raises(RuntimeError):  # the opening failure is re-raised, nothing launched
        restart_round(HostConfig(), budget, ["never"], stopping=stopping)
    assert budget.total == 0


def test_time_spent_hung_does_not_count_toward_the_window():
    clock = FakeClock()
    budget = RestartBudget(1, 60, clock)
    budget.record()
    budget.ready()
    clock.now += 20
    budget.healthy()
    clock.now += 10
    budget.unhealthy()  # the first failed probe
    clock.now += 40  # failed probes until the limit: killed 70 s after ready
    budget.failure("HEALTH_CHECK_TIMEOUT")
    assert budget.spent()  # 20 s healthy < 60 s


def test_a_healthy_window_before_a_hang_still_resets_the_counter():
    clock = FakeClock()
    budget = RestartBudget(1, 60, clock)
    budget.record()
    budget.ready()
    clock.now += 61
    budget.healthy()
    budget.unhealthy()
    assert not budget.spent()
    budget.ready()  # answered again: a new stretch begins
    clock.now += 5
    budget.failure("x")
    assert not budget.spent()


def test_zero_restart_attempts_gives_up_at_once():
    budget = RestartBudget(0, 60, FakeClock())
    with pytest.raises(RuntimeError):
        restart_round(HostConfig(), budget, ["never"])
    assert budget.total == 0


def test_zero_restart_delay_means_immediate_restarts():
    budget = RestartBudget.from_config(HostConfig(restart_delay=0), clock=FakeClock())
    waits, _ = restart_round(HostConfig(restart_delay=0), budget, [OSError(), "up"])
    assert waits == [0.0, 0.0]


def test_reset_clears_attempts_and_history():
    budget = RestartBudget(1, 60, FakeClock())
    budget.failure("x")
    budget.record()
    assert budget.spent()
    budget.reset()
    assert budget.attempts == 0 and budget.history == [] and not budget.spent()


def test_current_attempts_drop_to_zero_once_a_child_stayed_ready_for_the_window():
    clock = FakeClock()
    budget = RestartBudget(3, 10, clock)
    budget.record()
    budget.ready()
    assert budget.current_attempts() == 1
    clock.now += 10
    assert budget.current_attempts() == 0
