"""start/stop with real processes under every start method: port 0, status, env, no leaks."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time

import psutil
import pytest
import requests
from conftest import METHODS, fd_count, pyhost_threads, stray_children, wait_until

from pyhost import FlaskHost, HostState, HostStatus, UnknownHostError

FAST = dict(port=0, shutdown_timeout=2.0, health_check_interval=0.05)




pytestmark = pytest.mark.usefixtures("warm_start_methods")


def port_is_free(port):
    """Nothing listens there: a server can bind it (as the child does, with SO_REUSEADDR,
    so connections of the old server lingering in TIME_WAIT do not count)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def process_gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("method", METHODS)
def test_start_serve_stop(method):
    fds, threads = fd_count(), threading.active_count()
    events = []
    host = FlaskHost("apps.hello:app", start_method=method, on_event=lambda e: events.append(e),
                     **FAST)
    assert (host.state, host.url, host.port, host.pid) == (HostState.STOPPED, None, None, None)

    assert host.start() is host
    pid, port = host.pid, host.port
    assert host.is_ready()
    assert port and port != 0  # port=0: the real port the child bound
    assert host.url == "http://127.0.0.1:%d" % port
    assert requests.get(host.url + "/", timeout=5).text == "hello"
    assert requests.get(host.url + "/pid", timeout=5).text == str(pid)
    assert pid != os.getpid()
    assert psutil.Process(pid).ppid() == os.getpid() or method == "forkserver"
    assert [e.name for e in events] == ["started", "ready"]
    assert "ready" in repr(host) and host.url in repr(host) and str(pid) in repr(host)

    host.start()  # a no-op on a started host
    assert host.pid == pid
    assert [e.name for e in events] == ["started", "ready"]

    host.stop()
    assert host.state is HostState.STOPPED
    assert not host.is_ready()
    assert host.pid is None
    assert wait_until(lambda: process_gone(pid), timeout=5)
    assert port_is_free(port)
    assert events[-1].name == "stopped"
    host.stop()  # idempotent
    host.stop(timeout=0.1)
    assert [e.name for e in events].count("stopped") == 1
    assert host.last_error is None

    assert not stray_children()
    assert wait_until(lambda: fd_count() <= fds, timeout=5), (fds, fd_count())
    assert wait_until(lambda: threading.active_count() <= threads and not pyhost_threads(),
                      timeout=5), threading.enumerate()


def test_status_fields():
    before = time.time()
    with FlaskHost("apps.hello:app", **FAST) as host:
        status = host.status()
        assert isinstance(status, HostStatus)
        assert status.state is HostState.READY
        assert status.is_ready is True
        assert status.is_restarting is False
        assert status.restart_attempts == 0
        assert status.total_restarts == 0
        assert status.last_error is None
        assert status.uptime is not None and status.uptime >= 0
        assert before <= status.last_health_check <= time.time()
        assert (status.pid, status.port, status.url) == (host.pid, host.port, host.url)
        assert status.target == "apps.hello:app"
        assert status.health_probes >= 1
        assert status.health_failures == 0
        data = json.loads(json.dumps(status.to_dict()))
        assert data["state"] == "READY"
        assert data["port"] == host.port
        assert "READY" in status.summary() and host.url in status.summary()
        with pytest.raises(dataclasses.FrozenInstanceError):
            status.state = HostState.FAILED  # frozen snapshot
    after = host.status()
    assert after.state is HostState.STOPPED
    assert (after.is_ready, after.uptime, after.pid) == (False, None, None)


def test_context_manager_stops_on_error():
    with pytest.raises(KeyError):
        with FlaskHost("apps.hello:app", **FAST) as host:
            pid = host.pid
            raise KeyError("boom")
    assert host.state is HostState.STOPPED
    assert wait_until(lambda: process_gone(pid), timeout=5)


def test_restart_keeps_the_port_and_replaces_the_process():
    with FlaskHost("apps.hello:app", **FAST) as host:
        port, pid = host.port, host.pid
        assert host.restart() is host
        assert host.is_ready()
        assert host.port == port
        assert host.pid != pid
        assert requests.get(host.url + "/pid", timeout=5).text == str(host.pid)
        assert wait_until(lambda: process_gone(pid), timeout=5)


def test_stop_then_start_again():
    host = FlaskHost("apps.hello:app", **FAST)
    try:
        host.start()
        first = host.pid
        host.stop()
        host.start()
        assert host.is_ready() and host.pid != first
        assert requests.get(host.url + "/", timeout=5).text == "hello"
    finally:
        host.stop()


def test_stop_before_start_is_harmless():
    host = FlaskHost("apps.hello:app", **FAST)
    host.stop()
    assert host.state is HostState.STOPPED


@pytest.mark.parametrize("method", METHODS)
def test_child_sees_environ_as_of_start_plus_env(method, monkeypatch):
    # The forkserver (if any) was started by the module fixture, before these changes.
    monkeypatch.setenv("PYHOST_TEST_LATE", "set after the forkserver started")
    monkeypatch.setenv("PYHOST_TEST_OVERRIDDEN", "from os.environ")
    monkeypatch.delenv("PYHOST_TEST_GONE", raising=False)
    env = {"PYHOST_TEST_EXTRA": "from env=", "PYHOST_TEST_OVERRIDDEN": "from env="}
    with FlaskHost("apps.env_app:app", start_method=method, env=env, **FAST) as host:
        def get(name):
            response = requests.get(host.url + "/env/" + name, timeout=5)
            return response.text

        assert get("PYHOST_TEST_LATE") == "set after the forkserver started"
        assert get("PYHOST_TEST_EXTRA") == "from env="
        assert get("PYHOST_TEST_OVERRIDDEN") == "from env="
        assert get("PYHOST_TEST_GONE") == "<unset>"
    assert "PYHOST_TEST_EXTRA" not in os.environ  # env= is for the child only


def test_removed_variable_is_not_handed_out_by_a_warm_forkserver(monkeypatch):
    monkeypatch.setenv("PYHOST_TEST_GONE", "stale")
    with FlaskHost("apps.env_app:app", start_method="forkserver", **FAST) as host:
        assert requests.get(host.url + "/env/PYHOST_TEST_GONE", timeout=5).text == "stale"
    monkeypatch.delenv("PYHOST_TEST_GONE")
    with FlaskHost("apps.env_app:app", start_method="forkserver", **FAST) as host:
        response = requests.get(host.url + "/env/PYHOST_TEST_GONE", timeout=5)
        assert response.status_code == 404


def test_stop_escalates_past_a_request_that_never_finishes(caplog):
    caplog.set_level(logging.INFO, logger="pyhost")
    host = FlaskHost("apps.slow_request:app", **FAST).start()
    pid, port = host.pid, host.port
    failures = []

    def hang():
        try:
            requests.get(host.url + "/hang", timeout=30)
        except requests.RequestException as exc:
            failures.append(exc)

    client = threading.Thread(target=hang)
    client.start()
    try:
        assert wait_until(lambda: "slow_request: /hang started" in host.logs(), timeout=10)
        host.stop(timeout=1.0)
    finally:
        host.stop()
        client.join(10)
    assert not client.is_alive()
    assert failures  # the hanging request was cut off, not completed
    assert wait_until(lambda: process_gone(pid), timeout=5)
    assert port_is_free(port)
    stopped = [r.getMessage() for r in caplog.records if "Stopped" in r.getMessage()]
    assert stopped and ("terminated" in stopped[-1] or "killed" in stopped[-1]), stopped


def test_stop_from_another_thread_interrupts_start():
    host = FlaskHost("apps.server_error:app", auto_restart=False, port=0,
                     health_check_timeout=60, health_check_max_retries=1000,
                     health_check_interval=0.05, health_check_max_interval=0.1)
    outcome = []

    def start():
        try:
            host.start()
            outcome.append("started")
        except UnknownHostError as exc:
            outcome.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        # Bound and probing (the app answers 500): stop() must end the wait.
        assert wait_until(lambda: host.status().health_failures >= 2, timeout=20)
        host.stop()
        starter.join(10)
    finally:
        host.stop()
        starter.join(10)
    assert not starter.is_alive()
    assert len(outcome) == 1 and "interrupted by stop()" in str(outcome[0])
    assert host.state is HostState.STOPPED
    assert not stray_children()
