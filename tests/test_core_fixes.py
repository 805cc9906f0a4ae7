"""Behaviour the core redesign fixed, with real processes."""
from __future__ import annotations

import os
import signal
import threading

from conftest import free_port, wait_until
from conftest import http_get as get
from test_supervision import FAST, Events

from pyhost import (
    DependencyError,
    FlaskHost,
    HostError,
    HostState,
    PortInUse,
    UnknownHostError,
)


def test_two_threads_starting_one_target_on_one_port_leave_exactly_one_serving():
    for _ in range(5):
        port = free_port()
        hosts = [FlaskHost("apps.hello:app", **dict(FAST, port=port)) for _ in range(2)]
        errors = []
        barrier = threading.Barrier(2)

        def run(host, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                host.start()
            except HostError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(host,)) for host in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        try:
            serving = [host for host in hosts if host.is_ready()]
            assert len(serving) == 1, (hosts, errors)
            assert not errors, errors  # the later start replaced the earlier host
            assert get(serving[0].url + "/pid") == str(serving[0].pid)
        finally:
            for host in hosts:
                host.stop()


def test_an_interrupted_start_records_its_error():
    host = FlaskHost("apps.slow_import:app", port=0, startup_timeout=30)
    errors = []

    def run():
        try:
            host.start()
        except HostError as exc:
            errors.append(exc)

    starter = threading.Thread(target=run)
    starter.start()
    assert wait_until(lambda: host.pid is not None, 10)
    host.stop()
    starter.join(30)
    assert len(errors) == 1 and isinstance(errors[0], UnknownHostError)
    assert host.last_error is errors[0] and host.state is HostState.STOPPED


def test_a_death_without_a_report_is_typed_from_its_output_and_not_retried():
    events = Events()
    host = FlaskHost("apps.catches_import_error:app", restart_delay=0.01, on_event=events,
                     **FAST)
    try:
        host.start()
    except DependencyError as exc:
        error = exc
    else:
        raise AssertionError("started")
    assert error.missing_module == "flask_nonexistent_extension"
    assert error.details["reason"] == "output_pattern"
    assert "restarting" not in events.names  # deterministic: no blind restarts
    assert events.names.count("started") == 1


def test_an_own_server_that_finds_the_port_taken_is_port_in_use():
    host = FlaskHost("apps.own_server_port_busy:app", restart_delay=0.01, **FAST)
    try:
        host.start()
    except PortInUse as exc:
        assert "Address already in use" in exc.message
    else:
        raise AssertionError("started")


def test_after_cooldown_a_half_open_attempt_brings_a_failed_host_back(tmp_path):
    marker = tmp_path / "dependency"
    marker.write_text("here")
    events = Events()
    host = FlaskHost("apps.sup_needs_file:app", env={"NEEDS_FILE": str(marker)},
                     max_restart_attempts=0, cooldown=0.3, liveness_interval=None,
                     on_event=events, **FAST)
    with host:
        marker.unlink()
        os.kill(host.pid, signal.SIGKILL)
        assert events.wait_for("gave_up"), events.names
        assert host.state is HostState.FAILED and host.status().circuit == "open"
        assert events.wait_for("half_open", count=2), events.names  # still failing
        marker.write_text("back")
        assert events.wait_for("restarted"), events.names
        assert wait_until(host.is_ready, 10)
        assert host.status().circuit == "closed" and host.last_error is None
        assert get(host.url + "/") == str(host.pid)
