"""Shared fixtures: every test must leave no process, thread or fd behind."""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
import urllib.request

import psutil
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)  # so children can import tests/apps as "apps.*"

# multiprocessing's own helpers live as long as the interpreter: not leaks.
_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker",
            "multiprocessing.semaphore_tracker")


def stray_children():
    """Child processes of this test process other than multiprocessing's helpers."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(proc.cmdline())
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if any(helper in cmdline for helper in _HELPERS):
            continue
        found.append(proc)
    return found


#: Every start method, default first.
METHODS = ("forkserver", "spawn", "fork")


def http_get(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    """A port that was free a moment ago (for tests that need a fixed port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_fds() -> dict:
    """This process's open fds and what each one is (file, pipe, socket)."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:  # closed between listdir and readlink (or the listdir fd itself)
            pass
    return fds


@pytest.fixture(scope="module")
def warm_start_methods():
    """Start each method's helpers (forkserver, resource tracker) before fds are counted."""
    from pyhost import FlaskHost

    for method in METHODS:
        with FlaskHost("apps.hello:app", port=0, start_method=method):
            pass


def pyhost_threads():
    return [t for t in threading.enumerate() if t.name.startswith("pyhost-")]


def wait_until(predicate, timeout=10.0, interval=0.02):
    """Poll ``predicate`` until true or the deadline passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves child processes or pyhost threads running."""
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    import pyhost

    leftover_hosts = pyhost.running_hosts()
    pyhost.stop_all(timeout=2)
    children = wait_until(lambda: not stray_children(), timeout=10) or stray_children()
    threads = wait_until(lambda: not pyhost_threads(), timeout=10) or pyhost_threads()
    problems = []
    if leftover_hosts:
        problems.append("hosts still running: %r" % leftover_hosts)
    if children and children is not True:
        for proc in children:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        problems.append("child processes left: %r" % children)
    if threads and threads is not True:
        problems.append("pyhost threads left: %r" % threads)
    assert not problems, "; ".join(problems)


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_leaks: the test manages its own leftovers")
    config.addinivalue_line("markers", "slow: takes a minute (fresh venv + pip install); "
                            "deselect with -m 'not slow'")


@contextlib.contextmanager
def serve(app):
    """``app`` on a threaded Werkzeug server on 127.0.0.1:0; yields "127.0.0.1:port"."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    handler = type("Handler", (WSGIRequestHandler,), {
        "log_request": lambda *args, **kwargs: None})
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, name="test-front", daemon=True)
    thread.start()
    try:
        yield "127.0.0.1:%d" % server.port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
