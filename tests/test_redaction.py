"""Nothing secret reaches an HTTP client by default: the guard's 503 body,
the health app and the metrics carry the error type, a short message and
the status fields; output, tracebacks, exception text and other programs'
command lines only with expose_details=True. The operator keeps them all."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import TESTS
from werkzeug.test import Client

from pyhost import AppLoadError, FlaskHost, PortInUse
from pyhost.errors import ProcessCrash
from pyhost.public import public_error, public_status

HELLO = os.path.join(TESTS, "apps", "hello.py") + ":app"
SECRET_APP = os.path.join(TESTS, "apps", "secret_raise.py") + ":app"
APP_SECRET = "s3cr3t-token-42"
HOLDER_SECRET = "hunter2"

@pytest.fixture
def port_holder():
    """A real process listening on a port, a password on its command line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.port_holder", "--db-password=" + HOLDER_SECRET],
        cwd=TESTS, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


def client_bodies(host, expose_details):
    """Every body a client can get: the guard's 503, the health JSON, the metrics."""
    options = {"expose_details": expose_details}
    guard = Client(host.proxy_app(**options))
    health = Client(host.health_app(**options))
    responses = [guard.get("/"), guard.post("/x", data=b"1"), health.get("/"),
                 health.get("/metrics")]
    assert [r.status_code for r in responses] == [503, 503, 503, 200]
    return [r.get_data(as_text=True) for r in responses]


def test_another_programs_command_line_stays_with_the_operator(port_holder):
    host = FlaskHost(HELLO, port=port_holder, liveness_interval=None)
    with pytest.raises(PortInUse) as caught:
        host.start()
    # The operator sees who holds the port, command line included.
    assert HOLDER_SECRET in caught.value.message
    assert HOLDER_SECRET in caught.value.details["holder_cmdline"]
    assert HOLDER_SECRET in str(host.status().to_dict())

    for body in client_bodies(host, expose_details=False):
        assert HOLDER_SECRET not in body
    guard_body = Client(host.proxy_app()).get("/").json
    assert guard_body["type"] == "PORT_IN_USE"
    assert guard_body["message"] == "The app's port is in use by another program"

    exposed = client_bodies(host, expose_details=True)
    assert HOLDER_SECRET in exposed[0] and HOLDER_SECRET in exposed[2]


def test_the_apps_exception_text_and_output_stay_with_the_operator():
    host = FlaskHost(SECRET_APP, port=0, liveness_interval=None)
    with pytest.raises(AppLoadError) as caught:
        host.start()
    error = caught.value
    assert APP_SECRET in error.message
    assert any(APP_SECRET in line for line in error.stderr_tail)
    assert APP_SECRET in (error.remote_traceback or "")

    bodies = client_bodies(host, expose_details=False)
    for body in bodies:
        assert APP_SECRET not in body
        assert TESTS not in body and "Traceback" not in body  # no file paths
    payload = Client(host.proxy_app()).get("/").json
    assert payload["type"] == "APP_LOAD_ERROR"
    assert payload["status"]["last_error"] == {
        "type": "APP_LOAD_ERROR", "message": "The app raised an exception while loading",
        "signal": None, "exit_code": payload["status"]["last_error"]["exit_code"]}

    exposed = client_bodies(host, expose_details=True)
    assert APP_SECRET in exposed[0] and APP_SECRET in exposed[2]


def test_the_config_field_is_the_default_for_the_guard_and_health():
    host = FlaskHost(SECRET_APP, port=0, liveness_interval=None, expose_details=True)
    with pytest.raises(AppLoadError):
        host.start()
    assert APP_SECRET in Client(host.proxy_app()).get("/").get_data(as_text=True)
    assert APP_SECRET in Client(host.health_app()).get("/").get_data(as_text=True)
    # An explicit option wins over the field.
    hidden = Client(host.proxy_app(expose_details=False)).get("/").get_data(as_text=True)
    assert APP_SECRET not in hidden


def test_public_projection_of_a_crash_keeps_the_signal_not_the_details():
    error = ProcessCrash("app.py:app (pid 4242) was killed by SIGKILL at /srv/app/app.py",
                         signal="SIGKILL", stderr_tail=["token=abc"],
                         remote_traceback="Traceback ...", details={"pid": 4242})
    public = public_error(error)
    assert public == {"type": "PROCESS_CRASH", "signal": "SIGKILL", "exit_code": None,
                      "message": "The app's process exited unexpectedly (SIGKILL)"}
    assert public_error(error, expose_details=True) == error.to_dict()
    assert public_error(None) is None


def test_public_status_drops_pids_paths_and_urls():
    with FlaskHost(HELLO, port=0, liveness_interval=None) as host:
        status = host.status()
        public = public_status(status)
        for field in ("pid", "port", "url", "target", "workers"):
            assert field not in public
        assert public["state"] == "READY" and public["is_ready"] is True
        assert public_status(status, expose_details=True) == status.to_dict()
        assert str(host.pid) not in Client(host.health_app()).get("/").get_data(as_text=True)
