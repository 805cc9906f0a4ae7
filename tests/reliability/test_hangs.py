"""A hung app is killed with its stacks shown: the error names the file and line it was at."""
from __future__ import annotations

import logging
import threading
import urllib.request

import pytest
from conftest import METHODS, wait_until

from pyhost import FlaskHost, HealthCheckTimeout, HostState

from .conftest import app, hang_line


@pytest.mark.parametrize("name", ["hang_sleep", "hang_busy", "hang_regex"])
def test_a_hang_at_import_names_its_line(name):
    """time.sleep, a busy loop, and a regex holding the GIL in C code alike."""
    host = FlaskHost(app(name), port=0, startup_timeout=2)
    with pytest.raises(HealthCheckTimeout) as info:
        host.start()
    error = info.value
    where = hang_line(name)
    assert where in error.message
    assert error.details["stuck_at"].startswith(where)
    assert any(where.split(":")[0] in line for line in error.stderr_tail)  # the stacks
    assert any("line %s" % where.rsplit(":", 1)[1] in line for line in host.logs(100))
    assert "Current thread" in "\n".join(host.logs(100))


@pytest.mark.parametrize("method", [m for m in METHODS if m != "forkserver"])
def test_a_hang_at_import_names_its_line_under_each_start_method(method):
    host = FlaskHost(app("hang_sleep"), port=0, startup_timeout=3, start_method=method)
    with pytest.raises(HealthCheckTimeout) as info:
        host.start()
    where = hang_line("hang_sleep")
    assert where in info.value.message
    # Under fork the stacks go on through this test process's own frames: the
    # error's tail keeps each thread's innermost ones, where it was stuck.
    tail = "\n".join(info.value.stderr_tail)
    assert 'File "%s", line %s' % tuple(where.rsplit(":", 1)) in tail


def test_a_request_hang_found_by_liveness_probes_names_its_line():
    host = FlaskHost(app("hang_request"), port=0, liveness_interval=0.3, liveness_failures=2,
                     restart_delay=0.1, start_method="fork")
    crashed = []
    host.on_event(lambda e: crashed.append(e.error) if e.name == "crashed" else None)
    with host:
        first = host.pid
        urllib.request.urlopen(host.url_for("/hang"), timeout=5).read()
        # A request that will never answer, as a client would leave it.
        threading.Thread(target=lambda: _get_quietly(host.url), daemon=True).start()
        assert wait_until(lambda: crashed, timeout=30), "the hang was never detected"
        assert wait_until(lambda: host.state is HostState.READY and host.pid != first, 30)
    error = crashed[0]
    where = hang_line("hang_request")
    assert isinstance(error, HealthCheckTimeout)
    assert "hung at %s" % where in error.message
    assert any("Current thread" in line for line in error.stderr_tail)


def test_sigterm_ignored_at_stop_is_killed_and_the_log_names_its_line(caplog):
    host = FlaskHost(app("ignores_sigterm"), port=0, shutdown_timeout=1.5, start_method="fork",
                     liveness_interval=None)
    host.start()
    pid = host.pid
    threading.Thread(target=lambda: _get_quietly(host.url_for("/spin")), daemon=True).start()
    # /spin holds the GIL: the child answers nothing from here on.
    assert wait_until(lambda: not _answers(host.url), timeout=10)
    with caplog.at_level(logging.WARNING, logger="pyhost"):
        host.stop()
    warnings = [r.getMessage() for r in caplog.records if "did not stop" in r.getMessage()]
    assert warnings and "pid %d" % pid in warnings[0]
    assert hang_line("ignores_sigterm") in warnings[0]
    assert any("Current thread" in line for line in host.logs(200))


def _get_quietly(url: str) -> None:
    try:
        urllib.request.urlopen(url, timeout=60).read()
    except Exception:  # noqa: BLE001 - the request is expected to fail when the child dies
        pass


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=0.5).read()
        return True
    except Exception:  # noqa: BLE001
        return False
