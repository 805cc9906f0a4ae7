"""server=: each backend serves real apps over real sockets, and its failures stay typed."""
from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time

import pytest
from conftest import TESTS, stray_children, wait_until

from pyhost import AppLoadError, DependencyError, FlaskHost, PortInUse, backends
from pyhost._meta import pip_install

WSGI_SERVERS = ["werkzeug", "waitress", "gunicorn"]
WSGI_APPS = [("apps.hello:app", b"hello"), ("apps.plain_wsgi:application", b"plain wsgi /")]



def get_twice(port, path="/", keep_alive=True):
    """Two requests from one client: (status, body, version) of each.

    http.client reconnects silently after "Connection: close"; with
    ``keep_alive`` the second request must go out on the first one's socket.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        results, sockets = [], []
        for _ in range(2):
            conn.request("GET", path)
            sockets.append(conn.sock)
            response = conn.getresponse()
            results.append((response.status, response.read(), response.version))
        reused = sockets[0] is sockets[1] and conn.sock is sockets[0]
        assert reused == keep_alive, "connection kept alive: %s" % reused
        return results
    finally:
        conn.close()


@pytest.mark.parametrize("server", WSGI_SERVERS)
@pytest.mark.parametrize("target, body", WSGI_APPS)
def test_each_wsgi_server_serves_flask_and_plain_wsgi_with_keep_alive(server, target, body):
    # gunicorn's sync workers answer "Connection: close" every time (their design).
    with FlaskHost(target, port=0, server=server) as host:
        first, second = get_twice(host.port, keep_alive=server != "gunicorn")
        assert first == (200, body, 11) and second == (200, body, 11)
        assert host.status().is_ready


def test_werkzeug_keeps_bodiless_requests_alive_and_closes_after_a_body():
    # Werkzeug drains a request's unread body after answering, which would eat
    # the next request on the connection: only requests without a body keep it.
    with FlaskHost("apps.hello:app", port=0) as host:
        conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
        try:
            conn.request("POST", "/", body=b"x" * 1000)
            answer = conn.getresponse()
            assert answer.getheader("Connection") == "close"
            answer.read()
            conn.request("GET", "/")  # http.client reconnects after "close"
            socket_of_get = conn.sock
            answer = conn.getresponse()
            assert answer.status == 200 and answer.read() == b"hello"
            assert answer.getheader("Connection") is None
            conn.request("GET", "/", headers={"Connection": "close"})
            assert conn.sock is socket_of_get
            answer = conn.getresponse()
            assert answer.getheader("Connection") == "close" and answer.read() == b"hello"
        finally:
            conn.close()


@pytest.mark.parametrize("target, server, body", [
    ("apps.asgi_apps:fastapi_app", "uvicorn", b'"hello":"fastapi"'),
    ("apps.asgi_apps:starlette_app", "uvicorn", b"hello starlette"),
    # An ASGI app under the default server is served by uvicorn automatically.
    ("apps.asgi_apps:fastapi_app", "werkzeug", b'"hello":"fastapi"'),
    ("apps.asgi_bare:app", "werkzeug", b"hello asgi"),
])
def test_uvicorn_serves_asgi_apps(target, server, body):
    with FlaskHost(target, port=0, server=server) as host:
        for status, data, version in get_twice(host.port):
            assert status == 200 and body in data and version == 11
    assert any("uvicorn" in line.lower() or "Application startup" in line
               for line in host.logs(50))


@pytest.mark.parametrize("server", WSGI_SERVERS + ["uvicorn"])
def test_port_in_use_is_typed_for_every_server(server):
    target = "apps.asgi_bare:app" if server == "uvicorn" else "apps.hello:app"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        started = time.monotonic()
        with pytest.raises(PortInUse):
            FlaskHost(target, port=holder.getsockname()[1], server=server).start()
        assert time.monotonic() - started < 10


@pytest.mark.parametrize("server", WSGI_SERVERS)
def test_raising_factory_and_missing_dependency_are_typed_for_every_server(server):
    with pytest.raises(AppLoadError, match="factories.raises: boom"):
        FlaskHost("apps.factories:raises(reason='boom')", port=0, server=server).start()
    with pytest.raises(DependencyError) as info:
        FlaskHost("apps.missing_dep:app", port=0, server=server).start()
    assert info.value.missing_module == "pyhost_missing_dependency_for_tests"


def blocked_env(*modules):
    """A child environment where ``modules`` cannot be imported (see apps/blocker)."""
    path = os.pathsep.join([os.path.join(TESTS, "apps", "blocker"), TESTS])
    return {"PYTHONPATH": path, "PYHOST_TEST_BLOCK": ",".join(modules)}


def test_asgi_app_without_uvicorn_is_app_load_error_with_the_install_line():
    # python= runs a fresh interpreter, where the blocker's sitecustomize hides uvicorn.
    started = time.monotonic()
    with pytest.raises(AppLoadError) as info:
        FlaskHost("apps.asgi_bare:app", port=0, python=sys.executable,
                  env=blocked_env("uvicorn"), health_check_timeout=30).start()
    error = info.value
    assert "ASGI app" in error.message and pip_install("asgi") in error.message
    assert any(pip_install("asgi") in step for step in error.troubleshooting)
    assert time.monotonic() - started < 20  # reported, not a health-check timeout


@pytest.mark.parametrize("server, module", [("waitress", "waitress"), ("gunicorn", "gunicorn")])
def test_a_server_that_is_not_installed_is_dependency_error(server, module):
    with pytest.raises(DependencyError) as info:
        FlaskHost("apps.plain_wsgi:application", port=0, server=server, python=sys.executable,
                  env=blocked_env(module)).start()
    assert info.value.missing_module == module
    assert any(pip_install(server) in step for step in info.value.troubleshooting)


@pytest.mark.parametrize("fields", [{"workers": 2}, {"workers": 2, "server": "waitress"},
                                    {"workers": 3, "server": "werkzeug"}])
def test_workers_without_an_engine_are_refused_before_any_process(fields):
    host = FlaskHost("apps.hello:app", port=0, **fields)
    with pytest.raises(ValueError, match="workers=.*server='gunicorn'"):
        host.start()
    assert host.pid is None and not stray_children()


def test_a_wsgi_app_under_uvicorn_is_a_clear_app_load_error():
    with pytest.raises(AppLoadError, match="WSGI app, which server='uvicorn' cannot serve"):
        FlaskHost("apps.hello:app", port=0, server="uvicorn").start()


def test_asgi_app_under_waitress_is_a_clear_app_load_error():
    with pytest.raises(AppLoadError, match="ASGI app, which server='waitress' cannot serve"):
        FlaskHost("apps.asgi_bare:app", port=0, server="waitress").start()


@pytest.mark.parametrize("server", WSGI_SERVERS + ["uvicorn"])
def test_stop_lets_an_in_flight_request_finish(server, tmp_path):
    target = "apps.asgi_apps:slow_app" if server == "uvicorn" else "apps.slow_ok:app"
    arrived = tmp_path / "arrived"
    host = FlaskHost(target, port=0, server=server, shutdown_timeout=6).start()
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    try:
        conn.request("GET", "/slow?arrived=%s" % arrived)
        assert wait_until(arrived.exists, timeout=10)  # in the app now (it takes 1 s)
        started = time.monotonic()
        host.stop()
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"done")
        assert time.monotonic() - started < 6
    finally:
        conn.close()
        host.stop()


def test_the_backends_module_lists_what_this_interpreter_runs():
    assert backends.NAMES == ("werkzeug", "waitress", "gunicorn", "uvicorn")
    assert set(backends.available()) == set(backends.NAMES)  # the test extra installs all
    assert json.loads(json.dumps(backends.available()))


def test_workers_without_gunicorn_installed_are_refused_in_the_parent(monkeypatch):
    import importlib.util

    from pyhost import HostConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gunicorn" else real(name, *a))
    config = HostConfig(workers=2, server="gunicorn")
    with pytest.raises(ValueError, match=r"HostConfig.workers: .*not installed: pip install "
                                         r"'pyhost-supervisor\[gunicorn\]'"):
        backends.validate(config)
    backends.validate(HostConfig(workers=1, server="gunicorn"))  # one process needs no engine


def test_debug_with_another_server_is_refused_before_any_process():
    host = FlaskHost("apps.hello:app", port=0, server="waitress", debug=True)
    with pytest.raises(ValueError, match="HostConfig.debug: .*server='werkzeug'"):
        host.start()
    assert host.pid is None
