"""Targets of every form: parsed in the parent, loaded and served by a real child.

Parsing is checked in-process (a malformed target is a ValueError before any
process starts); each form is then hosted for real under the default start
method and answers HTTP.
"""
from __future__ import annotations

import os
import pickle

import pytest
import requests

from pyhost import AppNotFound, FlaskHost, SpawnError, _child, targets
from pyhost.targets import parse_target, target_label

TESTS = os.path.dirname(os.path.abspath(__file__))
HELLO_FILE = os.path.join(TESTS, "apps", "hello.py")


def make_greeter():
    """A factory in a test module: the child imports it by name."""
    from flask import Flask

    app = Flask("greeter")
    app.add_url_rule("/", "index", lambda: "greeter from a test module")
    return app


def plain_wsgi_function(environ, start_response):
    """Passed as an object, a WSGI callable is the app (not a factory to call)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi function object"]


# ---------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "text, module, attr, call",
    [
        ("apps.hello:app", "apps.hello", "app", None),
        ("apps.hello:app.wsgi_app", "apps.hello", "app.wsgi_app", None),
        ("apps.hello:create_app()", "apps.hello", "create_app", ((), {})),
        ("apps.hello:create_app(greeting='x', status=201)", "apps.hello", "create_app",
         ((), {"greeting": "x", "status": 201})),
        ("apps.hello:create_app('a:b', 2)", "apps.hello", "create_app", (("a:b", 2), {})),
        ("apps.hello:create_app(greeting={'k': [1, (2, None)]}, status=-1)", "apps.hello",
         "create_app", ((), {"greeting": {"k": [1, (2, None)]}, "status": -1})),
        ("  apps.hello : app ", "apps.hello", "app", None),
        ("apps.hello", "apps.hello", None, None),
    ],
)
def test_module_targets_parse(text, module, attr, call):
    spec = parse_target(text)
    assert spec["kind"] == "module"
    assert (spec["module"], spec["attr"], spec["call"]) == (module, attr, call)
    assert spec["label"] == text
    pickle.dumps(spec)  # plain data for every start method


def test_file_targets_parse_to_an_absolute_path(monkeypatch):
    monkeypatch.chdir(TESTS)
    spec = parse_target("apps/hello.py:app")
    assert spec["kind"] == "file"
    assert spec["module"] == HELLO_FILE
    assert spec["attr"] == "app"
    assert parse_target(HELLO_FILE)["attr"] is None


def test_missing_file_is_app_not_found_before_any_process(tmp_path):
    missing = str(tmp_path / "nowhere.py")
    with pytest.raises(AppNotFound) as info:
        parse_target(missing + ":app")
    assert missing in info.value.message
    assert info.value.troubleshooting


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "1module:app",
        "my-module:app",
        "apps.hello:app[0]",
        "apps.hello:create_app(greeting)",
        "apps.hello:create_app(*args)",
        "apps.hello:create_app(**{'greeting': 'x'})",
        "apps.hello:create_app()()",
        "apps.hello:lambda: 1",
        "apps.hello:create_app({[1]: 2})",
        "apps.hello:create_app(greeting='x' + 'y')",
        "apps.hello:create_app(open('/etc/passwd').read())",
        "apps/hello.txt:app",
    ],
)
def test_malformed_targets_are_value_errors(text):
    with pytest.raises(ValueError, match="target"):
        parse_target(text)
    with pytest.raises(ValueError, match="target"):
        FlaskHost(text, port=0)


def test_target_arguments_are_never_evaluated(tmp_path):
    marker = tmp_path / "X"
    command = "touch %s" % marker
    text = "apps.hello:create_app(__import__('os').system(%r))" % command
    with pytest.raises(ValueError, match="must be literals"):
        FlaskHost(text, port=0)
    with pytest.raises(ValueError):
        FlaskHost("apps.hello:create_app(greeting=__import__('os').system(%r))" % command)
    assert not marker.exists()
    # The child's own parser refuses it too, should a spec ever be built by hand.
    with pytest.raises(ValueError):
        targets.literal_call("create_app(__import__('os').system(%r))" % command)
    assert not marker.exists()


def test_not_a_target_is_a_value_error():
    with pytest.raises(ValueError, match="target must be"):
        parse_target(42)


def test_callables_are_shipped_by_reference_when_importable():
    spec = parse_target(make_greeter)
    assert spec["kind"] == "callable"
    assert spec["format"] == "pickle"
    assert pickle.loads(spec["payload"]) is make_greeter
    assert spec["label"] == "test_targets.make_greeter()"


def test_local_callables_are_shipped_by_value():
    greeting = "closure"

    def local_factory():
        from flask import Flask

        app = Flask("local")
        app.add_url_rule("/", "index", lambda: greeting)
        return app

    spec = parse_target(local_factory)
    assert spec["format"] == "cloudpickle"
    assert spec["label"].endswith("local_factory()")


def test_app_objects_are_sent_by_name():
    from apps import dash_like, hello

    assert parse_target(hello.app)["label"] == "apps.hello:app"
    assert parse_target(dash_like.app)["label"] == "apps.dash_like:app"


def test_an_app_object_the_child_cannot_import_is_a_spawn_error():
    from flask import Flask

    local_app = Flask("made_in_a_test")
    with pytest.raises(SpawnError, match="factory"):
        parse_target(local_app)
    assert target_label(local_app).startswith("<Flask")


# ------------------------------------------------ loading (child code, in-process)
def _get(app, path="/"):
    from werkzeug.test import Client

    response = Client(app).get(path)
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "target, expected",
    [
        ("apps.hello:app", (200, "hello")),
        ("apps.hello", (200, "hello")),
        (HELLO_FILE + ":app", (200, "hello")),
        ("apps.hello:create_app", (200, "hello")),  # a zero-argument factory is called
        ("apps.hello:create_app(greeting='x', status=201)", (201, "x")),
        ("apps.only_factory", (200, "from create_app")),
        ("apps.dash_like:app", (200, "dash-like")),
        ("apps.dash_like", (200, "dash-like")),
        ("apps.plain_wsgi:application", (200, "plain wsgi /")),
        ("apps.plain_wsgi", (200, "plain wsgi /")),
        ("apps.several_apps:second", (200, "second")),
    ],
)
def test_load_app_resolves_every_form(target, expected):
    assert _get(_child.load_app(parse_target(target))) == expected


def test_load_app_treats_a_wsgi_callable_object_as_the_app():
    app = _child.load_app(parse_target(plain_wsgi_function))
    assert _get(app) == (200, "wsgi function object")
    assert _get(_child.load_app(parse_target(make_greeter))) == (200, "greeter from a test module")


# ------------------------------------------------------------ real processes
def _host(target, **fields):
    fields.setdefault("port", 0)
    fields.setdefault("shutdown_timeout", 2.0)
    return FlaskHost(target, **fields)


@pytest.mark.parametrize(
    "target, status, body",
    [
        ("apps.hello:app", 200, "hello"),
        (HELLO_FILE + ":app", 200, "hello"),
        ("apps.hello:create_app()", 200, "hello"),
        ("apps.hello:create_app(greeting='x', status=201)", 201, "x"),
        ("apps.hello", 200, "hello"),
        ("apps.only_factory", 200, "from create_app"),
        ("apps.dash_like:app", 200, "dash-like"),
        ("apps.plain_wsgi:application", 200, "plain wsgi /"),
    ],
)
def test_every_string_form_is_hosted(target, status, body):
    with _host(target) as host:
        response = requests.get(host.url + "/", timeout=5)
        assert (response.status_code, response.text) == (status, body)
        assert host.status().target == target


def test_a_file_target_relative_to_the_working_directory_is_hosted(monkeypatch):
    monkeypatch.chdir(os.path.dirname(TESTS))
    with _host("tests/apps/hello.py:app") as host:
        assert requests.get(host.url + "/", timeout=5).text == "hello"


@pytest.mark.parametrize("filename", ["inspect.py", "my-app.py"],
                         ids=["shadows-a-module-the-child-imported", "not-a-module-name"])
def test_a_file_is_loaded_from_its_path_whatever_its_name(filename, tmp_path):
    path = tmp_path / filename
    path.write_text(
        "from flask import Flask\n"
        "app = Flask(__name__)\n"
        "app.add_url_rule('/', 'index', lambda: %r)\n" % str(path))
    with _host("%s:app" % path) as host:
        assert requests.get(host.url + "/", timeout=5).text == str(path)


@pytest.mark.parametrize(
    "target, body",
    [
        (make_greeter, "greeter from a test module"),
        (plain_wsgi_function, "wsgi function object"),
    ],
    ids=["factory-from-a-test-module", "wsgi-function-object"],
)
def test_callables_are_hosted(target, body):
    with _host(target) as host:
        assert requests.get(host.url + "/", timeout=5).text == body


def test_app_objects_are_hosted():
    from apps import dash_like, hello

    with _host(dash_like.app) as host:
        assert requests.get(host.url + "/", timeout=5).text == "dash-like"
    with _host(hello.app) as host:
        assert requests.get(host.url + "/pid", timeout=5).text == str(host.pid)
        assert host.pid != os.getpid()


def test_a_function_pickled_with_another_cloudpickle_names_the_version_to_install():
    import cloudpickle

    from pyhost.errors import error_from_record

    def factory():
        return None

    target = parse_target(factory, by_value=True)
    assert target["cloudpickle"] == cloudpickle.__version__
    # As if the parent had another cloudpickle whose pickle this one cannot read.
    target = dict(target, cloudpickle="0.0.1", payload=target["payload"][:-5])
    with pytest.raises(_child.ShipError) as raised:
        _child._unship(target)
    # What the child reports, rebuilt as the parent does.
    error = error_from_record(_child.classify_load_error(raised.value, target))
    message = error.message
    assert "pickled with cloudpickle 0.0.1, this interpreter has %s" % cloudpickle.__version__ \
        in message
    steps = error.troubleshooting
    assert steps[0].endswith(" -m pip install cloudpickle==0.0.1")


# ---------------------------------------------------------------- hostile targets
@pytest.mark.parametrize("text", [
    "builtins:exec(\"import os; os.system('touch /tmp/pwned')\")",
    "os:system('touch /tmp/pwned')",
    "subprocess:run(['touch', '/tmp/pwned'])",
    "os.path:join('a')",
    "shutil:rmtree('/tmp/x')",
    "importlib:import_module('os')",
    "runpy:run_path('/tmp/x.py')",
    "sys",
])
def test_standard_library_and_builtin_targets_are_refused(text):
    with pytest.raises(ValueError) as info:
        parse_target(text)
    message = str(info.value)
    assert "standard-library" in message or "builtin" in message
    assert repr(text.split(":")[0].split(".")[0]) in message


def test_a_standard_library_file_is_refused():
    import json

    with pytest.raises(ValueError, match="standard library"):
        parse_target("%s:dumps('x')" % json.__file__)


def test_a_stdlib_target_never_starts_a_process():
    import multiprocessing

    import psutil

    before = set(child.pid for child in psutil.Process().children(recursive=True))
    with pytest.raises(ValueError, match="standard-library"):
        FlaskHost("os:system('true')", port=0).start()
    after = set(child.pid for child in psutil.Process().children(recursive=True))
    assert after <= before
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("text", [
    "x:" + ".".join(["a"] * 10000),                     # 10,000-deep dotted attribute
    ".".join(["a"] * 10000) + ":app",                   # 10,000-deep module name
    "x:f(%r)" % ("a" * 10000),                          # 10,000-character argument
    "x:f(" + "[" * 5000 + "]" * 5000 + ")",             # nesting past the parser's limit
    "x:" + ".".join(["a"] * (targets.MAX_DOTTED_PARTS + 1)),
    "x:f(" + "(" * 300 + "1" + ")" * 300 + ")",
    "x:app\x00",
])
def test_oversized_or_deep_targets_are_value_errors(text):
    with pytest.raises(ValueError) as info:
        parse_target(text)
    assert len(str(info.value)) < 400  # the message quotes the target clipped, not whole


def test_under_fork_a_callable_is_not_shipped():
    spec = parse_target(make_greeter, start_method="fork")
    assert spec == {"kind": "callable", "format": "inherit", "value": make_greeter,
                    "label": spec["label"], "module": __name__}
    # another interpreter cannot inherit: by value wins
    assert parse_target(make_greeter, by_value=True, start_method="fork")["format"] == \
        "cloudpickle"
    assert parse_target(make_greeter, start_method="spawn")["format"] == "pickle"


@pytest.mark.parametrize("target", [os.system, exec, print, pickle.loads,
                                    __import__("functools").partial(os.system, "true")])
def test_standard_library_callables_are_refused(target):
    with pytest.raises(ValueError, match="standard library"):
        FlaskHost(target, port=0)


def test_a_partial_of_the_users_factory_is_accepted():
    import functools

    spec = parse_target(functools.partial(make_greeter), start_method="spawn")
    assert spec["kind"] == "callable"
