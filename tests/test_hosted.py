"""@hosted factories: still factories, host themselves under every start method,
ship by value when the child cannot import them, and replace themselves on a re-run."""
from __future__ import annotations

import linecache
import logging
import os
import pickle
import subprocess
import sys
import threading

import cloudpickle
import pytest
from apps.hosted_app import create_app as module_factory
from conftest import alive, free_port, wait_until
from conftest import http_get as get
from flask import Flask

from pyhost import AppLoadError, FlaskHost, HostState, PortInUse, SpawnError, hosted
from pyhost.hosted import HostedFactory
from pyhost.targets import parse_target
from pyhost.testing import kill_child

METHODS = ["fork", "spawn", "forkserver"]
FAST = dict(health_check_interval=0.05, shutdown_timeout=2)

# What a notebook cell holds: run by ``cell()`` in a namespace named __main__,
# so the factory is as un-importable in the child as a real cell's.
CELL = """
from flask import Flask
from pyhost import hosted

GREETING = "from a cell"

@hosted(port=0, health_check_interval=0.05, shutdown_timeout=2)
def create_app():
    app = Flask("cell")
    app.add_url_rule("/", "index", lambda: GREETING)
    app.add_url_rule("/pid", "pid", lambda: str(__import__("os").getpid()))
    return app
"""

OTHER_CELL = CELL.replace("def create_app", "def other_app")


def cell(source: str = CELL) -> dict:
    namespace = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace








def make_factory(greeting: str) -> HostedFactory:
    """A closure: the child can only get ``greeting`` if the factory travels by value."""
    settings = {"greeting": greeting}

    @hosted(port=0, **FAST)
    def create_app():
        app = Flask("closure")
        app.route("/")(lambda: settings["greeting"])
        return app

    return create_app


# ------------------------------------------------------------ no processes
def test_calling_the_decorated_factory_still_returns_the_app():
    app = module_factory()
    assert isinstance(app, Flask)
    assert app.test_client().get("/").data == b"from a module"
    assert module_factory(greeting="hi").test_client().get("/").data == b"hi"
    assert module_factory.__name__ == "create_app"
    assert module_factory.__doc__ == "Doc of the factory."
    assert module_factory.__module__ == "apps.hosted_app"


def test_bare_decorator_and_host_returns_an_unstarted_host():
    @hosted
    def create_app():
        return Flask("bare")

    assert isinstance(create_app, HostedFactory) and create_app.fields == {}
    host = create_app.host()
    assert isinstance(host, FlaskHost)
    assert host.config.port == 5001  # HostConfig's default: nothing overridden
    assert host.state is HostState.STOPPED and host.pid is None and host.url is None


def test_overrides_replace_the_decorator_fields():
    host = module_factory.host(health_path="/pid", shutdown_timeout=3)
    assert host.config.health_path == "/pid"
    assert host.config.shutdown_timeout == 3
    assert host.config.port == 0  # from the decorator
    assert host.config.health_check_interval == 0.05
    assert host.state is HostState.STOPPED


@pytest.mark.parametrize("make, names", [
    (lambda: hosted(port=70000), "HostConfig.port"),
    (lambda: hosted(lambda name: Flask(name)), "'name'"),
    (lambda: hosted(Flask("app")), "app factory"),
    (lambda: hosted(42), "app factory"),
    (lambda: module_factory.host(startup_timeout=-1), "HostConfig.startup_timeout"),
])
def test_bad_input_is_a_value_error_naming_it(make, names):
    with pytest.raises(ValueError) as info:
        make()
    assert names in str(info.value)


@pytest.mark.parametrize("make, where", [
    (lambda: hosted(prot=0), "hosted("),
    (lambda: hosted(module_factory.factory, prot=0), "hosted("),
    (lambda: module_factory.host(prot=1), ".create_app.host()"),
    (lambda: module_factory.start(prot=1), ".create_app.start()"),
    (lambda: FlaskHost("apps.hello:app", prot=1), ""),  # as for a plain FlaskHost
])
def test_an_unknown_keyword_is_a_type_error_naming_it(make, where):
    with pytest.raises(TypeError, match="unexpected keyword argument 'prot'") as info:
        make()
    assert where in str(info.value)  # the call the user wrote


def test_importable_factories_ship_by_name_the_others_by_value():
    assert module_factory.__pyhost_target__() == "apps.hosted_app:create_app()"
    assert parse_target(module_factory)["kind"] == "module"
    for factory in (cell()["create_app"], make_factory("x")):
        shipped = factory.__pyhost_target__()
        assert shipped.__qualname__ == factory.__qualname__  # the label stays the factory's
        assert isinstance(shipped(), Flask)
        target = parse_target(factory)
        assert (target["kind"], target["format"]) == ("callable", "cloudpickle")
        assert target["label"] == "%s.%s()" % (factory.__module__, factory.__qualname__)


def test_pickles_by_name_when_importable_by_value_otherwise():
    assert pickle.loads(pickle.dumps(module_factory)) is module_factory
    clone = cloudpickle.loads(cloudpickle.dumps(make_factory("cloned")))
    assert isinstance(clone, HostedFactory)
    assert clone().test_client().get("/").data == b"cloned"


def test_an_unpicklable_closure_is_a_spawn_error_naming_the_variable():
    lock = threading.Lock()

    @hosted(port=0, start_method="spawn")
    def create_app():
        with lock:
            return Flask("locked")

    with pytest.raises(SpawnError) as info:
        create_app.start()
    message = str(info.value)
    assert "closure variable 'lock'" in message and "_thread.lock" in message
    assert "create_app" in message
    assert info.value.details["unpicklable"] == "closure variable 'lock' (a _thread.lock)"


# ------------------------------------------------------------ real processes
def test_a_cell_error_shows_the_cell_line_in_the_child_traceback():
    source = CELL.replace('    app = Flask("cell")\n',
                          '    raise RuntimeError("boom in the cell")\n')
    filename = "/nonexistent/ipykernel_1/cell-7.py"  # like IPython: lines only in linecache
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(source, filename, "exec"), namespace)
        with pytest.raises(AppLoadError) as info:
            namespace["create_app"].start(start_method="spawn")
    finally:
        linecache.cache.pop(filename, None)
    line = next(n for n, text in enumerate(lines, 1) if "boom in the cell" in text)
    assert 'File "%s", line %d, in create_app' % (filename, line) in info.value.remote_traceback
    assert 'raise RuntimeError("boom in the cell")' in info.value.remote_traceback
    assert "%s:%d" % (filename, line) in info.value.message


@pytest.mark.parametrize("method", METHODS)
def test_module_factory_under_every_start_method(method):
    with module_factory.host(start_method=method) as host:
        assert host.is_ready()
        assert get(host.url + "/") == "from a module"
        assert get(host.url + "/pid") == str(host.pid) != str(os.getpid())
    assert host.state is HostState.STOPPED


@pytest.mark.parametrize("method", METHODS)
def test_cell_factory_under_every_start_method(method):
    host = cell()["create_app"].start(start_method=method)
    try:
        assert get(host.url + "/") == "from a cell"
    finally:
        host.stop()


@pytest.mark.parametrize("method", METHODS)
def test_closure_under_every_start_method(method):
    with make_factory("closure under %s" % method).host(start_method=method) as host:
        assert get(host.url + "/") == "closure under %s" % method


SCRIPT = """
import sys
import urllib.request

from flask import Flask
from pyhost import hosted

@hosted(port=0, start_method=sys.argv[1], health_check_interval=0.05)
def create_app():
    app = Flask(__name__)
    app.route("/")(lambda: "from __main__")
    return app

if __name__ == "__main__":
    with create_app.start() as host:
        print(host.target_label, urllib.request.urlopen(host.url).read().decode())
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_factory_defined_in_a_main_script(tmp_path, method):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), method], capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "__main__.create_app() from __main__"


# ------------------------------------------------------------ re-running cells
def test_rerun_on_a_fixed_port_replaces_and_another_target_is_refused(caplog):
    port = free_port()
    caplog.set_level(logging.WARNING, logger="pyhost")
    first = cell()["create_app"].start(port=port)
    first_pid = first.pid
    second = cell()["create_app"].start(port=port)  # the cell run again: a new factory object
    try:
        assert first.state is HostState.STOPPED and not alive(first_pid)
        assert second.is_ready() and second.port == port and second.pid != first_pid
        assert get(second.url + "/pid") == str(second.pid)
        assert "Replacing" in caplog.text

        # A plain FlaskHost of the same factory goes through the same hand-over.
        third = cell()["create_app"].host(port=port).start()
        assert second.state is HostState.STOPPED and third.is_ready()

        with pytest.raises(PortInUse) as info:
            cell(OTHER_CELL)["other_app"].start(port=port)
        assert "__main__.create_app()" in str(info.value)  # names the holder
        assert third.is_ready() and get(third.url + "/") == "from a cell"
    finally:
        second.stop()
        third.stop()


def test_rerun_after_the_previous_host_gave_up_keeps_the_url():
    first = cell()["create_app"].start(max_restart_attempts=0)
    url = first.url
    kill_child(first)
    assert wait_until(lambda: first.state is HostState.FAILED, 30), first
    second = cell()["create_app"].start()  # the cell run again after the crash
    try:
        assert second.is_ready() and second.url == url
        assert get(second.url + "/pid") == str(second.pid)
        # Replaced: stopped, with the crash that took it down in its history.
        assert first.state is HostState.STOPPED and first.errors[-1].type.value == "PROCESS_CRASH"
    finally:
        second.stop()


def test_rerun_with_port_zero_keeps_the_url():
    first = cell()["create_app"].start()
    first_pid = first.pid
    second = cell()["create_app"].start()
    try:
        assert second.url == first.url
        assert first.state is HostState.STOPPED and not alive(first_pid)
        assert get(second.url + "/pid") == str(second.pid)
        # Several hosts of one factory: host().start() does not replace.
        extra = cell()["create_app"].host().start()
        assert second.is_ready() and extra.is_ready() and extra.url != second.url
        extra.stop()
    finally:
        second.stop()
