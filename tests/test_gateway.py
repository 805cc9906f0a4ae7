"""The route guard (host.proxy_app()), the health endpoint (host.health_app()),
metrics, and examples/gateway.py: a main Flask app in front of a hosted app,
a front app + hosted API layout."""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from conftest import TESTS, serve, wait_until
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client, create_environ, run_wsgi_app

from pyhost import FlaskHost, HostState
from pyhost.wsgi import proxy_app

APP = os.path.join(TESTS, "apps", "gateway_app.py") + ":app"
SLOW_APP = os.path.join(TESTS, "apps", "gateway_slow.py") + ":app"
ROOT = os.path.dirname(TESTS)
FAST = {"port": 0, "liveness_interval": None}


@contextlib.contextmanager
def front(host, **mounts):
    """The layout: a main Flask app, the guard and the health mounted in it."""
    main = Flask("front")

    @main.route("/")
    def index():
        return "main app"

    routes = {"/api/model": host.proxy_app(), "/api/health/python": host.health_app()}
    routes.update(mounts)
    main.wsgi_app = DispatcherMiddleware(main.wsgi_app, routes)
    with serve(main) as address:
        yield address


def raw_get(address, path, method="GET", body=None, headers=None):
    """status, [(header, value), ...] as sent, body: what a client really receives."""
    conn = http.client.HTTPConnection(address, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def metrics_of(text):
    """{(sample name, frozen labels): value} from Prometheus text, via its own parser."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "app"}
            samples[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return samples


# --------------------------------------------------------------------------
# forwarding when ready
# --------------------------------------------------------------------------
def test_status_codes_headers_and_cookies_pass_through():
    with FlaskHost(APP, **FAST) as host, front(host) as address:
        for code in (200, 201, 404, 500):
            status, headers, body = raw_get(address, "/api/model/status/%d" % code)
            assert status == code
            assert body == b"status %d" % code  # the child's answer, not the front's
            names = [name.lower() for name, _ in headers]
            assert ("X-Test-Header", "from-child") in headers
            assert sorted(v for k, v in headers if k.lower() == "set-cookie") == \
                ["a=1; Path=/", "b=2; Path=/"]
            # The front server sets these itself; forwarding the child's would double them.
            assert names.count("date") == 1 and names.count("server") == 1

        status, headers, _ = raw_get(address, "/api/model/redirect")
        assert status == 302
        assert dict(headers)["Location"] == "/echo?from=redirect"

        status, _, body = raw_get(address, "/api/model/echo", method="DELETE")
        assert status == 200 and json.loads(body)["method"] == "DELETE"

        status, headers, body = raw_get(address, "/api/model/status/201", method="HEAD")
        assert status == 201 and body == b""
        assert dict(headers)["Content-Length"] == "10"


def test_request_bodies_arrive_intact():
    payload = os.urandom(3 * 1024 * 1024)
    with FlaskHost(APP, **FAST) as host, front(host) as address:
        url = "http://%s/api/model/echo" % address
        answer = requests.post(url, data=payload, timeout=30,
                               headers={"Content-Type": "application/octet-stream"}).json()
        assert answer["length"] == len(payload)
        assert answer["sha256"] == hashlib.sha256(payload).hexdigest()
        assert answer["content_type"] == "application/octet-stream"

        # A chunked upload (no Content-Length): ProxyMiddleware alone drops it.
        pieces = [os.urandom(50_000) for _ in range(7)]
        answer = requests.put(url, data=iter(pieces), timeout=30).json()
        assert answer["method"] == "PUT"
        assert answer["length"] == sum(map(len, pieces))
        assert answer["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
        assert "Transfer-Encoding" not in answer["headers"]

        answer = requests.post(url, json={"image": "x" * 1000}, timeout=30).json()
        assert answer["content_type"] == "application/json"
        assert answer["length"] == len(json.dumps({"image": "x" * 1000}))

        answer = requests.post(url, files={"file": ("a.bin", b"\x00\x01" * 500)},
                               timeout=30).json()
        assert answer["content_type"].startswith("multipart/form-data; boundary=")

        answer = requests.post(url, timeout=30).json()
        assert answer["method"] == "POST" and answer["length"] == 0


def test_an_empty_content_length_is_no_body_not_an_endless_chunked_one():
    # Some servers put CONTENT_LENGTH="" in the environ for a request without
    # a body; ProxyMiddleware would announce a chunked body and never end it.
    with FlaskHost(APP, **FAST) as host:
        environ = create_environ("/echo", method="POST")
        environ["CONTENT_LENGTH"] = ""
        iterable, status, _ = run_wsgi_app(proxy_app(host, timeout=5), environ, buffered=True)
        assert status.startswith("200")
        assert json.loads(b"".join(iterable))["length"] == 0


def test_a_streamed_response_arrives_complete():
    pieces, size = 3000, 700
    expected = b"".join((b"%06d:" % n) + bytes([65 + n % 26]) * size + b"\n"
                        for n in range(pieces))
    with FlaskHost(APP, **FAST) as host, front(host) as address:
        response = requests.get("http://%s/api/model/stream?pieces=%d&size=%d"
                                % (address, pieces, size), stream=True, timeout=30)
        assert response.status_code == 200
        # No length known up front: relayed as a stream, not buffered into one body.
        assert "Content-Length" not in response.headers
        assert response.headers["Transfer-Encoding"] == "chunked"
        received = []
        for chunk in response.iter_content(chunk_size=None):
            received.append(chunk)
        assert len(received) > 1
        assert b"".join(received) == expected


def test_mount_prefix_paths_query_and_forwarded_headers():
    with FlaskHost(APP, **FAST) as host, \
            front(host, **{"/full": proxy_app(host, prefix="/echo")}) as address:
        status, _, body = raw_get(address, "/api/model/echo/caf%C3%A9/a%25b?x=1&x=2&y=%20")
        answer = json.loads(body)
        assert status == 200
        # SCRIPT_NAME (the mount) is stripped, the rest arrives byte for byte.
        assert answer["path"] == "/echo/café/a%b"
        assert answer["raw_path"] == "/echo/caf%C3%A9/a%25b?x=1&x=2&y=%20"
        assert answer["args"] == {"x": ["1", "2"], "y": [" "]}
        # Escapes of characters that need none stay as the client wrote them.
        answer = json.loads(raw_get(address, "/api/model/echo/org%2Fmodel/a%40b%3Dc;%7E")[2])
        assert answer["raw_path"] == "/echo/org%2Fmodel/a%40b%3Dc;%7E"
        answer = json.loads(raw_get(address, "/api/%6Dodel/echo/x%2Fy")[2])  # mount escaped
        assert answer["raw_path"] == "/echo/x%2Fy"
        headers = answer["headers"]
        assert headers["Host"] == address  # the client's Host, not the child's
        assert headers["X-Forwarded-Prefix"] == "/api/model"
        assert headers["X-Forwarded-For"] == "127.0.0.1"
        assert headers["X-Forwarded-Host"] == address
        assert headers["X-Forwarded-Proto"] == "http"

        # The mount point itself is the child's root.
        assert raw_get(address, "/api/model")[2] == b"gateway test app"
        # Not under the mount: the main app answers.
        assert raw_get(address, "/")[2] == b"main app"

        # prefix= puts a path in front of what is forwarded.
        answer = json.loads(raw_get(address, "/full/more")[2])
        assert answer["path"] == "/echo/more"
        assert answer["headers"]["X-Forwarded-Prefix"] == "/full"


def test_a_path_rewritten_by_a_middleware_is_forwarded_as_rewritten():
    from pyhost.wsgi import _raw_path_info

    environ = {"RAW_URI": "/api/org%2Fm?q=1", "SCRIPT_NAME": "/api", "PATH_INFO": "/org/m"}
    assert _raw_path_info(environ) == "/org%2Fm"
    environ["PATH_INFO"] = "/v2/org/m"  # not what the client sent: the decoded path is used
    assert _raw_path_info(environ) is None
    assert _raw_path_info({"SCRIPT_NAME": "", "PATH_INFO": "/x"}) is None  # no raw target kept
    absolute = {"REQUEST_URI": "http://h:1/a%2Fb", "SCRIPT_NAME": "", "PATH_INFO": "/a/b"}
    assert _raw_path_info(absolute) == "/a%2Fb"


def test_the_guard_follows_the_host_to_a_new_port():
    """Made before start() (port 0: no port yet), it finds the real port on each call."""
    host = FlaskHost(APP, **FAST)
    guard = Client(host.proxy_app())
    assert guard.get("/").status_code == 503
    with host:
        first = guard.get("/echo").json
        assert first["pid"] == host.pid
    stopped = guard.get("/echo")
    assert stopped.status_code == 503
    assert stopped.json["status"]["state"] == "STOPPED"
    with host:
        second = guard.get("/echo").json
        assert second["pid"] == host.pid != first["pid"]


# --------------------------------------------------------------------------
# 503 + JSON when not ready
# --------------------------------------------------------------------------
def test_503_json_while_starting(tmp_path):
    gate = tmp_path / "gate"
    host = FlaskHost(SLOW_APP, port=0, liveness_interval=None, env={"PYHOST_TEST_GATE": str(gate)})
    guard, health = Client(host.proxy_app()), Client(host.health_app())
    errors = []

    def start():
        try:
            host.start()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    starter = threading.Thread(target=start, name="test-starter")
    starter.start()
    try:
        assert wait_until(lambda: host.state is HostState.STARTING and host.pid, timeout=20)
        response = guard.post("/echo", data=b"hello")
        assert response.status_code == 503
        assert response.mimetype == "application/json"
        assert response.headers["Retry-After"] == "1"
        body = response.json
        assert body["error"] == "Flask service unavailable"
        assert body["type"] == "UNKNOWN"
        assert "starting" in body["message"]
        assert body["status"]["state"] == "STARTING"
        assert body["status"]["is_ready"] is False

        answer = health.get("/")
        assert answer.status_code == 503
        assert answer.json["healthy"] is False and answer.json["state"] == "STARTING"
    finally:
        gate.write_text("open")
        starter.join(30)
    assert not errors
    try:
        assert guard.get("/").get_data() == b"opened"
        assert health.get("/").status_code == 200
    finally:
        host.stop()


def test_503_json_after_a_crash_and_metrics_count_it():
    with FlaskHost(APP, auto_restart=False, **FAST) as host:
        guard, health = Client(host.proxy_app()), Client(host.health_app())
        assert guard.get("/").status_code == 200
        os.kill(host.pid, signal.SIGKILL)
        assert wait_until(lambda: host.state is HostState.FAILED, timeout=20)

        response = guard.get("/echo")
        assert response.status_code == 503
        assert "Retry-After" not in response.headers  # it will not come back by itself
        body = response.json
        assert body["type"] == "PROCESS_CRASH"
        assert "SIGKILL" in body["message"]
        assert body["status"]["state"] == "FAILED"
        assert body["status"]["last_error"]["type"] == "PROCESS_CRASH"
        assert body["status"]["last_error"]["signal"] == "SIGKILL"
        # Clients get no pids, output or tracebacks (expose_details=True opts in).
        assert "pid" not in body["status"] and "stderr_tail" not in body["status"]["last_error"]

        answer = health.get("/")
        assert answer.status_code == 503
        assert answer.json["healthy"] is False
        assert answer.json["last_error"]["signal"] == "SIGKILL"

        metrics = metrics_of(health.get("/metrics").get_data(as_text=True))
        assert metrics[("pyhost_errors_total", (("type", "PROCESS_CRASH"),))] == 1
        assert metrics[("pyhost_errors_total", (("type", "PORT_IN_USE"),))] == 0
        assert metrics[("pyhost_ready", ())] == 0
        assert metrics[("pyhost_up", ())] == 0
        assert metrics[("pyhost_state", (("state", "FAILED"),))] == 1


def test_503_json_for_a_host_never_started():
    host = FlaskHost(APP, port=0)
    response = Client(host.proxy_app()).get("/anything")
    assert response.status_code == 503
    assert response.json["type"] == "UNKNOWN"
    assert "not running" in response.json["message"]
    assert response.json["status"]["state"] == "STOPPED"


# --------------------------------------------------------------------------
# health and metrics
# --------------------------------------------------------------------------
def test_health_is_200_with_the_status_when_ready_and_metrics_parse():
    host = FlaskHost(APP, **FAST)
    health = Client(host.health_app())  # before start(): the startup probes are counted
    with host:
        answer = health.get("/")
        assert answer.status_code == 200
        body = answer.json
        assert body["healthy"] is True
        # Public by default: the status fields without pids, ports, paths and URLs.
        assert {k: v for k, v in body.items() if k != "healthy"}.keys() == \
            host.status().to_dict().keys() - {"pid", "port", "url", "target", "workers"}
        assert body["state"] == "READY" and "pid" not in body and "url" not in body
        detailed = Client(host.health_app(expose_details=True)).get("/").json
        assert {k for k in detailed if k != "healthy"} == host.status().to_dict().keys()
        assert detailed["pid"] == host.pid and detailed["url"] == host.url
        assert health.get("").status_code == 200  # the mount point itself

        response = health.get("/metrics")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in text_string_to_metric_families(response.get_data(True))}
        assert {"pyhost_up", "pyhost_ready", "pyhost_state", "pyhost_uptime_seconds",
                "pyhost_restarts", "pyhost_restart_attempts", "pyhost_errors",
                "pyhost_health_probes", "pyhost_health_probe_latency_seconds",
                "pyhost_app_info"} <= set(families)
        info = families["pyhost_app_info"].samples[0].labels
        # No interpreter path, file path or internal URL in labels by default.
        assert info["target"] == host.name == "gateway_app.py:app"
        assert info.get("python", "") == "" and info.get("url", "") == ""
        detailed = Client(host.health_app(expose_details=True)).get("/metrics")
        info = {f.name: f for f in text_string_to_metric_families(
            detailed.get_data(True))}["pyhost_app_info"].samples[0].labels
        assert info["python"] == sys.executable and info["url"] == host.url
        assert info["target"] == APP
        assert families["pyhost_restarts"].type == "counter"
        assert families["pyhost_health_probe_latency_seconds"].type == "histogram"
        metrics = metrics_of(response.get_data(as_text=True))
        assert metrics[("pyhost_up", ())] == 1
        assert metrics[("pyhost_ready", ())] == 1
        assert metrics[("pyhost_state", (("state", "READY"),))] == 1
        assert metrics[("pyhost_restarts_total", ())] == 0
        probes = (metrics[("pyhost_health_probes_total", (("result", "ok"),))]
                  + metrics[("pyhost_health_probes_total", (("result", "failed"),))])
        assert probes >= 1
        assert metrics[("pyhost_health_probe_latency_seconds_count", ())] == probes
        assert metrics[("pyhost_health_probe_latency_seconds_bucket", (("le", "+Inf"),))] == probes
        assert metrics[("pyhost_health_probe_latency_seconds_sum", ())] > 0
        assert all(value == 0 for (name, _), value in metrics.items()
                   if name == "pyhost_errors_total")

        # A scraper asking for OpenMetrics gets it.
        response = health.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        from prometheus_client.openmetrics.parser import (
            text_string_to_metric_families as openmetrics_families,
        )
        names = {family.name for family in openmetrics_families(response.get_data(True))}
        assert {"pyhost_ready", "pyhost_errors", "pyhost_app"} <= names


def test_metrics_count_restarts():
    with FlaskHost(APP, restart_delay=0.05, **FAST) as host:
        health = Client(host.health_app())
        os.kill(host.pid, signal.SIGKILL)
        assert wait_until(lambda: host.status().total_restarts == 1 and host.is_ready(),
                          timeout=30)
        metrics = metrics_of(health.get("/metrics").get_data(as_text=True))
        assert metrics[("pyhost_restarts_total", ())] == 1
        assert metrics[("pyhost_errors_total", (("type", "PROCESS_CRASH"),))] == 1
        assert metrics[("pyhost_ready", ())] == 1
        # Scraped again: nothing is counted twice.
        again = metrics_of(health.get("/metrics").get_data(as_text=True))
        assert again[("pyhost_errors_total", (("type", "PROCESS_CRASH"),))] == 1


def test_metrics_without_prometheus_client_answer_501(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "pyhost.metrics", raising=False)
    health = Client(FlaskHost(APP, port=0).health_app())
    response = health.get("/metrics")
    assert response.status_code == 501
    assert "pip install 'pyhost-supervisor[metrics]'" in response.get_data(as_text=True)
    assert health.get("/").status_code == 503  # the status still works


def test_health_answers_404_and_405_as_json():
    health = Client(FlaskHost(APP, port=0).health_app())
    assert health.get("/nope").status_code == 404
    response = health.post("/")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_bad_guard_options_are_value_errors():
    host = FlaskHost(APP, port=0)
    for options in ({"prefix": "no-slash"}, {"prefix": "/trailing/"}, {"timeout": 0},
                    {"chunk_size": 0}):
        with pytest.raises(ValueError, match=list(options)[0]):
            proxy_app(host, **options)


# --------------------------------------------------------------------------
# examples/gateway.py, as a user runs it
# --------------------------------------------------------------------------
def _read_line(proc, deadline):
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise AssertionError("no output from examples/gateway.py in time: %r" % buffer)
            data = os.read(proc.stdout.fileno(), 4096)
            if not data:
                raise AssertionError("examples/gateway.py exited: %r" % buffer)
            buffer += data
    finally:
        selector.close()
    return buffer.decode()


def test_the_example_model_api_reads_uploads_and_raw_bodies_of_any_content_type():
    spec = importlib.util.spec_from_file_location(
        "example_model_api", os.path.join(ROOT, "examples", "model_api.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    client = module.create_app().test_client()
    image = bytes(range(256)) * 20  # '&' and '=' in it: a form parser would mangle it
    digest = hashlib.sha256(image).hexdigest()

    upload = client.post("/detect", data={"file": (io.BytesIO(image), "x.jpg")},
                         content_type="multipart/form-data")
    assert upload.status_code == 200
    assert upload.json["sha256"] == digest and upload.json["filename"] == "x.jpg"
    # curl's default for --data-binary, and a client that names the type properly.
    for content_type in ("application/x-www-form-urlencoded", "application/octet-stream",
                         "image/jpeg"):
        raw = client.post("/detect", data=image, content_type=content_type)
        assert raw.status_code == 200, (content_type, raw.json)
        assert raw.json["sha256"] == digest and raw.json["bytes"] == len(image)
        assert raw.json["filename"] is None
    empty = client.post("/detect", data=b"", content_type="application/x-www-form-urlencoded")
    assert empty.status_code == 400 and empty.json["error"] == "empty input"


def test_the_example_gateway_runs_and_serves_the_model_api():
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "examples", "gateway.py"), "--port", "0",
         "--api-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        line = _read_line(proc, time.monotonic() + 60)
        assert line.startswith("Gateway on http://127.0.0.1:"), line
        base = line.split()[2]
        assert "READY" in line

        health = requests.get(base + "/api/health/python", timeout=10)
        assert health.status_code == 200 and health.json()["healthy"] is True

        image = os.urandom(5000)
        verdict = requests.post(base + "/api/model/detect", files={"file": ("x.jpg", image)},
                                headers={"Origin": "http://frontend.example"}, timeout=10)
        assert verdict.status_code == 200
        assert verdict.json()["sha256"] == hashlib.sha256(image).hexdigest()
        assert verdict.json()["label"] in ("real", "fake")
        # flask-cors in the child, through the guard.
        assert verdict.headers["Access-Control-Allow-Origin"] == "http://frontend.example"
        # curl --data-binary @x.jpg: raw bytes sent as a urlencoded form.
        raw = requests.post(base + "/api/model/detect", data=image, timeout=10, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert raw.status_code == 200, raw.text
        assert raw.json()["sha256"] == hashlib.sha256(image).hexdigest()
        # ProxyFix in the child: its own URLs name the gateway's paths.
        info = requests.get(base + "/api/model/model", timeout=10).json()
        assert info["detect_url"] == base + "/api/model/detect"

        metrics = requests.get(base + "/api/health/python/metrics", timeout=10)
        assert metrics_of(metrics.text)[("pyhost_ready", ())] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
