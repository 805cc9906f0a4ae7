"""The route guard as a streaming relay: events arrive while the stream is
open, a client that leaves closes the upstream stream, upstream connections
are reused, and requests a relay must not pass on are refused before the app
sees them (RFC 9110/9112)."""
from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import threading
import time

import pytest
import requests
from conftest import TESTS, serve, wait_until
from flask import Flask, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client, create_environ, run_wsgi_app

import pyhost.guard
from pyhost import FlaskHost

APP = os.path.join(TESTS, "apps", "guard_app.py") + ":app"
FAST = {"port": 0, "liveness_interval": None}


@pytest.fixture
def host():
    with FlaskHost(APP, **FAST) as started:
        yield started


@contextlib.contextmanager
def front(guard):
    """A main app with the guard mounted at /g, as users mount it."""
    main = Flask("front")
    main.wsgi_app = DispatcherMiddleware(main.wsgi_app, {"/g": guard})
    with serve(main) as address:
        yield address


def read_until(sock, marker, deadline):
    """Bytes received until ``marker`` shows up; AssertionError past ``deadline``."""
    data = b""
    while marker not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            raise AssertionError("%r not received in time; got %r" % (marker, data))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before %r; got %r" % (marker, data))
        data += chunk
    return data


def read_to_end(sock, deadline):
    """Everything until the server closes the connection (HTTP/1.0: the end of the body)."""
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            raise AssertionError("the answer did not end in time; got %r" % data)
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def open_get(address, path, extra=b""):
    host, port = address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + address.encode()
                 + b"\r\n" + extra + b"\r\n")
    return sock


def seen(host):
    return requests.get(host.url + "/seen", timeout=10).json()["paths"]


# --------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------
def test_the_first_event_arrives_while_the_stream_is_still_open(host, tmp_path):
    gate, flag = tmp_path / "gate", tmp_path / "flag"
    with front(host.proxy_app()) as address:
        sock = open_get(address, "/g/sse?gate=%s&flag=%s&count=3" % (gate, flag))
        try:
            head = read_until(sock, b"data: first\n\n", time.monotonic() + 20)
            # The app is still waiting for the gate: nothing else was sent,
            # and a batching relay would have delivered nothing yet.
            assert b"200 OK" in head.split(b"\r\n")[0]
            assert b"text/event-stream" in head and b"data: 0" not in head
            assert not flag.exists()
            gate.write_text("open")
            rest = read_to_end(sock, time.monotonic() + 20)
            assert rest.index(b"data: 0") < rest.index(b"data: 1") < rest.index(b"data: 2")
        finally:
            sock.close()
    assert wait_until(lambda: flag.exists() and flag.read_text() == "done", timeout=10)


def test_streamed_answers_have_no_content_length_and_arrive_in_order(host):
    with front(host.proxy_app()) as address:
        response = requests.get("http://%s/g/chunks" % address, timeout=10)
        assert response.status_code == 200
        assert "Content-Length" not in response.headers
        assert response.content == b"".join(b"piece %d\n" % n for n in range(5))


def test_a_client_that_leaves_closes_the_upstream_stream(host, tmp_path):
    flag = tmp_path / "flag"
    with front(host.proxy_app()) as address:
        sock = open_get(address, "/g/forever?flag=%s&interval=0.05" % flag)
        try:
            read_until(sock, b"data: 1\n\n", time.monotonic() + 20)
        finally:
            sock.close()
        # The app's generator is closed (GeneratorExit) once the relay closes
        # the upstream connection; unrelayed, it would run for 80 minutes.
        assert wait_until(lambda: flag.exists(), timeout=10)
        assert flag.read_text() == "closed"
        assert requests.get("http://%s/g/" % address, timeout=10).text == "guard test app"


def test_upstream_connections_are_kept_alive_and_reused():
    """The app sees one connection for several requests.

    Werkzeug's server closes every connection, so the app is served by
    waitress (keep-alive), as a host with server="waitress" would be."""
    waitress = pytest.importorskip("waitress")
    app = Flask("keepalive")

    @app.route("/conn")
    def conn():
        return "%s:%s" % (request.environ["REMOTE_ADDR"], request.environ["REMOTE_PORT"])

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, name="test-waitress", daemon=True)
    thread.start()
    address = "127.0.0.1:%s" % server.effective_port
    try:
        with FlaskHost(external_url="http://%s/conn" % address, liveness_interval=None) as ext:
            guard = Client(ext.proxy_app())
            answers = {guard.get("/conn").get_data() for _ in range(5)}
            assert len(answers) == 1, answers
            bodies = {guard.post("/conn", data=b"x" * 10).status_code for _ in range(3)}
            assert bodies == {405}  # answered on the same pooled connection
            assert {guard.get("/conn").get_data() for _ in range(2)} == answers
    finally:
        # The guard's pooled connection is still open: close every channel,
        # or waitress's loop keeps running for it.
        for channel in list(server._map.values()):
            channel.close()
        thread.join(10)
        assert not thread.is_alive()


# --------------------------------------------------------------------------
# what is refused before it is forwarded
# --------------------------------------------------------------------------
def test_content_length_with_transfer_encoding_is_400_and_not_forwarded(host):
    guard = Client(host.proxy_app())
    response = guard.post("/upload", data=b"hello", headers={"Transfer-Encoding": "chunked"})
    assert response.status_code == 400
    assert response.json["type"] == "AMBIGUOUS_BODY_LENGTH"
    with front(host.proxy_app()) as address:
        sock = open_get(address, "/g/upload?smuggled=1",
                        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")
        try:
            answer = read_until(sock, b"\r\n\r\n", time.monotonic() + 20)
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400")
    assert "/upload" not in seen(host)


def test_bodies_over_the_limit_get_413_with_or_without_a_length(host):
    with front(host.proxy_app(max_body_size=1000)) as address:
        url = "http://%s/g/upload" % address
        assert requests.post(url, data=b"a" * 1000, timeout=10).json() == {"length": 1000}
        before = seen(host).count("/upload")
        response = requests.post(url, data=b"a" * 1001, timeout=10)
        assert response.status_code == 413
        assert response.json()["type"] == "BODY_TOO_LARGE"
        # Chunked: no length up front, counted as it is read.
        response = requests.post(url, data=iter([b"a" * 600, b"b" * 600]), timeout=10)
        assert response.status_code == 413
        assert seen(host).count("/upload") == before
        ok = requests.put(url, data=iter([b"a" * 400, b"b" * 500]), timeout=10)
        assert ok.status_code == 200 and ok.json() == {"length": 900}


def test_upgrade_requests_get_501_json_and_are_not_forwarded(host):
    guard = Client(host.proxy_app())
    response = guard.get("/ws-attempt", headers={"Upgrade": "websocket",
                                                 "Connection": "Upgrade"})
    assert response.status_code == 501
    assert response.mimetype == "application/json"
    assert response.json["type"] == "UPGRADE_NOT_SUPPORTED"
    assert "websocket" in response.json["message"]
    assert "/ws-attempt" not in seen(host)


def test_hop_by_hop_headers_are_dropped_both_ways(host):
    guard = Client(host.proxy_app())
    response = guard.get("/headers", headers={
        "Connection": "X-Client-Hop, keep-alive", "X-Client-Hop": "secret",
        "Keep-Alive": "300", "Proxy-Authorization": "Basic eDp5", "TE": "trailers",
        "Trailer": "X-Sum", "X-Kept": "yes"})
    assert response.status_code == 200
    sent = {name.lower() for name in response.json["headers"]}
    assert "x-kept" in sent
    for hop in ("x-client-hop", "keep-alive", "proxy-authorization", "te", "trailer"):
        assert hop not in sent, hop
    # The child's Connection header names its own hop-by-hop header: gone too.
    got = {name.lower(): value for name, value in response.headers.items()}
    assert got["x-end-to-end"] == "kept"
    for hop in ("x-private-hop", "keep-alive", "proxy-authenticate", "trailer", "upgrade",
                "connection", "transfer-encoding"):
        assert hop not in got, hop


def test_without_urllib3_the_guard_names_the_install_line(monkeypatch, host):
    monkeypatch.setattr(pyhost.guard, "urllib3", None)
    with pytest.raises(ImportError, match=r"pip install 'pyhost-supervisor\[guard\]'"):
        host.proxy_app()


def test_bad_guard_options_name_the_option(host):
    for options in ({"max_body_size": -1}, {"pool_size": 0}, {"stale_cache": "yes"},
                    {"expose_details": "no"}):
        with pytest.raises(ValueError, match=list(options)[0]):
            host.proxy_app(**options)


def test_an_answer_slower_than_the_timeout_is_504_json(host):
    guard = Client(host.proxy_app(timeout=0.3))
    response = guard.get("/sleep?seconds=3")
    assert response.status_code == 504
    assert response.json["type"] == "UPSTREAM_TIMEOUT"
    assert Client(host.proxy_app()).get("/sleep?seconds=0").get_data() == b"slept"


def test_an_input_marked_terminated_without_a_body_forwards_no_body(host):
    # gunicorn marks every request's input terminated, GETs included.
    environ = create_environ("/headers")
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    iterable, status, _ = run_wsgi_app(host.proxy_app(), environ, buffered=True)
    assert status.startswith("200")
    answer = json.loads(b"".join(iterable))
    assert answer["length"] == 0 and "Content-Length" not in answer["headers"]


def test_head_gets_headers_only_from_the_guards_own_answers():
    host = FlaskHost(APP, port=0)  # never started: 503
    iterable, status, headers = run_wsgi_app(host.proxy_app(), create_environ(
        "/page", method="HEAD"))
    assert status.startswith("503")
    assert b"".join(iterable) == b""  # as sent to the server, which passes it on as is
    assert int(headers["Content-Length"]) > 0  # what a GET would carry
