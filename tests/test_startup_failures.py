"""The ancestor's error scenarios, with real child processes.

Each failure must arrive as the right ``HostError`` subclass, carry what the
user needs (module, port and holder, stderr tail, exit code, file:line), and
leave no process, fd or thread behind. A deterministic failure is raised from
the child's report, never after waiting out a health-check budget.
"""
from __future__ import annotations

import logging
import os
import socket

import pytest
from conftest import METHODS, fd_count, open_fds, pyhost_threads, stray_children, wait_until

from pyhost import (
    AppLoadError,
    AppNotFound,
    DependencyError,
    ErrorType,
    FlaskHost,
    HealthCheckTimeout,
    HostState,
    NetworkError,
    PortInUse,
    ProcessCrash,
)
from pyhost.ports import find_port_holder

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
# Quick probes, no restarts unless a test asks: every failure surfaces at once.
QUICK = dict(port=0, auto_restart=False, shutdown_timeout=2.0, health_check_interval=0.05,
             health_check_max_interval=0.1)


class Recorder:
    def __init__(self):
        self.names = []

    def __call__(self, event):
        self.names.append(event.name)




pytestmark = pytest.mark.usefixtures("warm_start_methods")


@pytest.fixture
def no_fd_leak():
    count, before = fd_count(), open_fds()
    yield
    assert wait_until(lambda: fd_count() <= count, timeout=5), (
        "fds leaked: %s" % sorted(set(open_fds().items()) - set(before.items())))


def start_failure(target, expected, **fields):
    """Start ``target``, expect ``expected``; check the host is FAILED and left nothing."""
    events = Recorder()
    host = FlaskHost(target, on_event=events, **dict(QUICK, **fields))
    with pytest.raises(expected) as info:
        host.start()
    error = info.value
    assert host.last_error is error
    assert host.get_last_error() is error
    status = host.status()
    assert status.state is HostState.FAILED
    assert status.is_ready is False
    assert status.last_error is error
    assert host.pid is None
    assert not host.is_ready()
    assert not stray_children()
    assert not pyhost_threads()
    host.stop()  # idempotent after a failure
    return error, events.names


# ---------------------------------------------------------- 1. missing dependency
@pytest.mark.parametrize("method", METHODS)
def test_missing_dependency_is_reported_not_timed_out(method, no_fd_leak):
    # Default health budget (10 s): a report, not a timeout, must end the start.
    error, events = start_failure("apps.missing_dep:app", DependencyError, start_method=method,
                                  auto_restart=True)
    assert error.type is ErrorType.DEPENDENCY_ERROR
    assert error.missing_module == "pyhost_missing_dependency_for_tests"
    assert "pyhost_missing_dependency_for_tests" in error.message
    assert "pip install pyhost-missing-dependency-for-tests" in error.troubleshooting[0]
    assert "ModuleNotFoundError" in error.remote_traceback
    assert any("ModuleNotFoundError" in line for line in error.stderr_tail)
    assert not any("importlib" in line for line in error.stderr_tail)  # the app's frames only
    assert events.count("started") == 1  # deterministic: never restarted
    assert "restarting" not in events


# ------------------------------------------------------------- 2. port in use
@pytest.fixture
def busy_port():
    """A port held by a listening socket of this test process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("method", METHODS)
def test_port_in_use_names_the_port_and_its_holder(method, busy_port, no_fd_leak):
    error, events = start_failure("apps.hello:app", PortInUse, start_method=method,
                                  port=busy_port, auto_restart=True)
    assert error.type is ErrorType.PORT_IN_USE
    assert error.port == busy_port
    assert str(busy_port) in error.message
    assert str(busy_port) in error.troubleshooting[0]
    assert events.count("started") == 1
    if find_port_holder(busy_port) is not None:  # /proc shows socket owners here
        assert error.details["holder_pid"] == os.getpid()
        assert "pid %d" % os.getpid() in error.message
        assert "kill %d" % os.getpid() in " ".join(error.troubleshooting)
    else:
        assert any("lsof -i :%d" % busy_port in step for step in error.troubleshooting)


def test_a_foreign_server_on_the_port_is_never_reported_ready(busy_port):
    # The ancestor (and pytest-flask) probed the port and took whoever answered as the app.
    host = FlaskHost("apps.hello:app", **dict(QUICK, port=busy_port))
    with pytest.raises(PortInUse):
        host.start()
    assert not host.is_ready()


def test_start_again_once_the_port_is_free():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    host = FlaskHost("apps.hello:app", **dict(QUICK, port=port))
    try:
        with pytest.raises(PortInUse):
            host.start()
        sock.close()
        host.start()
        assert host.is_ready()
        assert host.port == port
        assert host.last_error is None
    finally:
        sock.close()
        host.stop()


# ------------------------------------------------------ 3. crash during import
@pytest.mark.parametrize("method", METHODS)
def test_crash_during_import_keeps_stderr_and_exit_code(method, no_fd_leak):
    error, events = start_failure("apps.crash_at_import:app", ProcessCrash, start_method=method)
    assert error.type is ErrorType.PROCESS_CRASH
    assert error.exit_code == 3
    assert error.signal is None
    assert "crash_at_import: cannot open the model file weights.bin" in error.stderr_tail
    assert "exited with code 3" in error.message
    assert "code 3" in error.troubleshooting[0]


def test_crash_during_import_is_retried_then_gives_up(no_fd_leak):
    # A child that dies without a report may be transient (seed scenario 4): retried
    # within the restart budget, then the circuit opens.
    error, events = start_failure("apps.crash_at_import:app", ProcessCrash, auto_restart=True,
                                  max_restart_attempts=2, restart_delay=0.01)
    assert events.count("started") == 3
    assert events.count("restarting") == 2
    assert events[-1] == "gave_up"
    assert error.details.get("gave_up") is True
    assert error.exit_code == 3
    assert "crash_at_import: cannot open the model file weights.bin" in error.stderr_tail
    assert "Gave up" in error.message


def test_sys_exit_during_import_is_a_crash_with_that_code(no_fd_leak):
    error, _ = start_failure("apps.exits_at_import:app", ProcessCrash)
    assert error.exit_code == 4
    assert any("DATABASE_URL is not set" in line for line in error.stderr_tail)


# ---------------------------------------------------- 4. health-check timeout
def test_health_check_timeout_logs_each_attempt_with_its_reason(caplog, no_fd_leak):
    caplog.set_level(logging.INFO, logger="pyhost")
    error, events = start_failure("apps.server_error:app", HealthCheckTimeout,
                                  health_check_timeout=1.0)
    assert error.type is ErrorType.HEALTH_CHECK_TIMEOUT
    assert "HTTP 500" in error.message
    assert error.details["last_result"] == "HTTP 500"
    assert error.troubleshooting[0].startswith("The app answers HTTP 500 at http://")
    attempts = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("Health check attempt")]
    assert attempts, caplog.text
    assert attempts[0] == "Health check attempt 1/20... (HTTP 500)"
    assert all(line.endswith("(HTTP 500)") for line in attempts)
    assert "started" in events and "ready" not in events


def test_health_path_must_answer_2xx(no_fd_leak):
    error, _ = start_failure("apps.hello:app", HealthCheckTimeout, health_path="/missing",
                             health_check_timeout=0.5)
    assert "HTTP 404" in error.message
    assert "/missing answers HTTP 404" in error.troubleshooting[0]


def test_health_check_max_retries_bounds_the_probes(no_fd_leak):
    error, _ = start_failure("apps.server_error:app", HealthCheckTimeout,
                             health_check_max_retries=3, health_check_timeout=30)
    assert "after 3 attempts" in error.message


def test_health_check_timeout_is_the_whole_budget_not_a_last_full_probe(no_fd_leak):
    import time

    # Every probe of /hang blocks; one probe may wait 2.9 s of the 3 s budget.
    began = time.monotonic()
    error, _ = start_failure("apps.slow_request:app", HealthCheckTimeout, health_path="/hang",
                             health_check_timeout=3, health_check_max_interval=2.9,
                             shutdown_timeout=0.5)  # the hung request delays stop()
    # Not 6.3 s: the second probe gets what was left of the budget, not 2.9 s more.
    assert time.monotonic() - began < 5.0
    assert "last: Timeout" in error.message


def test_unreachable_external_url_is_a_network_error_with_the_reason(no_fd_leak):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    host = FlaskHost(external_url="http://127.0.0.1:%d/" % port, health_check_timeout=0.5,
                     health_check_interval=0.05)
    with pytest.raises(NetworkError, match="Connection refused") as info:
        host.start()
    host.stop()
    assert "curl -i http://127.0.0.1:%d/" % port in info.value.troubleshooting[0]


# ------------------------- 5. SCRIPT_NOT_FOUND vs DEPENDENCY_ERROR vs APP_LOAD_ERROR
@pytest.mark.parametrize(
    "target, expected, text",
    [
        ("apps.no_such_module:app", AppNotFound, "no module named 'apps.no_such_module'"),
        ("no_such_top_level_pkg:app", AppNotFound, "no module named 'no_such_top_level_pkg'"),
        ("apps.hello:no_such_attr", AppNotFound, "no attribute 'no_such_attr'"),
        ("apps.several_apps", AppNotFound, "several Flask apps"),
        ("apps.missing_dep:app", DependencyError, "pyhost_missing_dependency_for_tests"),
        ("apps.wrong_version:app", DependencyError, "FeatureFromTheFuture"),
        ("apps.imports_own_missing:app", AppLoadError, "no_such_sibling_module"),
        ("apps.raises_at_import:app", AppLoadError, "settings.toml is missing"),
        ("apps.factories:raises(reason='db down')", AppLoadError, "factories.raises: db down"),
        ("apps.factories:returns_none()", AppLoadError, "returned NoneType"),
    ],
)
def test_load_failures_are_classified(target, expected, text, no_fd_leak):
    error, events = start_failure(target, expected, auto_restart=True)
    assert type(error) is expected
    assert text in error.message
    assert events.count("started") == 1  # reported by the child, never retried
    assert error.exit_code == 3


def test_syntax_error_names_file_and_line_in_troubleshooting(no_fd_leak):
    error, _ = start_failure("apps.syntax_error:app", AppLoadError)
    where = "%s:7" % os.path.join(APPS, "syntax_error.py")
    assert where in error.message
    assert error.troubleshooting[0] == "Fix the error raised at %s" % where
    assert "SyntaxError" in error.remote_traceback


def test_raising_factory_names_its_line(no_fd_leak):
    error, _ = start_failure("apps.factories:raises()", AppLoadError)
    assert error.troubleshooting[0] == "Fix the error raised at %s:16" % os.path.join(
        APPS, "factories.py")
    assert "RuntimeError: factories.raises: no reason given" in error.remote_traceback


def test_missing_file_is_app_not_found_before_any_process(tmp_path, no_fd_leak):
    missing = str(tmp_path / "api_server.py")
    error, events = start_failure(missing + ":app", AppNotFound)
    assert missing in error.message
    assert "started" not in events  # no child was ever started
    assert error.exit_code is None


# ------------------------------------------------------------ other budgets
def test_loading_longer_than_startup_timeout(no_fd_leak):
    error, events = start_failure("apps.slow_import:app", HealthCheckTimeout, startup_timeout=0.5)
    assert "startup_timeout=0.5" in error.message
    assert error.details["phase"] == "loading"
    assert "slow_import: loading the model..." in error.stderr_tail
    assert "ready" not in events


def test_an_address_not_on_this_machine_is_a_network_error(no_fd_leak):
    # 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface.
    error, _ = start_failure("apps.hello:app", NetworkError, host="192.0.2.1")
    assert error.type is ErrorType.NETWORK_ERROR
    assert "192.0.2.1" in error.message
    assert any("'192.0.2.1'" in step for step in error.troubleshooting)
