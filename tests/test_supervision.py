"""Supervision with real processes: crashes, hangs, restarts, the circuit breaker."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from conftest import alive, wait_until
from conftest import http_get as get

from pyhost import (
    DependencyError,
    ErrorType,
    FlaskHost,
    HostState,
    ProcessCrash,
)

FAST = dict(port=0, health_check_interval=0.05, health_check_timeout=5, shutdown_timeout=2)




class Events:
    """Collects HostEvents and lets a test wait for one by name."""

    def __init__(self) -> None:
        self.names: list = []
        self.events: list = []
        self._cond = threading.Condition()

    def __call__(self, event) -> None:
        with self._cond:
            self.names.append(event.name)
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, name: str, count: int = 1, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.names.count(name) >= count, timeout)


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_kill_is_seen_and_restarted_with_a_new_pid(method):
    events = Events()
    with FlaskHost("apps.hello:app", start_method=method, restart_delay=0, on_event=events,
                   **FAST) as host:
        old_pid, url = host.pid, host.url
        assert get(url + "/pid") == str(old_pid)
        os.kill(old_pid, signal.SIGKILL)
        assert events.wait_for("restarted"), events.names
        assert host.is_ready()
        assert host.pid != old_pid
        assert host.url == url  # same port after the restart
        assert get(url + "/pid") == str(host.pid)
        status = host.status()
        assert status.total_restarts == 1 and status.restart_attempts == 1
        # Recovered: the crash is history, not the current error.
        assert host.last_error is None and status.last_error is None
        crash = host.errors[-1]
        assert status.error_history == (crash,)
        assert isinstance(crash, ProcessCrash)
        assert crash.signal == "SIGKILL" and crash.exit_code is None
        assert str(old_pid) in crash.message
    assert events.names[:2] == ["started", "ready"]
    assert events.names[2:6] == ["crashed", "restarting", "started", "ready"]
    assert "restarted" in events.names and events.names[-1] == "stopped"


def test_crash_without_auto_restart_fails_and_stays_down():
    events = Events()
    with FlaskHost("apps.hello:app", auto_restart=False, on_event=events, **FAST) as host:
        pid = host.pid
        os.kill(pid, signal.SIGTERM)
        assert events.wait_for("crashed")
        assert wait_until(lambda: host.state is HostState.FAILED, 5)
        assert host.pid is None and not host.is_ready()
        assert host.last_error.signal == "SIGTERM"
        assert "Run the app directly to reproduce: flask --app apps.hello:app run" in \
            host.last_error.troubleshooting
        assert host.status().to_dict()["last_error"]["type"] == "PROCESS_CRASH"
        crash = host.last_error
    # A deliberate stop(): stopped, and the crash is history, not the current error.
    assert host.state is HostState.STOPPED and host.last_error is None
    assert host.errors[-1] is crash


def test_crash_loop_gives_up_after_max_restarts_and_stays_down(tmp_path):
    events = Events()
    host = FlaskHost("apps.sup_crash_loop:app", restart_delay=0.01, max_restart_attempts=2,
                     restart_window=60, liveness_interval=None, on_event=events,
                     env={"CRASH_AFTER": "0.3"}, **FAST)
    with host:
        assert events.wait_for("gave_up", timeout=60), events.names
        assert wait_until(lambda: host.state is HostState.FAILED, 5)
        status = host.status()
        assert status.total_restarts == 2
        error = host.last_error
        assert isinstance(error, ProcessCrash) and error.exit_code == 7
        assert "Gave up" in error.message and error.details["gave_up"] is True
        assert "history: +0.0s PROCESS_CRASH (exit 7); +" in error.message
        # Circuit open: nothing more is started.
        starts = events.names.count("started")
        time.sleep(0.5)  # a window in which a broken breaker would start another child
        assert events.names.count("started") == starts == 3
        assert host.pid is None
    # start() again closes the circuit and resets the counter.
    assert events.names.count("ready") == 3


def test_transient_startup_crash_recovers(tmp_path):
    """Seed scenario 4: exits during startup → automatic restart (1/3) → restarted."""
    counter = tmp_path / "starts"
    events = Events()
    host = FlaskHost("apps.sup_flaky_start:app", restart_delay=0.01, on_event=events,
                     env={"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "2"}, **FAST)
    with host:
        assert host.is_ready()
        assert get(host.url + "/") == "started after 2 failures"
        assert host.status().total_restarts == 2
        assert events.names.count("restarting") == 2
        restarting = [e for e in events.events if e.name == "restarting"]
        assert [e.error.exit_code for e in restarting] == [1, 1]  # what it restarts from
        assert any("flaky: start 2 fails" in line for line in host.logs(100))
        lines = host.logs(100)
        marks = [i for i, line in enumerate(lines) if "output of a new app process" in line]
        assert len(marks) == 2  # one before each restarted child's output
        assert "flaky: start 1 fails" in " ".join(lines[:marks[0]])
        assert "flaky: start 2 fails" in " ".join(lines[marks[0]:marks[1]])


def test_transient_startup_crash_without_budget_raises_with_exit_code(tmp_path):
    host = FlaskHost("apps.sup_flaky_start:app", max_restart_attempts=0,
                     env={"FLAKY_COUNTER": str(tmp_path / "c"), "FLAKY_FAILURES": "5"}, **FAST)
    with pytest.raises(ProcessCrash) as caught:
        host.start()
    assert caught.value.exit_code == 1
    assert any("flaky: start 1 fails" in line for line in caught.value.stderr_tail)
    assert host.state is HostState.FAILED


def test_deterministic_error_is_not_retried(tmp_path):
    app = tmp_path / "needs_missing.py"
    app.write_text("import pyhost_no_such_module_xyz\n"
                   "from flask import Flask\napp = Flask(__name__)\n")
    events = Events()
    host = FlaskHost(str(app) + ":app", restart_delay=0, max_restart_attempts=5,
                     on_event=events, **FAST)
    with pytest.raises(DependencyError) as caught:
        host.start()
    assert caught.value.missing_module == "pyhost_no_such_module_xyz"
    assert events.names.count("started") == 1
    assert "restarting" not in events.names
    assert host.status().total_restarts == 0


def test_a_restart_that_hits_a_deterministic_error_ends_with_gave_up(tmp_path):
    app = tmp_path / "turns_broken.py"
    app.write_text("from flask import Flask\napp = Flask(__name__)\n")
    events = Events()
    with FlaskHost(str(app) + ":app", restart_delay=0, on_event=events, **FAST) as host:
        # A deploy breaks the app while it runs; then it crashes.
        app.write_text("import pyhost_no_such_module_xyz\n" + app.read_text())
        os.kill(host.pid, signal.SIGKILL)
        assert events.wait_for("gave_up"), events.names  # listeners are told it is over
        assert events.names[-4:] == ["crashed", "restarting", "started", "gave_up"]
        final = events.events[-1].error
        assert isinstance(final, DependencyError) and final is host.last_error
        assert final.missing_module == "pyhost_no_such_module_xyz"
        assert host.state is HostState.FAILED
        assert events.names.count("restarting") == 1  # not retried


def test_hung_app_is_detected_and_restarted():
    events = Events()
    with FlaskHost("apps.sup_hang:app", liveness_interval=0.2, liveness_failures=2,
                   restart_delay=0, on_event=events, **FAST) as host:
        old_pid = host.pid
        assert get(host.url + "/hang") == "hanging from now on"
        assert events.wait_for("unhealthy"), events.names
        assert events.wait_for("restarted"), events.names
        assert host.pid != old_pid
        assert get(host.url + "/") == str(host.pid)
        hang = host.errors[-1]
        assert host.last_error is None  # recovered
        assert hang.type is ErrorType.HEALTH_CHECK_TIMEOUT
        assert "hung" in hang.message
        assert wait_until(lambda: not alive(old_pid), 5)  # the hung child was killed
        assert host.status().health_failures >= 2


def test_an_app_that_hangs_after_every_start_opens_the_circuit():
    # Healthy for ~0.5 s per start, killed ~1.6 s after ready (one probe waits 1 s):
    # only the healthy part counts toward restart_window, so it never earns a reset.
    events = Events()
    host = FlaskHost("apps.sup_hangs_soon:app", liveness_interval=0.2, liveness_failures=1,
                     restart_delay=0, max_restart_attempts=1, restart_window=1.2,
                     on_event=events, **FAST)
    try:
        host.start()
        assert events.wait_for("gave_up"), events.names
        assert events.names.count("restarted") == 1
        assert host.state is HostState.FAILED
        assert "circuit open" in host.last_error.message
        assert host.status().total_restarts == 1
    finally:
        host.stop()


def test_stop_during_backoff_wait_returns_promptly():
    events = Events()
    host = FlaskHost("apps.hello:app", restart_delay=30, on_event=events, **FAST)
    host.start()
    os.kill(host.pid, signal.SIGKILL)
    assert events.wait_for("restarting")
    assert host.state is HostState.RESTARTING and host.status().is_restarting
    started = time.monotonic()
    host.stop()
    assert time.monotonic() - started < 10  # not the 30 s backoff
    assert host.state is HostState.STOPPED
    assert events.names.count("started") == 1
    assert host.status().total_restarts == 0  # the restart never happened


def test_restart_resets_the_budget_and_keeps_the_port():
    events = Events()
    with FlaskHost("apps.hello:app", restart_delay=0, on_event=events, **FAST) as host:
        port = host.port
        os.kill(host.pid, signal.SIGKILL)
        assert events.wait_for("restarted")
        assert host.status().restart_attempts == 1
        host.restart()
        assert host.port == port and host.is_ready()
        assert host.status().restart_attempts == 0


def test_status_uptime_and_health_statistics():
    with FlaskHost("apps.hello:app", liveness_interval=0.1, **FAST) as host:
        assert wait_until(lambda: host.status().health_probes >= 3, 10)
        status = host.status()
        assert status.state is HostState.READY and status.uptime > 0
        assert status.last_health_check is not None
        assert status.health["failure_rate"] == 0.0
        assert status.health["p95_latency_ms"] > 0
        data = status.to_dict()
        import json

        assert json.loads(json.dumps(data))["state"] == "READY"
    assert host.status().uptime is None


def test_external_url_mode_probes_without_a_process():
    with FlaskHost("apps.hello:app", **FAST) as backend:
        events = Events()
        with FlaskHost(external_url=backend.url, liveness_interval=0.1, liveness_failures=1,
                       health_check_timeout=2, on_event=events) as external:
            assert external.is_ready() and external.pid is None
            assert external.url == backend.url
            backend.stop()
            assert events.wait_for("unhealthy", timeout=10)
            assert external.state is HostState.UNHEALTHY
            assert "restarting" not in events.names
            # At the limit, status says why it is unhealthy (nothing to restart).
            assert wait_until(lambda: external.last_error is not None, 10)
            # Nothing answers any more: a network error, as it would be at start().
            assert external.last_error.type is ErrorType.NETWORK_ERROR
            assert "not restarted (external_url)" in external.last_error.message
            assert "Connection refused" in external.status().to_dict()["last_error"]["message"]


def test_external_url_unreachable_is_a_network_error():
    import socket

    from pyhost import NetworkError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    host = FlaskHost(external_url="http://127.0.0.1:%d" % port, health_check_timeout=0.5,
                     health_check_interval=0.05)
    with pytest.raises(NetworkError) as caught:
        host.start()
    assert "Connection refused" in caught.value.message



def test_probe_requests_stay_out_of_the_app_log():
    with FlaskHost("apps.hello:app", liveness_interval=0.05, **FAST) as host:
        assert wait_until(lambda: host.status().health_probes >= 5, 10)
        get(host.url + "/pid")
        assert wait_until(lambda: any('"GET /pid' in line for line in host.logs(100)), 5)
        assert not any('"GET / ' in line for line in host.logs(100))


def test_a_slow_liveness_probe_does_not_hold_up_stop():
    # liveness_interval=6: the first probe starts ~6 s after ready and may wait 5 s.
    with FlaskHost("apps.sup_hang:app", liveness_interval=6, liveness_failures=3,
                   **dict(FAST, shutdown_timeout=1)) as host:
        assert get(host.url + "/hang") == "hanging from now on"
        # The only "/" request after /hang is the supervisor's probe: once it blocks...
        assert wait_until(lambda: "request blocked" in host.logs(20), 15)
        started = time.monotonic()
        host.stop()
        elapsed = time.monotonic() - started
    # ...stop() kills the child, which ends the probe at once, well before its 5 s timeout.
    assert elapsed < 4.0, elapsed
    assert host.state is HostState.STOPPED


def test_restart_from_an_event_callback_is_refused_clearly_and_stop_is_allowed():
    seen = []

    def on_event(event):
        if event.name == "crashed":
            try:
                event.host.restart()
            except RuntimeError as exc:
                seen.append(str(exc))
            event.host.stop()  # stopping from a callback is fine

    stopped = Events()
    host = FlaskHost("apps.hello:app", restart_delay=0, **FAST)
    host.on_event(on_event)
    host.on_event(stopped)
    host.start()
    os.kill(host.pid, signal.SIGKILL)
    assert stopped.wait_for("stopped")
    assert seen and "on_event callback" in seen[0]
    assert wait_until(lambda: host.state is HostState.STOPPED, 5)
    assert "restarting" not in stopped.names
    host.stop()


def test_a_failed_host_without_restarts_frees_its_port_for_another_target():
    from conftest import free_port

    port = free_port()
    events = Events()
    first = FlaskHost("apps.hello:app", auto_restart=False, on_event=events,
                      **dict(FAST, port=port))
    first.start()
    os.kill(first.pid, signal.SIGKILL)
    assert events.wait_for("crashed")
    assert wait_until(lambda: first.state is HostState.FAILED, 5)
    with FlaskHost("apps.sup_hang:app", **dict(FAST, port=port)) as second:
        assert second.port == port and second.is_ready()
    first.stop()
