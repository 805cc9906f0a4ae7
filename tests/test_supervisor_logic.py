"""Supervision logic with a fake child and a fake clock: no processes, no sleeping.

``World`` is the clock, the sleep and the event queue the supervisor is given:
time only moves when the supervisor waits, and scheduled actions (a crash, a
hang, a stop()) happen when the clock reaches them.
"""
from __future__ import annotations

import collections
import itertools
import queue
import threading
from typing import Any, Callable, List, Optional

import pytest

from pyhost.config import HostConfig
from pyhost.errors import (
    AppLoadError,
    DependencyError,
    ErrorType,
    HostError,
    ProcessCrash,
    make_error,
)
from pyhost.health import ProbeResult
from pyhost.launcher import Interrupted
from pyhost.lifecycle import Lifecycle
from pyhost.output import OutputBuffer
from pyhost.policies import RestartBudget
from pyhost.process import ChildEvent, Exited, Wake
from pyhost.status import HostState
from pyhost.supervisor import Supervisor


class World:
    """Virtual time, scheduled actions, and the supervisor's event queue."""

    def __init__(self, end: float = 10_000.0) -> None:
        self.now = 0.0
        self.end = end  # nothing more will happen after this: the run stops
        self.stopping = threading.Event()
        self.sleeps: List[float] = []
        self._actions: List[Any] = []
        self._items: collections.deque = collections.deque()
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    def at(self, when: float, action: Callable[[], Any]) -> None:
        self._actions.append((when, next(self._order), action))
        self._actions.sort()

    def put(self, item: Any) -> None:
        self._items.append(item)

    def _run_until(self, deadline: float) -> None:
        while self._actions and self._actions[0][0] <= deadline:
            when, _, action = self._actions.pop(0)
            self.now = max(self.now, when)
            action()
        self.now = max(self.now, deadline)

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        deadline = self.now + seconds
        while self._actions and self._actions[0][0] <= deadline and not self.stopping.is_set():
            self._run_until(self._actions[0][0])
        if not self.stopping.is_set():
            self.now = deadline
        return self.stopping.is_set()

    def get(self, timeout: Optional[float] = None) -> Any:
        deadline = None if timeout is None else self.now + timeout
        while True:
            if self._items:
                return self._items.popleft()
            if self.stopping.is_set() or self.now >= self.end:
                self.stopping.set()
                return ChildEvent(None, Wake())
            due = self._actions[0][0] if self._actions else self.end
            if deadline is not None and due > deadline:
                self.now = deadline
                raise queue.Empty
            self._run_until(due)


class FakeChild:
    _pids = itertools.count(1000)

    def __init__(self, world: World) -> None:
        self.world = world
        self.pid = next(self._pids)
        self.exited = threading.Event()
        self.hung = False
        self.killed = False

    def crash(self, code: int = -9) -> None:
        self.exited.set()
        self.world.put(ChildEvent(self, Exited(code)))


class FakeLauncher:
    """Launches ``FakeChild`` objects, or raises the errors it is given, in order."""

    restartable = True
    name = "fake"

    def __init__(self, world: World, outcomes: List[Any]) -> None:
        self.world = world
        self.outcomes = list(outcomes)
        self.child: Optional[FakeChild] = None
        self.children: List[FakeChild] = []
        self.launched_at: List[float] = []
        self.output = OutputBuffer(10)
        self.events = world
        self.killed: List[FakeChild] = []

    def launch(self) -> FakeChild:
        self.launched_at.append(self.world.now)
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        child = FakeChild(self.world)
        self.child = child
        self.children.append(child)
        if callable(outcome):
            outcome(child)  # schedules what this child will do
        return child

    def liveness_probe(self) -> ProbeResult:
        hung = self.child is None or self.child.hung
        return ProbeResult(not hung, "Timeout" if hung else "HTTP 200", None if hung else 200,
                           0.001, 0.0)

    def crash_error(self, child: FakeChild, when: str) -> HostError:
        return make_error(ErrorType.PROCESS_CRASH, "pid %d crashed %s" % (child.pid, when),
                          signal="SIGKILL")

    def kill_hung(self, child: FakeChild) -> str:
        child.killed = True
        child.exited.set()
        self.killed.append(child)
        return "app.py:3 in handler"

    def shutdown(self, timeout: float) -> None:
        return None


def supervise(world: World, outcomes: List[Any], **fields: Any):
    """A supervisor over a fake launcher; returns it and the event names it emits."""
    config = HostConfig(**dict(dict(liveness_interval=None, restart_delay=2.0,
                                    max_restart_attempts=3, restart_window=60), **fields))
    lifecycle = Lifecycle(owner=None, clock=world.clock)
    names: List[str] = []
    lifecycle.add_listener(lambda event: names.append(event.name))
    launcher = FakeLauncher(world, outcomes)
    supervisor = Supervisor(config, lifecycle=lifecycle, launcher=launcher,  # type: ignore
                            budget=RestartBudget.from_config(config, clock=world.clock),
                            stopping=world.stopping, events=world,  # type: ignore
                            clock=world.clock, sleep=world.sleep)
    return supervisor, names


def start(supervisor: Supervisor) -> None:
    supervisor.lifecycle.to(HostState.STARTING)
    supervisor.bring_up(starting=True)


def crash_after(seconds: float) -> Callable[[FakeChild], None]:
    return lambda child: child.world.at(child.world.now + seconds, child.crash)


def hang_after(seconds: float) -> Callable[[FakeChild], None]:
    return lambda child: child.world.at(child.world.now + seconds,
                                        lambda: setattr(child, "hung", True))


def test_a_crash_is_restarted_after_restart_delay():
    world = World(end=100)
    supervisor, names = supervise(world, [crash_after(5)])
    start(supervisor)
    supervisor.run()
    assert world.sleeps == [2.0]
    assert supervisor.launcher.launched_at == [0.0, 7.0]  # crashed at 5, restarted 2 s later
    assert names == ["ready", "crashed", "restarting", "ready", "restarted"]
    assert supervisor.lifecycle.state is HostState.READY and supervisor.lifecycle.error is None
    assert isinstance(supervisor.lifecycle.history[-1], ProcessCrash)
    assert supervisor.budget.total == 1


def test_gives_up_when_the_window_budget_is_spent():
    world = World()
    supervisor, names = supervise(world, [crash_after(1)] * 4)
    start(supervisor)
    supervisor.run()
    assert world.sleeps == [2.0, 4.0, 8.0]  # doubling, across rounds of one window
    assert supervisor.lifecycle.state is HostState.FAILED
    assert supervisor.lifecycle.circuit == "open"
    assert names[-1] == "gave_up" and names.count("restarted") == 3
    error = supervisor.lifecycle.error
    assert error.details["gave_up"] and "Gave up on fake after 3 restart attempts" in error.message
    assert error.details["history"].count("PROCESS_CRASH") == 4


def test_a_healthy_window_resets_the_budget():
    world = World(end=500)
    supervisor, names = supervise(world, [crash_after(5), crash_after(100), "ok"],
                                  max_restart_attempts=1)
    start(supervisor)
    supervisor.run()
    # After 100 s healthy (> restart_window=60), the second crash is restart 1 of 1 again.
    assert world.sleeps == [2.0, 2.0]
    assert supervisor.lifecycle.state is HostState.READY
    assert names.count("restarted") == 2 and "gave_up" not in names


def test_a_hang_is_killed_and_restarted():
    world = World(end=200)
    supervisor, names = supervise(world, [hang_after(15)], liveness_interval=10,
                                  liveness_failures=3)
    start(supervisor)
    supervisor.run()
    first, second = supervisor.launcher.children
    assert supervisor.launcher.killed == [first] and not second.killed
    # Probes at 10 (ok), 20, 30, 40 (failed): killed at 40, restarted 2 s later.
    assert supervisor.launcher.launched_at == [0.0, 42.0]
    assert names[:4] == ["ready", "unhealthy", "crashed", "restarting"]
    hang = supervisor.lifecycle.history[-1]
    assert hang.type is ErrorType.HEALTH_CHECK_TIMEOUT and "hung at app.py:3" in hang.message
    assert supervisor.lifecycle.state is HostState.READY


def test_a_deterministic_error_on_restart_gives_up_at_once():
    world = World()
    missing = DependencyError("no module named 'x'", missing_module="x")
    supervisor, names = supervise(world, [crash_after(5), missing])
    start(supervisor)
    supervisor.run()
    assert world.sleeps == [2.0]  # one restart, which hit the missing module: no more
    assert supervisor.lifecycle.state is HostState.FAILED
    assert supervisor.lifecycle.error is missing and names[-1] == "gave_up"


def test_stop_during_the_backoff_launches_nothing():
    world = World()
    supervisor, names = supervise(world, [crash_after(5)])
    world.at(6, world.stopping.set)  # stop() one second into the 2 s backoff
    start(supervisor)
    supervisor.run()
    assert supervisor.launcher.launched_at == [0.0]
    assert supervisor.budget.total == 0
    assert names == ["ready", "crashed", "restarting"]


def test_stop_during_start_interrupts_the_startup_retries():
    world = World()
    died = make_error(ErrorType.PROCESS_CRASH, "died during startup", exit_code=1)
    supervisor, _ = supervise(world, [died])
    world.at(1, world.stopping.set)
    supervisor.lifecycle.to(HostState.STARTING)
    with pytest.raises(Interrupted):
        supervisor.bring_up(starting=True)
    assert supervisor.launcher.launched_at == [0.0]


def test_a_health_check_timeout_at_start_is_not_multiplied():
    world = World()
    timeout = make_error(ErrorType.HEALTH_CHECK_TIMEOUT, "never answered")
    supervisor, _ = supervise(world, [timeout])
    supervisor.lifecycle.to(HostState.STARTING)
    with pytest.raises(HostError) as raised:
        supervisor.bring_up(starting=True)
    assert raised.value is timeout and world.sleeps == []


def test_half_open_after_cooldown_closes_the_circuit_when_it_works():
    world = World(end=1000)
    broken = AppLoadError("boom")
    supervisor, names = supervise(world, [crash_after(1), broken, broken, "ok"], cooldown=30)
    start(supervisor)
    supervisor.run()
    # crash at 1 → restart at 3 fails (deterministic) → FAILED; half-open at 33 fails;
    # half-open at 63 works.
    assert supervisor.launcher.launched_at == [0.0, 3.0, 33.0, 63.0]
    assert names.count("half_open") == 2 and names.count("gave_up") == 2
    assert names[-3:] == ["half_open", "ready", "restarted"]
    assert supervisor.lifecycle.state is HostState.READY
    assert supervisor.lifecycle.circuit == "closed" and supervisor.budget.attempts == 0


def test_without_cooldown_the_circuit_stays_open():
    world = World(end=1000)
    supervisor, names = supervise(world, [crash_after(1), AppLoadError("boom")])
    start(supervisor)
    supervisor.run()
    assert supervisor.launcher.launched_at == [0.0, 3.0]
    assert "half_open" not in names and supervisor.lifecycle.state is HostState.FAILED


def test_without_auto_restart_a_crash_fails_the_host():
    world = World()
    supervisor, names = supervise(world, [crash_after(5)], auto_restart=False)
    start(supervisor)
    supervisor.run()
    assert names == ["ready", "crashed"] and world.sleeps == []
    assert supervisor.lifecycle.state is HostState.FAILED
    assert isinstance(supervisor.lifecycle.error, ProcessCrash)
