"""The guard's opt-in stale cache: the last good GET answers, marked stale,
while the app is down; everything else still gets the 503 JSON."""
from __future__ import annotations

import os
import signal

import pytest
from conftest import TESTS, wait_until
from werkzeug.test import Client

from pyhost import FlaskHost, HostState
from pyhost.stale import StaleCache

APP = os.path.join(TESTS, "apps", "guard_app.py") + ":app"
FAST = {"port": 0, "liveness_interval": None}
MARKERS = {"Warning": '110 - "Response is Stale"', "X-Pyhost-Stale": "1"}


def assert_stale(response, body):
    assert response.status_code == 200
    assert response.get_data() == body
    for name, value in MARKERS.items():
        assert response.headers[name] == value
    assert int(response.headers["Age"]) >= 0


def test_stale_answers_while_the_app_has_crashed_and_after_it_is_stopped():
    cache = StaleCache()
    with FlaskHost(APP, auto_restart=False, **FAST) as host:
        guard = Client(host.proxy_app(stale_cache=cache), use_cookies=False)
        fresh = guard.get("/page/a?x=1")
        assert fresh.status_code == 200 and "X-Pyhost-Stale" not in fresh.headers
        body = fresh.get_data()
        assert b"from pid %d" % host.pid in body
        # The answer is stored once relayed to its end, as a server does it.
        for path in ("/chunks", "/private", "/big?size=5000"):  # streamed, Set-Cookie
            assert guard.get(path).get_data()
        assert guard.get("/page/b", headers={"Cookie": "session=1"}).get_data()
        assert guard.get("/page/c", headers={"Authorization": "Bearer x"}).get_data()
        assert guard.post("/upload", data=b"x").get_data()
        assert len(cache) == 2  # /page/a?x=1 and /big: nothing private, nothing streamed

        os.kill(host.pid, signal.SIGKILL)
        assert wait_until(lambda: host.state is HostState.FAILED, timeout=20)
        assert_stale(guard.get("/page/a?x=1"), body)
        head = guard.head("/page/a?x=1")
        assert head.status_code == 200 and head.headers["X-Pyhost-Stale"] == "1"
        assert head.get_data() == b""
        # Not stored, or not a read: the 503 JSON as before.
        for response in (guard.get("/page/a?x=2"), guard.get("/chunks"), guard.get("/private"),
                         guard.post("/page/a?x=1"), guard.get("/page/b"),
                         guard.get("/page/a?x=1", headers={"Cookie": "session=1"})):
            assert response.status_code == 503
            assert response.json["status"]["state"] == "FAILED"
    # Stopped on purpose: still served stale.
    assert_stale(guard.get("/page/a?x=1"), body)
    assert guard.get("/anything").status_code == 503


def test_without_the_option_a_stopped_app_is_503():
    with FlaskHost(APP, **FAST) as host:
        guard = Client(host.proxy_app())
        assert guard.get("/page/a").status_code == 200
    assert guard.get("/page/a").status_code == 503


def test_the_cache_is_bounded_by_count_and_bytes_least_recently_used_out():
    now = [100.0]
    cache = StaleCache(max_entries=3, max_bytes=1000, max_entry_bytes=600,
                       clock=lambda: now[0])
    environ = {"REQUEST_METHOD": "GET"}

    def headers(size):
        return [("Content-Length", str(size)), ("Content-Type", "text/plain")]

    for key in ("a", "b", "c"):
        assert cache.wants(environ, "200 OK", headers(100)) == 100
        cache.store(key, environ, "200 OK", headers(100), b"x" * 100)
    assert cache.lookup("a", environ) is not None  # a is now the most recent
    cache.store("d", environ, "200 OK", headers(100), b"x" * 100)
    assert len(cache) == 3 and cache.lookup("b", environ) is None  # b was the oldest
    cache.store("e", environ, "200 OK", headers(600), b"x" * 600)
    assert cache.size <= 1000 and cache.lookup("e", environ) is not None
    assert cache.lookup("c", environ) is None  # pushed out by bytes
    # Too big for one entry, streamed, not a 200, not a GET: not collected at all.
    assert cache.wants(environ, "200 OK", headers(601)) is None
    assert cache.wants(environ, "200 OK", [("Content-Type", "text/event-stream")]) is None
    assert cache.wants(environ, "404 NOT FOUND", headers(10)) is None
    assert cache.wants({"REQUEST_METHOD": "POST"}, "200 OK", headers(10)) is None
    assert cache.wants(environ, "200 OK", headers(10) + [("Cache-Control", "no-store")]) is None
    assert cache.wants(environ, "200 OK", headers(10) + [("Vary", "*")]) is None

    now[0] += 42.6
    entry, age = cache.lookup("e", environ)
    assert age == 42 and entry.body == b"x" * 600


def test_max_age_and_vary():
    now = [0.0]
    cache = StaleCache(max_age=60, clock=lambda: now[0])
    english = {"REQUEST_METHOD": "GET", "HTTP_ACCEPT_LANGUAGE": "en"}
    german = {"REQUEST_METHOD": "GET", "HTTP_ACCEPT_LANGUAGE": "de"}
    headers = [("Content-Length", "5"), ("Vary", "Accept-Language")]
    cache.store("/p", english, "200 OK", headers, b"hello")
    assert cache.lookup("/p", english) is not None
    assert cache.lookup("/p", german) is None  # another language's answer
    now[0] = 61
    assert cache.lookup("/p", english) is None  # too old to serve


@pytest.mark.parametrize("options", [{"max_entries": 0}, {"max_bytes": -1},
                                     {"max_entry_bytes": 1.5}, {"max_age": 0}])
def test_bad_cache_options_name_the_option(options):
    with pytest.raises(ValueError, match=list(options)[0]):
        StaleCache(**options)


def test_an_app_gone_before_the_host_noticed_is_stale_or_502():
    """Ready as far as the host knows (no liveness probes), but nothing listens:
    a stored read is served stale, anything else gets 502 JSON."""
    import threading

    from flask import Flask
    from werkzeug.serving import make_server

    app = Flask("external")

    @app.route("/page")
    def page():
        return "external page"

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-external", daemon=True)
    thread.start()
    stopped = False
    try:
        with FlaskHost(external_url="http://127.0.0.1:%d/page" % server.port,
                       liveness_interval=None) as host:
            guard = Client(host.proxy_app(stale_cache=True), use_cookies=False)
            assert guard.get("/page").get_data() == b"external page"
            server.shutdown()
            server.server_close()
            stopped = True
            assert host.is_ready()  # nobody has told the host yet
            assert_stale(guard.get("/page"), b"external page")
            response = guard.get("/other")
            assert response.status_code == 502
            assert response.json["type"] == "UPSTREAM_ERROR"
    finally:
        if not stopped:
            server.shutdown()
            server.server_close()
        thread.join(10)
