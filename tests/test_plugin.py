"""The pytest plugin (``pytest11`` entry point), exercised with ``pytester``."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APP = """\
import os
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "live %d" % os.getpid()


def create_app(greeting="hi"):
    factory_app = Flask(__name__)
    factory_app.add_url_rule("/", "index", lambda: greeting)
    return factory_app
"""

BROKEN_APP = """\
from flask import Flask
import some_missing_ml_lib

app = Flask(__name__)
"""


def test_factory_fixture_serves_a_live_app_and_stops_it(pytester):
    pytester.makepyfile(liveapp=APP)
    pytester.makepyfile(test_live=textwrap.dedent("""
        import urllib.request

        SEEN = {}

        def get(url):
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode()

        def test_live(pyhost_server):
            host = pyhost_server("liveapp:app")
            assert host.is_ready() and host.port != 0  # port 0 by default, the real one here
            assert get(host.url + "/") == "live %d" % host.pid
            SEEN["host"] = host

        def test_factory_with_fields(pyhost_server):
            host = pyhost_server("liveapp:create_app(greeting='howdy')", health_path="/")
            assert get(host.url + "/") == "howdy"
            assert host.config.health_path == "/"

        def test_stopped_after_the_test():
            assert SEEN["host"].pid is None
            assert SEEN["host"].state.value == "STOPPED"
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_session_fixture_starts_each_app_once(pytester):
    pytester.makepyfile(liveapp=APP)
    pytester.makepyfile(test_session=textwrap.dedent("""
        PIDS = []

        def test_one(pyhost_session_server):
            PIDS.append(pyhost_session_server("liveapp:app").pid)

        def test_two(pyhost_session_server):
            PIDS.append(pyhost_session_server("liveapp:app").pid)
            other = pyhost_session_server("liveapp:create_app()")
            assert other.pid != PIDS[0]
            assert PIDS[0] == PIDS[1] is not None
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_live_server_fixture_uses_the_ini_target(pytester):
    pytester.makepyfile(liveapp=APP)
    pytester.makeini("[pytest]\npyhost_app = liveapp:create_app(greeting='from ini')\n")
    pytester.makepyfile(test_ini=textwrap.dedent("""
        import urllib.request

        def test_live(pyhost_live_server):
            with urllib.request.urlopen(pyhost_live_server.url, timeout=10) as response:
                assert response.read() == b"from ini"
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_readme_live_server_sample_runs_as_written(pytester):
    """The pytest guide shows how pyhost_live_server differs from pytest-flask's live_server
    (``url`` is a string); its sample must work verbatim."""
    with open(os.path.join(ROOT, "docs", "guides", "pytest.md"), encoding="utf-8") as handle:
        readme = handle.read()
    bullet = readme[readme.index("- `pyhost_live_server`:"):]
    ini = re.search(r"```ini\n(.*?)```", bullet, re.S).group(1)
    test = re.search(r"```python\n(.*?)```", bullet, re.S).group(1)
    assert "pyhost_live_server.url + " in test
    pytester.makepyfile(myapp=APP)
    pytester.makeini(textwrap.dedent(ini))
    pytester.makepyfile(test_live_sample="import requests\n\n" + textwrap.dedent(test))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_startup_failure_fails_the_test_with_the_typed_error(pytester):
    pytester.makepyfile(brokenapp=BROKEN_APP)
    pytester.makepyfile(test_broken=textwrap.dedent("""
        def test_uses_broken_app(pyhost_server):
            pyhost_server("brokenapp:app")
            raise AssertionError("not reached")

        def test_session_failure_is_remembered(pyhost_session_server):
            pyhost_session_server("brokenapp:app")

        def test_session_failure_again(pyhost_session_server):
            pyhost_session_server("brokenapp:app")
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*pyhost could not start brokenapp:app: DEPENDENCY_ERROR*",
        "*Missing dependency: no module named 'some_missing_ml_lib'*",
        "Troubleshooting:",
        "*pip install some-missing-ml-lib*",
        "Recent output from the app:",
        "*ModuleNotFoundError: No module named 'some_missing_ml_lib'*",
    ])
    text = result.stdout.str()
    assert "not reached" not in text
    assert "HEALTH_CHECK_TIMEOUT" not in text
    # Once per failed test in the failure reports (pytest >= 9.1 repeats the whole
    # message in the short summary, so count before it).
    reports = text.split("short test summary info")[0]
    assert reports.count("pyhost could not start brokenapp:app") == 3
    assert "During handling of the above exception" not in reports


def test_options_and_ini_reach_the_host(pytester):
    pytester.makepyfile(liveapp=APP)
    pytester.makeini("[pytest]\npyhost_startup_timeout = 7.5\n")
    pytester.makepyfile(test_opts=textwrap.dedent("""
        def test_config(pyhost_server):
            host = pyhost_server("liveapp:app")
            assert host.config.start_method == "spawn"      # from the command line
            assert host.config.startup_timeout == 7.5       # from the ini file
            assert host.config.port == 0
            explicit = pyhost_server("liveapp:create_app()", start_method="fork")
            assert explicit.config.start_method == "fork"   # a field beats the option
    """))
    result = pytester.runpytest("-p", "no:cacheprovider", "--pyhost-start-method", "spawn")
    result.assert_outcomes(passed=1)


def test_help_shows_the_pyhost_group_and_bad_values_are_usage_errors(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "pyhost: live servers in supervised child processes:",
        "*--pyhost-start-method=METHOD*",
        "*--pyhost-startup-timeout=SECONDS*",
    ])
    result = pytester.runpytest("--pyhost-startup-timeout", "soon")
    assert result.ret == 4  # pytest's usage error
    result.stderr.fnmatch_lines(["*--pyhost-startup-timeout soon: not a number of seconds*"])


def test_values_hostconfig_refuses_are_usage_errors_not_failing_tests(pytester):
    pytester.makepyfile(test_uses=textwrap.dedent("""
        def test_uses_a_host(pyhost_server):
            pass
    """))
    result = pytester.runpytest("-p", "no:cacheprovider", "--pyhost-start-method", "forkserve")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*--pyhost-start-method: invalid choice: 'forkserve' (choose from *'forkserver')*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--pyhost-startup-timeout=-1")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*pyhost: --pyhost-startup-timeout -1: must be a positive number of seconds*"])
    # The ini file has no argparse choices: HostConfig's own check names the setting.
    pytester.makeini("[pytest]\npyhost_start_method = forkserve\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*pyhost: pyhost_start_method = forkserve in the ini file: "
                                 "must be one of fork, spawn, forkserver*"])
    assert "ValueError" not in result.stdout.str() + result.stderr.str()


def test_loading_the_plugin_imports_no_web_stack_and_starts_nothing():
    code = (
        "import sys, threading, multiprocessing\n"
        "import pyhost.pytest_plugin\n"
        "heavy = [m for m in ('flask', 'werkzeug', 'requests')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert not multiprocessing.active_children()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------ pyhost.testing
class _Event:
    def __init__(self, name):
        self.name = name


def test_event_recorder_waits_for_events_from_another_thread():
    import threading

    from pyhost.testing import EventRecorder

    events = EventRecorder()
    events(_Event("ready"))
    mark = events.mark()
    assert events.wait_for("ready", timeout=0).name == "ready"
    later = threading.Timer(0.05, lambda: [events(_Event("crashed")), events(_Event("restarted"))])
    later.start()
    try:
        assert events.wait_for(("restarted", "gave_up"), timeout=30, after=mark).name == "restarted"
    finally:
        later.join()
    assert events.names() == ["ready", "crashed", "restarted"]
    try:
        events.wait_for("ready", timeout=0.01, after=mark)
    except TimeoutError as exc:
        assert "no ready event" in str(exc) and "['crashed', 'restarted']" in str(exc)
    else:
        raise AssertionError("wait_for should have timed out: 'ready' came before the mark")


def test_kill_child_needs_a_running_host():
    import pytest

    from pyhost import FlaskHost
    from pyhost.testing import kill_child

    with pytest.raises(RuntimeError, match="no running app process"):
        kill_child(FlaskHost("apps.hello:app", port=0))
