"""The child's own guarantees: safe factory targets, inherited callables, the working
directory on sys.path, stack dumps on request, and a quiet exit with debug=True."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import TESTS, wait_until
from conftest import http_get as get

from pyhost import AppLoadError, FlaskHost, _child
from pyhost._child.failures import TargetRefused
from pyhost.targets import parse_target


def module_target(module, attr, args=(), kwargs=None):
    """A factory target as the parent sends it, built by hand (no parent-side check)."""
    return {"kind": "module", "module": module, "attr": attr, "call": (tuple(args), kwargs or {}),
            "label": "%s:%s(...)" % (module, attr)}


@pytest.mark.parametrize("module, attr, args", [
    ("builtins", "exec", ["open({marker!r}, 'w').close()"]),
    ("os", "system", ["touch {marker}"]),
    ("subprocess", "run", [["touch", "{marker}"]]),
    ("apps.foreign_factory", "create_app", ["touch {marker}"]),  # stdlib, renamed in an app module
])
def test_factory_targets_may_only_call_the_apps_own_functions(tmp_path, module, attr, args):
    marker = str(tmp_path / "ran")

    def fill(value):
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value.format(marker=marker)

    target = module_target(module, attr, [fill(arg) for arg in args])
    with pytest.raises(TargetRefused, match="Refused target .*nothing was called") as info:
        _child.load_app(target)
    assert not os.path.exists(marker)
    record = _child.classify_load_error(info.value, target)
    assert record["type"] == "APP_LOAD_ERROR" and record["details"]["reason"] == "refused_target"


def test_a_factory_re_exported_from_a_submodule_of_the_package_is_allowed():
    app = _child.load_app(parse_target("apps.reexport:create_app(greeting='hi')"))
    assert app.test_client().get("/").data == b"hi"
    with FlaskHost("apps.reexport:create_app()", port=0) as host:
        assert get(host.url) == "re-exported"


def test_a_refused_factory_in_a_real_child_is_an_app_load_error(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(AppLoadError, match="Refused target"):
        FlaskHost("apps.foreign_factory:create_app('touch %s')" % marker, port=0).start()
    assert not marker.exists()


def test_an_inherited_callable_is_used_as_is():
    # Under fork the parent sends the object itself: nothing is pickled or rebuilt.
    class App:
        def __call__(self, environ, start_response):
            return []

    app = App()

    def wsgi(environ, start_response):
        return []

    def target(value):
        return {"kind": "callable", "format": "inherit", "value": value, "label": "factory",
                "module": __name__}

    assert _child.load_app(target(lambda: app)) is app
    assert _child.load_app(target(wsgi)) is wsgi


def test_a_package_target_is_found_from_the_directory_that_holds_it(tmp_path):
    # A Django-style project: run from the directory holding the package, like
    # `flask --app mysite.wsgi`, with that directory on no sys.path of the parent.
    package = tmp_path / "pyhost_site_for_tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "wsgi.py").write_text(textwrap.dedent("""
        def application(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"found from the project directory"]
    """))
    runner = tmp_path / "elsewhere" / "runner.py"
    runner.parent.mkdir()
    runner.write_text(textwrap.dedent("""
        import sys, urllib.request
        from pyhost import FlaskHost
        if __name__ == "__main__":
            assert not any(p in ("", ".") for p in sys.path[:1])
            with FlaskHost("pyhost_site_for_tests.wsgi:application", port=0,
                           start_method=sys.argv[1]) as host:
                print(urllib.request.urlopen(host.url).read().decode())
    """))
    for method in ("forkserver", "spawn"):
        done = subprocess.run([sys.executable, str(runner), method], cwd=str(tmp_path),
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.strip() == "found from the project directory", done.stderr


@pytest.mark.parametrize("server", ["werkzeug", "gunicorn"])
def test_a_child_writes_its_stacks_when_the_parent_asks(server, monkeypatch):
    workers = 2 if server == "gunicorn" else 1
    # The parent asks for stacks just before it kills a hung child; whether the
    # child survives the dump is not the point (faulthandler walks the other
    # threads without their locks, and once in a long run a live child crashed).
    with FlaskHost("apps.hello:app", port=0, server=server, workers=workers,
                   auto_restart=False) as host:
        child = host._supervisor.launcher.child
        assert child.dump_stacks(timeout=5)
        assert wait_until(lambda: any("Thread 0x" in line or "Current thread" in line
                                      for line in host.logs(300)), 5)


def test_debug_mode_leaves_no_leaked_semaphore_warning(tmp_path):
    script = tmp_path / "debug_run.py"
    script.write_text(textwrap.dedent("""
        import sys, urllib.request
        sys.path.insert(0, %r)
        from pyhost import FlaskHost
        if __name__ == "__main__":
            for method in ("forkserver", "spawn"):
                with FlaskHost("apps.hello:app", port=0, debug=True, start_method=method) as h:
                    print(urllib.request.urlopen(h.url).read().decode())
    """ % TESTS))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["hello", "hello"], done.stderr
    assert "leaked semaphore" not in done.stderr
