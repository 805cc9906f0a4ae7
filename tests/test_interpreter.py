"""HostConfig.python: the child runs under another interpreter with its own packages.

A real second venv is made once per session (from a different Python when
pyenv has one, else from this interpreter's base), with flask installed and a
marker module that exists only there.
"""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import types

import pytest
import requests
from conftest import TESTS, wait_until

from pyhost import (
    AppNotFound,
    DependencyError,
    FlaskHost,
    HostState,
    PythonNotFound,
    SpawnError,
)
from pyhost.config import HostConfig
from pyhost.preflight import _MARK, MIN_CHILD_VERSION, run_preflight

APP = os.path.join(TESTS, "apps", "interp_app.py") + ":app"
MARKER = "pyhost_venv_marker"
PYENV = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def _pyenv_pythons():
    """(version tuple, path) of pyenv's interpreters, newest first."""
    found = []
    for path in glob.glob(os.path.join(PYENV, "versions", "*", "bin", "python")):
        name = path.split(os.sep)[-3]
        try:
            version = tuple(int(part) for part in name.split(".")[:2])
        except ValueError:
            continue
        found.append((version, path))
    return sorted(found, reverse=True)


def _base_for_venv():
    """A different Python ≥ MIN_CHILD_VERSION if pyenv has one (3.12 preferred), else ours."""
    ours = sys.version_info[:2]
    candidates = [(v, p) for v, p in _pyenv_pythons() if v >= MIN_CHILD_VERSION and v != ours]
    candidates.sort(key=lambda item: (item[0] != (3, 12), -item[0][0], -item[0][1]))
    if candidates:
        return candidates[0][1]
    return getattr(sys, "_base_executable", None) or sys.executable


@pytest.fixture(scope="session")
def second_venv(tmp_path_factory):
    base = _base_for_venv()
    root = tmp_path_factory.mktemp("second-venv") / "venv"
    try:
        subprocess.run([base, "-m", "venv", str(root)], check=True, capture_output=True,
                       timeout=120)
        python = str(root / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "-q", "flask"], check=True,
                       capture_output=True, timeout=180)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        output = getattr(exc, "stderr", b"") or b""
        pytest.skip("could not build a second venv with flask from %s: %s %s"
                    % (base, exc, output.decode(errors="replace")[-500:]))
    probe = subprocess.run(
        [python, "-c", "import sys, sysconfig; print(sysconfig.get_paths()['purelib']); "
         "print('%d.%d.%d' % sys.version_info[:3]); print(sys.prefix)"],
        check=True, capture_output=True, text=True, timeout=60)
    purelib, version, prefix = probe.stdout.split()
    with open(os.path.join(purelib, MARKER + ".py"), "w") as handle:
        handle.write('VALUE = "only in the second venv"\n')
    return types.SimpleNamespace(python=python, version=[int(p) for p in version.split(".")],
                                 prefix=prefix, base=base)


def test_the_child_runs_under_the_chosen_interpreter_with_its_own_packages(second_venv):
    with FlaskHost(APP, port=0, python=second_venv.python, requires=(MARKER, "flask")) as host:
        info = requests.get(host.url + "/", timeout=10).json()
        assert info["prefix"] == second_venv.prefix
        assert info["version"] == second_venv.version
        assert info["pid"] == host.pid

        marker = requests.get(host.url + "/importable/" + MARKER, timeout=10).json()
        assert marker["importable"] is True
        assert marker["value"] == "only in the second venv"
        assert marker["file"].startswith(second_venv.prefix)

        # Installed in the parent's venv only: the child must not see them.
        for parent_only in ("tenacity", "psutil"):
            answer = requests.get(host.url + "/importable/" + parent_only, timeout=10).json()
            assert answer["importable"] is False, answer


def test_a_crashed_child_under_another_interpreter_is_restarted_there(second_venv):
    with FlaskHost(APP, port=0, python=second_venv.python, restart_delay=0.05) as host:
        first = host.pid
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: host.status().total_restarts == 1 and host.is_ready(),
                          timeout=30)
        info = requests.get(host.url + "/", timeout=10).json()
        assert info["pid"] != first
        assert info["prefix"] == second_venv.prefix


def test_a_module_only_this_process_can_import_says_to_pass_its_path(second_venv):
    # tests/ is on this process's sys.path (conftest), not on the other interpreter's.
    host = FlaskHost("apps.interp_app:app", port=0, python=second_venv.python)
    with pytest.raises(AppNotFound) as raised:
        host.start()
    assert raised.value.troubleshooting[0].endswith("pass env={'PYTHONPATH': %r}" % TESTS)
    # ... which is then enough.
    with FlaskHost("apps.interp_app:app", port=0, python=second_venv.python,
                   env={"PYTHONPATH": TESTS}) as host:
        assert requests.get(host.url + "/", timeout=10).json()["prefix"] == second_venv.prefix


def test_requires_are_imported_with_the_chosen_interpreter(second_venv):
    # psutil is importable here, in the parent, but not in the second venv.
    import psutil  # noqa: F401

    waits = []
    config = HostConfig(python=second_venv.python, requires=("flask", MARKER, "psutil"))
    with pytest.raises(DependencyError) as raised:
        run_preflight(config, sleep=waits.append)
    error = raised.value
    assert error.details["missing_modules"] == ["psutil"]
    assert "%s -m pip install psutil" % second_venv.python in error.message
    assert waits == [1.0]

    report = run_preflight(config.replace(requires=("flask", MARKER)), sleep=waits.append)
    assert report["version"] == second_venv.version
    assert report["missing"] == []


def _assert_python_not_found(python, *fragments):
    host = FlaskHost(APP, port=0, python=python)
    with pytest.raises(PythonNotFound) as raised:
        host.start()
    error = raised.value
    for fragment in fragments:
        assert fragment in error.message, error.message
    assert host.state is HostState.FAILED
    assert host.pid is None
    assert host.last_error is error
    return error


def test_a_missing_interpreter_is_python_not_found_with_the_seeds_steps(tmp_path):
    missing = str(tmp_path / "no-such-venv" / "bin" / "python")
    error = _assert_python_not_found(missing, "not found", missing)
    steps = "\n".join(error.troubleshooting)
    # The seed's steps: install Python, put it on PATH, verify with --version.
    assert "https://www.python.org/downloads/" in steps
    assert "Ensure Python is on your PATH (which python)" in steps
    assert "restart your terminal/IDE" in steps
    assert "--version" in steps
    assert missing in steps
    assert error.to_dict()["type"] == "PYTHON_NOT_FOUND"


def test_an_interpreter_name_not_on_path_is_python_not_found():
    error = _assert_python_not_found("python-that-does-not-exist-9.9",
                                     "python-that-does-not-exist-9.9")
    assert any("PATH (which python-that-does-not-exist-9.9)" in s for s in error.troubleshooting)


def test_a_venv_directory_instead_of_its_interpreter_says_which_file_to_pass(second_venv):
    _assert_python_not_found(second_venv.prefix, "is a directory",
                             os.path.join(second_venv.prefix, "bin", "python"))


@pytest.mark.skipif(not os.path.exists("/bin/false"), reason="needs /bin/false")
def test_a_program_that_is_not_python_is_a_clear_error():
    _assert_python_not_found("/bin/false", "does not run as a Python interpreter",
                             "exit code 1")


def test_a_script_printing_garbage_is_a_clear_error(tmp_path):
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\necho 'this is not python'\n")
    script.chmod(0o755)
    _assert_python_not_found(str(script), "does not run as a Python interpreter",
                             "this is not python")


def test_a_file_that_cannot_be_executed_is_a_clear_error(tmp_path):
    script = tmp_path / "python"
    script.write_text("print('hi')\n")
    script.chmod(0o644)
    _assert_python_not_found(str(script), "not runnable", str(script))


def test_an_interpreter_too_old_for_the_child_is_a_clear_error(tmp_path):
    # Answers the probe like a Python 3.7 would.
    script = tmp_path / "python3.7"
    script.write_text("#!/bin/sh\necho '%s{\"version\": [3, 7, 17], \"executable\": \"%s\"}'\n"
                      % (_MARK, script))
    script.chmod(0o755)
    _assert_python_not_found(str(script), "is Python 3.7.17",
                             "needs Python %d.%d or newer" % MIN_CHILD_VERSION)


@pytest.mark.skipif(not [p for v, p in _pyenv_pythons() if v < MIN_CHILD_VERSION],
                    reason="no interpreter older than %d.%d in pyenv" % MIN_CHILD_VERSION)
def test_a_real_old_interpreter_is_refused_before_the_child_starts():
    version, python = [(v, p) for v, p in _pyenv_pythons() if v < MIN_CHILD_VERSION][0]
    _assert_python_not_found(python, "is Python %d.%d" % version)


def _no_wait(monkeypatch):
    """The pre-flight's 1 s retry wait, recorded instead of slept."""
    from pyhost import preflight
    from pyhost.policies import preflight_retrying

    waits = []
    monkeypatch.setattr(preflight, "preflight_retrying",
                        lambda sleep: preflight_retrying(sleep=waits.append))
    return waits


def test_a_missing_package_names_the_childs_interpreter_in_the_pip_line(second_venv, tmp_path):
    app = tmp_path / "needs_psutil.py"
    app.write_text("import psutil\nfrom flask import Flask\napp = Flask(__name__)\n")
    host = FlaskHost(str(app) + ":app", port=0, python=second_venv.python)
    with pytest.raises(DependencyError) as raised:
        host.start()
    error = raised.value
    assert error.missing_module == "psutil"
    assert error.troubleshooting[0].endswith("%s -m pip install psutil" % second_venv.python)
    assert sys.executable not in "\n".join(error.troubleshooting)


def _local_factory():
    def make_app():
        from flask import Flask

        return Flask("shipped")

    return make_app


def test_a_function_target_needs_cloudpickle_in_the_other_interpreter(second_venv,
                                                                       monkeypatch):
    waits = _no_wait(monkeypatch)
    events = []
    host = FlaskHost(_local_factory(), port=0, python=second_venv.python, on_event=events.append)
    with pytest.raises(DependencyError) as raised:
        host.start()
    assert raised.value.missing_module == "cloudpickle"
    assert "%s -m pip install cloudpickle" % second_venv.python in raised.value.message
    assert waits == [1.0]
    assert not [e for e in events if e.name == "started"], "refused before any child"


def test_a_function_from_main_is_refused_across_python_versions(second_venv, tmp_path,
                                                                monkeypatch):
    if second_venv.version[:2] == list(sys.version_info[:2]):
        pytest.skip("the second venv has this Python version")
    _no_wait(monkeypatch)
    # Its code would be rebuilt from this version's bytecode (a SIGSEGV in the
    # child, restarted in vain). A stand-in cloudpickle passes the import check.
    (tmp_path / "cloudpickle.py").write_text("")
    events = []
    host = FlaskHost(_local_factory(), port=0, python=second_venv.python,
                     env={"PYTHONPATH": str(tmp_path)}, on_event=events.append)
    with pytest.raises(SpawnError) as raised:
        host.start()
    message = raised.value.message
    assert "does not carry across Python versions" in message
    assert "this is Python %d.%d, that is Python %d.%d" % (
        tuple(sys.version_info[:2]) + tuple(second_venv.version[:2])) in message
    assert "'module:factory()'" in message
    assert not [e for e in events if e.name == "started"]
