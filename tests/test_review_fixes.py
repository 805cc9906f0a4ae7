"""Behaviour found by review: callbacks, progress bars, apps with their own processes,
huge timeouts, stop() racing readiness, health timeouts at start, dev-mode logging."""
from __future__ import annotations

import logging
import math
import threading
import time

import pytest
from conftest import http_get, pyhost_threads, wait_until

from pyhost import FlaskHost, HealthCheckTimeout, HostConfig, HostState, UnknownHostError
from pyhost.output import OutputBuffer

FAST = dict(port=0, health_check_interval=0.05, health_check_timeout=5, shutdown_timeout=2)


def test_restart_from_a_callback_during_start_is_refused_and_leaves_one_supervisor():
    refused = []

    def on_event(event):
        if event.name == "ready":
            try:
                event.host.restart()
            except RuntimeError as exc:
                refused.append(str(exc))

    with FlaskHost("apps.hello:app", on_event=on_event, **FAST) as host:
        assert refused and "on_event callback" in refused[0]
        assert host.is_ready()
        supervisors = [t for t in pyhost_threads() if t.name.startswith("pyhost-supervisor")]
        assert len(supervisors) == 1


def test_progress_bar_output_becomes_lines_and_never_grows_without_bound():
    buffer = OutputBuffer(10)
    buffer.feed(b"loading 1%\rloading 2%\rloading 3%")
    buffer.feed(b"\r\ndone\r\n")
    assert buffer.tail() == ["loading 1%", "loading 2%", "loading 3%", "done"]
    buffer.feed(b"x" * (200 * 1024))  # a redraw that never ends a line
    assert len(buffer._partial) <= 64 * 1024 + 65536
    assert buffer.tail(1)[0].startswith("xxx")


def test_an_app_can_use_multiprocessing_itself():
    with FlaskHost("apps.uses_pool:app", **FAST) as host:
        assert http_get(host.url + "/") == "6"


def test_module_level_app_run_does_not_hijack_the_child():
    with FlaskHost("apps.module_run:app", startup_timeout=20, **FAST) as host:
        assert http_get(host.url + "/") == "served by pyhost"
        assert wait_until(lambda: any("app.run()" in line for line in host.logs(50)), 5)


@pytest.mark.parametrize("field", ["liveness_interval", "restart_delay", "startup_timeout",
                                   "shutdown_timeout", "health_check_timeout"])
@pytest.mark.parametrize("value", [math.inf, 1e10])
def test_infinite_or_huge_seconds_are_refused(field, value):
    with pytest.raises(ValueError, match="HostConfig.%s: must be a finite number" % field):
        HostConfig(**{field: value})


def test_stop_between_the_last_probe_and_ready_does_not_report_ready():
    host = FlaskHost("apps.hello:app", **FAST)

    def stop_now(result):
        if result.ok:
            stopper = threading.Thread(target=host.stop)
            stopper.start()
            stopper.join()

    host._health.add_listener(stop_now)
    with pytest.raises(UnknownHostError, match="interrupted by stop"):
        host.start()
    assert host.state is HostState.STOPPED and not host.is_ready()
    assert host.pid is None


def test_a_health_check_timeout_at_start_is_raised_once_not_retried():
    names = []
    host = FlaskHost("apps.server_error:app", restart_delay=0.01, max_restart_attempts=3,
                     on_event=lambda e: names.append(e.name),
                     **dict(FAST, health_check_timeout=0.5))
    with pytest.raises(HealthCheckTimeout) as caught:
        host.start()
    assert "HTTP 500" in caught.value.message
    assert names.count("started") == 1 and "restarting" not in names


def test_stop_cuts_short_an_external_probe_that_waits_for_an_answer():
    with FlaskHost("apps.sup_hang:app", **FAST) as backend:
        assert http_get(backend.url + "/hang") == "hanging from now on"
        external = FlaskHost(external_url=backend.url, health_check_timeout=30,
                             health_check_max_interval=20)  # one probe may wait 20 s
        starter, errors = start_in_background(external)
        assert wait_until(lambda: "request blocked" in backend.logs(20), 10)
        stop_and_expect_interrupted(external, starter, errors)


def start_in_background(host):
    """``host.start()`` on a thread; returns the thread and the list its exception lands in."""
    errors = []

    def start():
        try:
            host.start()
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    return starter, errors


def stop_and_expect_interrupted(host, starter, errors):
    began = time.monotonic()
    host.stop()
    starter.join(10)
    assert not starter.is_alive()
    assert time.monotonic() - began < 5  # not the 20 s the probe would wait
    assert errors and isinstance(errors[0], UnknownHostError)


@pytest.fixture
def unanswered_address():
    """127.0.0.1:port whose accept queue is full: a further connect() gets no answer."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    held = []
    try:
        for _ in range(4):  # the queue holds backlog+1 on Linux; then SYNs are dropped
            sock = socket.socket()
            sock.settimeout(0.3)
            held.append(sock)
            try:
                sock.connect(address)
            except socket.timeout:
                break
        else:
            pytest.skip("this kernel answers connects beyond the accept queue")
        yield address
    finally:
        for sock in held:
            sock.close()
        listener.close()


def test_stop_cuts_short_an_external_probe_still_connecting(unanswered_address):
    url = "http://%s:%d/" % unanswered_address
    external = FlaskHost(external_url=url, health_check_timeout=30, health_check_max_interval=20)
    starter, errors = start_in_background(external)
    assert wait_until(lambda: external._launcher._probes_in_flight, 10)  # a probe is connecting
    time.sleep(0.2)
    assert external._launcher._probes_in_flight and external.status().health["probes"] == 0
    stop_and_expect_interrupted(external, starter, errors)


def test_development_mode_prints_each_line_once_when_the_root_logger_has_a_console(capsys):
    import sys

    from pyhost.logs import ConsoleHandler, log

    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    root.addHandler(console)
    old_level = log.level
    try:
        with FlaskHost("apps.hello:app", is_development=True, **FAST):
            pass
        assert not any(isinstance(h, ConsoleHandler) for h in log.handlers)
        err = capsys.readouterr().err
        assert err.count("ready at") == 1, err
    finally:
        root.removeHandler(console)
        log.setLevel(old_level)
