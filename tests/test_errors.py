"""Typed errors: one subclass per ErrorType, troubleshooting per case, plain-data transport.

The child's classification (SCRIPT_NOT_FOUND vs DEPENDENCY_ERROR vs APP_LOAD_ERROR)
is tested here in-process with the child's own functions; test_startup_failures.py
shows the same through real processes.
"""
from __future__ import annotations

import errno
import json
import os
import pickle

import pytest

import pyhost
from pyhost import _child
from pyhost.errors import (
    DETERMINISTIC,
    AppLoadError,
    AppNotFound,
    DependencyError,
    ErrorType,
    HealthCheckTimeout,
    HostError,
    NetworkError,
    PortInUse,
    ProcessCrash,
    PythonNotFound,
    SpawnError,
    UnknownHostError,
    error_class,
    error_from_record,
    make_error,
    signal_name,
)
from pyhost.targets import parse_target
from pyhost.troubleshooting import pip_name, steps_for

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")

CONTRACT = {
    "PYTHON_NOT_FOUND": PythonNotFound,
    "SCRIPT_NOT_FOUND": AppNotFound,
    "DEPENDENCY_ERROR": DependencyError,
    "PORT_IN_USE": PortInUse,
    "PROCESS_SPAWN_ERROR": SpawnError,
    "PROCESS_CRASH": ProcessCrash,
    "HEALTH_CHECK_TIMEOUT": HealthCheckTimeout,
    "NETWORK_ERROR": NetworkError,
    "APP_LOAD_ERROR": AppLoadError,
    "UNKNOWN_ERROR": UnknownHostError,
}


def test_error_types_and_subclasses_match_the_contract():
    assert {t.value for t in ErrorType} == set(CONTRACT)
    for value, cls in CONTRACT.items():
        assert issubclass(cls, HostError)
        assert cls.type is ErrorType(value)
        assert error_class(ErrorType(value)) is cls
        assert getattr(pyhost, cls.__name__) is cls
    assert str(ErrorType.PORT_IN_USE) == "PORT_IN_USE"


def test_errors_are_also_the_builtin_a_caller_already_catches():
    with pytest.raises(ImportError) as info:
        raise DependencyError("no module named 'flask_cors'", missing_module="flask_cors")
    assert info.value.name == "flask_cors"
    with pytest.raises(OSError) as info:
        raise PortInUse("Port 5001 is in use", port=5001)
    assert info.value.errno == errno.EADDRINUSE
    assert issubclass(HealthCheckTimeout, TimeoutError)
    assert issubclass(NetworkError, OSError)


def test_deterministic_errors_are_the_ones_no_restart_can_fix():
    for kind in ("DEPENDENCY_ERROR", "SCRIPT_NOT_FOUND", "APP_LOAD_ERROR", "PYTHON_NOT_FOUND",
                 "PORT_IN_USE"):
        assert ErrorType(kind) in DETERMINISTIC
    for kind in ("PROCESS_CRASH", "HEALTH_CHECK_TIMEOUT", "UNKNOWN_ERROR"):
        assert ErrorType(kind) not in DETERMINISTIC


def _full_error(cls):
    return cls(
        "something failed on port 5001",
        troubleshooting=["step one", "step two"],
        stderr_tail=["Traceback (most recent call last):", "RuntimeError: boom"],
        remote_traceback="Traceback (most recent call last):\nRuntimeError: boom\n",
        exit_code=3,
        signal="SIGKILL",
        missing_module="flask_cors",
        port=5001,
        details={"where": "app.py:12", "holder_pid": 42},
    )


@pytest.mark.parametrize("cls", list(CONTRACT.values()), ids=list(CONTRACT))
def test_to_dict_is_json_and_pickle_round_trips(cls):
    error = _full_error(cls)
    data = error.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["type"] == cls.type.value
    for key in ("type", "message", "troubleshooting", "stderr_tail", "remote_traceback",
                "exit_code", "signal"):
        assert key in data

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert copy.to_dict() == data
    assert str(copy) == str(error) == "something failed on port 5001"


def test_error_from_record_rebuilds_the_typed_error():
    record = {"type": "DEPENDENCY_ERROR", "message": "Missing dependency: no module named 'yaml'",
              "missing_module": "yaml", "remote_traceback": "tb", "details": {"module": "app"}}
    error = error_from_record(record, stderr_tail=["line"], exit_code=3)
    assert isinstance(error, DependencyError)
    assert error.missing_module == "yaml"
    assert error.stderr_tail == ["line"]
    assert error.exit_code == 3
    assert error.details == {"module": "app"}
    assert any("pip install PyYAML" in step for step in error.troubleshooting)


def test_unknown_record_type_becomes_unknown_host_error():
    error = error_from_record({"type": "NOT_A_TYPE", "message": "odd"})
    assert isinstance(error, UnknownHostError)
    assert error.message == "odd"
    assert error.troubleshooting


@pytest.mark.parametrize("cls", list(CONTRACT.values()), ids=list(CONTRACT))
def test_every_error_has_troubleshooting_even_when_raised_directly(cls):
    assert cls("failed").troubleshooting
    assert make_error(cls.type, "failed").troubleshooting


def test_describe_numbers_the_steps_and_shows_recent_output():
    error = make_error(ErrorType.PROCESS_CRASH, "The app process exited with code 3",
                       exit_code=3, stderr_tail=["x%d" % i for i in range(30)])
    text = error.describe()
    assert text.splitlines()[0] == "The app process exited with code 3"
    assert "Error type: PROCESS_CRASH" in text
    assert "  1. The child exited with code 3" in text
    assert "x29" in text and "x19" not in text  # only the last ten lines


def test_signal_name():
    assert signal_name(9) == "SIGKILL"
    assert signal_name(15) == "SIGTERM"
    assert signal_name(None) is None
    assert signal_name(250) == "signal 250"


# ------------------------------------------------------- troubleshooting text
@pytest.mark.parametrize(
    "module, dist",
    [("flask_cors", "flask-cors"), ("yaml", "PyYAML"), ("sklearn.linear_model", "scikit-learn"),
     ("requests", "requests"), ("my_lib.sub", "my-lib")],
)
def test_pip_name(module, dist):
    assert pip_name(module) == dist


def test_dependency_steps_name_the_package_and_the_interpreter():
    steps = steps_for(ErrorType.DEPENDENCY_ERROR, missing_module="flask_cors",
                      details={"python": "/opt/venv/bin/python"})
    assert steps[0] == "Install the missing package: /opt/venv/bin/python -m pip install flask-cors"
    several = steps_for(ErrorType.DEPENDENCY_ERROR,
                        details={"missing_modules": ["yaml", "flask_cors"]})
    assert "pip install PyYAML flask-cors" in several[0]


def test_port_steps_name_the_port_and_the_holder():
    steps = steps_for(ErrorType.PORT_IN_USE, port=5001,
                      details={"holder": "pid 4242 (python api_server.py)", "holder_pid": 4242})
    assert "Port 5001" in steps[0] and "pid 4242" in steps[0]
    assert "kill 4242" in steps[1]
    unknown = steps_for(ErrorType.PORT_IN_USE, port=5001)
    assert any("lsof -i :5001" in step for step in unknown)
    assert any("port=0" in step for step in unknown)


def test_app_load_steps_name_the_line_and_how_to_reproduce():
    steps = steps_for(ErrorType.APP_LOAD_ERROR, message="RuntimeError: boom",
                      details={"where": "/src/app.py:12", "module": "app",
                               "target": "app:create_app(debug=True)", "python": "py"})
    assert steps[0] == "Fix the error raised at /src/app.py:12"
    assert 'py -c "import app as m; m.create_app(debug=True)"' in steps[-1]
    not_wsgi = steps_for(ErrorType.APP_LOAD_ERROR,
                         message="app:make() returned NoneType, which is not a WSGI app",
                         details={"reason": "not_wsgi"})
    assert "return app" in not_wsgi[0]


def test_crash_steps_depend_on_how_it_ended():
    assert "out-of-memory" in steps_for(ErrorType.PROCESS_CRASH, signal="SIGKILL")[0]
    assert "SIGSEGV" in steps_for(ErrorType.PROCESS_CRASH, signal="SIGSEGV")[0]
    assert "code 3" in steps_for(ErrorType.PROCESS_CRASH, exit_code=3)[0]


def test_spawn_steps_explain_the_main_guard():
    message = ("could not start the child process: RuntimeError: An attempt has been made to "
               "start a new process before the current process has finished its bootstrapping "
               "phase.")
    steps = steps_for(ErrorType.PROCESS_SPAWN_ERROR, message=message,
                      details={"reason": "bootstrap"})
    assert "__name__ == '__main__'" in steps[0]


def test_other_steps_are_concrete():
    missing_python = steps_for(ErrorType.PYTHON_NOT_FOUND, details={"python": "/no/python"})
    assert "/no/python" in missing_python[0]
    network = steps_for(ErrorType.NETWORK_ERROR, details={"host": "10.9.9.9"})
    assert "'10.9.9.9'" in network[0]


def test_health_steps_follow_the_phase_and_the_last_probe():
    def steps(**details):
        return " | ".join(steps_for(ErrorType.HEALTH_CHECK_TIMEOUT, details=details))

    assert "startup_timeout" in steps(phase="loading")
    assert "HTTP 500 at http://127.0.0.1:5001/" in steps(
        phase="health", last_result="HTTP 500", url="http://127.0.0.1:5001/")
    assert "/healthz answers HTTP 404" in steps(phase="health", last_result="HTTP 404",
                                                  health_path="/healthz")
    assert "'Connection refused'" in steps(phase="health", last_result="Connection refused")
    assert "stopped answering" in steps(phase="liveness", last_result="Timeout")


def test_network_steps_follow_the_cause():
    def steps(**details):
        return " | ".join(steps_for(ErrorType.NETWORK_ERROR, port=80, details=details))

    assert "curl -i http://example.invalid/" in steps(url="http://example.invalid/")
    assert "Port 80 needs privileges" in steps(host="127.0.0.1", errno=errno.EACCES)
    assert "'192.0.2.1' is not an address of this machine" in steps(
        host="192.0.2.1", errno=errno.EADDRNOTAVAIL)


# ------------------------------------------ classification (child code, in-process)
def _classify(target):
    spec = parse_target(target)
    with pytest.raises(BaseException) as info:
        _child.load_app(spec)
    record = _child.classify_load_error(info.value, spec)
    # Errors cross the pipe as plain data, never as pickled exception objects.
    assert json.loads(json.dumps(record)) == record
    return record


def test_missing_target_module_is_script_not_found():
    record = _classify("apps.no_such_module:app")
    assert record["type"] == "SCRIPT_NOT_FOUND"
    assert "apps.no_such_module" in record["message"]
    assert record["details"]["target"] == "apps.no_such_module:app"
    assert _classify("no_such_top_level_pkg.sub:app")["type"] == "SCRIPT_NOT_FOUND"


def test_missing_attribute_is_script_not_found():
    record = _classify("apps.hello:nope")
    assert record["type"] == "SCRIPT_NOT_FOUND"
    assert "'nope'" in record["message"]


def test_module_without_an_app_is_script_not_found():
    record = _classify("apps.factories")
    assert record["type"] == "SCRIPT_NOT_FOUND"
    assert "create_app" in record["message"]


def test_several_flask_apps_is_ambiguous():
    record = _classify("apps.several_apps")
    assert record["type"] == "SCRIPT_NOT_FOUND"
    assert "several Flask apps" in record["message"]


def test_missing_dependency_is_dependency_error():
    record = _classify("apps.missing_dep:app")
    assert record["type"] == "DEPENDENCY_ERROR"
    assert record["missing_module"] == "pyhost_missing_dependency_for_tests"
    assert "pyhost_missing_dependency_for_tests" in record["message"]
    assert "ModuleNotFoundError" in record["remote_traceback"]


def test_remote_traceback_shows_the_apps_frames_not_the_loaders():
    traceback_text = _classify("apps.missing_dep:app")["remote_traceback"]
    assert 'missing_dep.py", line 2, in <module>' in traceback_text
    assert "importlib" not in traceback_text
    assert "_child.py" not in traceback_text
    factory = _classify("apps.factories:raises()")["remote_traceback"]
    frames = [line for line in factory.splitlines() if line.startswith('  File "')]
    assert frames[-1].endswith('factories.py", line 16, in raises')
    assert "_child.py" not in factory


def test_wrong_version_of_a_dependency_is_dependency_error():
    record = _classify("apps.wrong_version:app")
    assert record["type"] == "DEPENDENCY_ERROR"
    assert record["missing_module"] == "flask"
    assert "FeatureFromTheFuture" in record["message"]


def test_missing_module_of_the_apps_own_package_is_the_apps_bug():
    record = _classify("apps.imports_own_missing:app")
    assert record["type"] == "APP_LOAD_ERROR"
    assert "no_such_sibling_module" in record["message"]


def test_syntax_error_names_file_and_line():
    record = _classify("apps.syntax_error:app")
    assert record["type"] == "APP_LOAD_ERROR"
    where = os.path.join(APPS, "syntax_error.py") + ":7"
    assert record["details"]["where"] == where
    error = error_from_record(record)
    assert isinstance(error, AppLoadError)
    assert error.troubleshooting[0] == "Fix the error raised at %s" % where


def test_raising_factory_names_the_factory_line():
    record = _classify("apps.factories:raises(reason='db down')")
    assert record["type"] == "APP_LOAD_ERROR"
    assert "factories.raises: db down" in record["message"]
    assert record["details"]["where"].endswith("factories.py:16")
    assert "RuntimeError" in record["remote_traceback"]


@pytest.mark.parametrize("factory, got", [("returns_none()", "NoneType"),
                                          ("returns_string()", "str")])
def test_factory_returning_a_non_wsgi_object_is_app_load_error(factory, got):
    record = _classify("apps.factories:" + factory)
    assert record["type"] == "APP_LOAD_ERROR"
    assert "returned %s, which is not a WSGI app" % got in record["message"]


def test_bind_errors_are_classified_by_errno():
    spec = {"host": "127.0.0.1", "port": 5001}
    in_use = _child._classify_bind_error(OSError(errno.EADDRINUSE, "in use"), spec)
    assert in_use["type"] == "PORT_IN_USE" and in_use["port"] == 5001
    assert "Port 5001 is in use" in in_use["message"]
    denied = _child._classify_bind_error(OSError(errno.EACCES, "denied"), dict(spec, port=80))
    assert denied["type"] == "NETWORK_ERROR" and "below 1024" in denied["message"]
    missing = _child._classify_bind_error(OSError(errno.EADDRNOTAVAIL, "n/a"), spec)
    assert missing["type"] == "NETWORK_ERROR" and "not available" in missing["message"]


def test_crash_and_load_errors_of_a_callable_target_suggest_calling_it():
    from pyhost.errors import make_error

    crash = make_error(ErrorType.PROCESS_CRASH, "x", exit_code=1,
                       details={"target": "__main__.create_app()", "kind": "callable"})
    assert any("call the factory __main__.create_app()" in step
               for step in crash.troubleshooting)
    assert not any("<target>" in step for step in crash.troubleshooting)
    load = make_error(ErrorType.APP_LOAD_ERROR, "x",
                      details={"module": "__main__", "target": "__main__.create_app()"})
    assert any("call __main__.create_app() in this interpreter" in step
               for step in load.troubleshooting)
    assert not any("import __main__" in step for step in load.troubleshooting)
