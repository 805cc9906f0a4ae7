"""Pre-flight (``requires``): imports with the child's interpreter and environment,
2 tries 1 s apart (the wait recorded, not slept), every missing module named."""
from __future__ import annotations

import sys

import pytest

from pyhost import DependencyError, FlaskHost, HostConfig, HostState
from pyhost import preflight as preflight_module
from pyhost.policies import preflight_retrying
from pyhost.preflight import run_preflight


def test_missing_modules_are_all_named_with_one_pip_line():
    waits = []
    config = HostConfig(requires=("flask", "no_such_module_a", "flask_cors", "no_such_mod.sub"))
    with pytest.raises(DependencyError) as raised:
        run_preflight(config, sleep=waits.append)
    error = raised.value
    assert waits == [1.0], "tried twice, 1 s apart"
    assert error.details["missing_modules"] == ["no_such_module_a", "no_such_mod"]
    assert error.missing_module == "no_such_module_a"
    install = "%s -m pip install no-such-module-a no-such-mod" % sys.executable
    assert install in error.message
    assert "no_such_module_a, no_such_mod" in error.message
    # The first troubleshooting step is the same line, for every module.
    assert "no-such-module-a" in error.troubleshooting[0]
    assert "no-such-mod" in error.troubleshooting[0]
    assert "(no_such_mod.sub needs no_such_mod)" in error.message


def test_pip_line_uses_distribution_names():
    import importlib.util

    if importlib.util.find_spec("sklearn") or importlib.util.find_spec("flask_sqlalchemy"):
        pytest.skip("needs sklearn and flask_sqlalchemy to be absent")
    with pytest.raises(DependencyError) as raised:
        run_preflight(HostConfig(requires=("sklearn", "flask_sqlalchemy")), sleep=lambda s: None)
    assert "-m pip install scikit-learn flask-sqlalchemy" in raised.value.message


def test_nothing_missing_means_one_try_and_no_wait():
    waits = []
    report = run_preflight(HostConfig(requires=("flask", "flask_cors")), sleep=waits.append)
    assert waits == []
    assert report["missing"] == []
    assert report["version"][:2] == list(sys.version_info[:2])


def test_a_module_that_appears_before_the_second_try_passes(tmp_path):
    """The seed retried because an install may be finishing: the retry must see it."""
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        (tmp_path / "installed_meanwhile.py").write_text("VALUE = 1\n")

    config = HostConfig(requires=("installed_meanwhile",), env={"PYTHONPATH": str(tmp_path)})
    report = run_preflight(config, sleep=sleep)
    assert waits == [1.0]
    assert report["missing"] == []


def test_the_probe_sees_the_childs_environment_and_sys_path(tmp_path, monkeypatch):
    # Importable only through HostConfig.env (the child gets it too) ...
    env_dir = tmp_path / "via_env"
    env_dir.mkdir()
    (env_dir / "only_via_env.py").write_text("")
    # ... or only through this process's sys.path (a multiprocessing child inherits it).
    path_dir = tmp_path / "via_path"
    path_dir.mkdir()
    (path_dir / "only_via_sys_path.py").write_text("")
    monkeypatch.syspath_prepend(str(path_dir))
    config = HostConfig(requires=("only_via_env", "only_via_sys_path"),
                        env={"PYTHONPATH": str(env_dir)})
    assert run_preflight(config, sleep=lambda s: None)["missing"] == []


def test_a_module_that_raises_on_import_is_reported_as_broken_not_missing(tmp_path):
    (tmp_path / "broken_on_import.py").write_text("raise RuntimeError('no GPU found')\n")
    config = HostConfig(requires=("broken_on_import",), env={"PYTHONPATH": str(tmp_path)})
    with pytest.raises(DependencyError) as raised:
        run_preflight(config, sleep=lambda s: None)
    message = raised.value.message
    assert "broken_on_import is installed but raised on import" in message
    assert "RuntimeError: no GPU found" in message
    assert "pip install" not in message
    steps = raised.value.troubleshooting
    assert steps[0].startswith("broken_on_import is installed but fails on import; see why: ")
    assert steps[0].endswith(" -c 'import broken_on_import'")
    assert not any("Install the missing package" in step for step in steps)


def test_a_module_that_hangs_on_import_is_named_not_blamed_on_python(tmp_path):
    (tmp_path / "hangs_on_import.py").write_text("import time\ntime.sleep(120)\n")
    config = HostConfig(requires=("hangs_on_import",), env={"PYTHONPATH": str(tmp_path)},
                        startup_timeout=1.5)
    with pytest.raises(DependencyError) as raised:
        run_preflight(config, sleep=lambda s: None)
    assert "hangs_on_import" in raised.value.message
    assert "did not finish within 2s" in raised.value.message


def test_start_runs_the_preflight_before_any_child(monkeypatch):
    waits = []
    monkeypatch.setattr(preflight_module, "preflight_retrying",
                        lambda sleep: preflight_retrying(sleep=waits.append))
    events = []
    host = FlaskHost("apps.hello:app", port=0, requires=("flask", "flask_cors_missing_here"),
                     on_event=events.append)
    with pytest.raises(DependencyError) as raised:
        host.start()
    assert waits == [1.0]
    assert "flask_cors_missing_here" in raised.value.message
    assert host.state is HostState.FAILED
    assert [event.name for event in events if event.name == "started"] == [], \
        "no child was started"
