"""Retry and restart policies, in-process: recorded waits and a fake clock, no sleeping."""
from __future__ import annotations

import pytest

from pyhost.config import HostConfig
from pyhost.health import ProbeResult
from pyhost.policies import RestartBudget, health_probe_retrying, preflight_retrying, restart_wait


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


def test_restart_delays_double_per_consecutive_attempt():
    clock = FakeClock()
    budget = RestartBudget(max_attempts=3, window=60, wait=restart_wait(HostConfig()), clock=clock)
    assert budget.next_attempt("PROCESS_CRASH") == (1, 2.0)
    assert budget.next_attempt("PROCESS_CRASH") == (2, 4.0)
    assert budget.next_attempt("PROCESS_CRASH") == (3, 8.0)
    assert budget.next_attempt("PROCESS_CRASH") is None  # circuit open
    assert [reason for _, reason in budget.history] == ["PROCESS_CRASH"] * 4


def test_restart_counter_does_not_reset_on_a_short_successful_restart():
    """The ancestor reset on every restart, so a crash-a-second app restarted forever."""
    clock = FakeClock()
    budget = RestartBudget(3, 60, restart_wait(HostConfig(restart_delay=1)), clock)
    for expected in (1, 2, 3):
        attempt = budget.next_attempt("PROCESS_CRASH")
        assert attempt is not None and attempt[0] == expected
        budget.ready()
        clock.now += 5  # healthy for 5 s, well under the window
    assert budget.next_attempt("PROCESS_CRASH") is None


def test_restart_counter_resets_after_a_healthy_window():
    clock = FakeClock()
    budget = RestartBudget(2, 60, restart_wait(HostConfig(restart_delay=1)), clock)
    assert budget.next_attempt("x") == (1, 1.0)
    assert budget.next_attempt("x") == (2, 2.0)
    budget.ready()
    clock.now += 60  # stayed healthy for the whole window
    assert budget.next_attempt("x") == (1, 1.0)


def test_time_spent_hung_does_not_count_toward_the_window():
    clock = FakeClock()
    budget = RestartBudget(1, 60, restart_wait(HostConfig(restart_delay=1)), clock)
    for _ in range(2):  # twice: ready, probes pass for 20 s, then it hangs
        assert budget.next_attempt("HEALTH_CHECK_TIMEOUT") == (1, 1.0)
        budget.ready()
        clock.now += 20
        budget.healthy()
        clock.now += 10
        budget.unhealthy()  # the first failed probe
        clock.now += 40  # failed probes until the limit: killed 70 s after ready
        assert budget.next_attempt("HEALTH_CHECK_TIMEOUT") is None  # 20 s healthy < 60 s
        budget.reset()


def test_a_healthy_window_before_a_hang_still_resets_the_counter():
    clock = FakeClock()
    budget = RestartBudget(1, 60, restart_wait(HostConfig(restart_delay=1)), clock)
    assert budget.next_attempt("x") == (1, 1.0)
    budget.ready()
    clock.now += 61
    budget.healthy()
    budget.unhealthy()
    budget.ready()  # answered again: a new stretch begins
    clock.now += 5
    assert budget.next_attempt("x") == (1, 1.0)


def test_zero_restart_attempts_gives_up_at_once():
    budget = RestartBudget(0, 60, restart_wait(HostConfig()), FakeClock())
    assert budget.next_attempt("x") is None


def test_zero_restart_delay_means_immediate_restarts():
    budget = RestartBudget.from_config(HostConfig(restart_delay=0), clock=FakeClock())
    assert budget.next_attempt("x") == (1, 0.0)
    assert budget.next_attempt("x") == (2, 0.0)


def test_reset_clears_attempts_and_history():
    budget = RestartBudget(1, 60, restart_wait(HostConfig()), FakeClock())
    budget.next_attempt("x")
    assert budget.next_attempt("x") is None
    budget.reset()
    assert budget.attempts == 0 and budget.history == []
    assert budget.next_attempt("x") == (1, 2.0)


def test_current_attempts_drop_to_zero_once_a_child_stayed_ready_for_the_window():
    clock = FakeClock()
    budget = RestartBudget(3, 10, restart_wait(HostConfig()), clock)
    budget.next_attempt("x")
    budget.ready()
    assert budget.current_attempts() == 1
    clock.now += 10
    assert budget.current_attempts() == 0
