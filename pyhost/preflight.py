"""Pre-flight checks before any child starts: the interpreter and ``requires``.

Run once per ``start()`` (not per restart) with the interpreter the child will
use, in a short-lived subprocess so heavy modules (torch, tensorflow) are not
imported into the parent, and with the environment the child will get. Missing
modules are retried (2 tries, 1 second apart: a ``pip install``
running in another terminal may just be finishing); a missing interpreter is
not, no second look will make it appear.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .config import HostConfig
from .errors import ErrorType, HostError, make_error
from .policies import preflight_retrying
from .troubleshooting import pip_install_line, steps_for

__all__ = ["run_preflight", "check_environment", "check_import", "resolve_python",
           "MIN_CHILD_VERSION"]

log = logging.getLogger("pyhost")

#: The oldest Python that can run the child package (``pyhost/_child``).
MIN_CHILD_VERSION = (3, 9)

_MARK = "@@pyhost-preflight@@ "

# Runs under the chosen interpreter, which may be old or not Python 3 at all:
# keep it parseable by Python 2 so an old interpreter reports its version
# instead of a SyntaxError. The version line goes first and is flushed, so a
# hanging import is told apart from an interpreter that never starts.
_PROBE = r"""
import json, sys
MARK = %r
print(MARK + json.dumps({"version": list(sys.version_info[:3]), "executable": sys.executable}))
sys.stdout.flush()
import importlib
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        missing.append({"module": name, "missing": getattr(exc, "name", None) or name,
                        "import_error": True, "error": "%%s: %%s" %% (type(exc).__name__, exc)})
    except Exception as exc:
        missing.append({"module": name, "missing": None, "import_error": False,
                        "error": "%%s: %%s" %% (type(exc).__name__, exc)})
print(MARK + json.dumps({"missing": missing}))
""" % _MARK


def resolve_python(python: Optional[str]) -> str:
    """The interpreter path: ``python`` (a path or a name on PATH), else this one."""
    if not python:
        return sys.executable
    if os.sep in python or (os.altsep and os.altsep in python):
        return os.path.abspath(os.path.expanduser(python))
    return shutil.which(python) or python


def child_environment(config: HostConfig) -> Dict[str, str]:
    """The environment the probe runs with: the child's (``os.environ`` + ``env``).

    With this interpreter, the child also inherits the parent's ``sys.path``
    (multiprocessing passes it on), so the probe gets it as ``PYTHONPATH``.
    """
    environ = dict(os.environ)
    environ.update(config.env)
    if not config.python:
        paths = [entry for entry in sys.path if entry]
        if environ.get("PYTHONPATH"):
            paths.append(environ["PYTHONPATH"])
        environ["PYTHONPATH"] = os.pathsep.join(paths)
    return environ


def check_environment(python: Optional[str], requires: Sequence[str], timeout: float = 60.0,
                      env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """Run the probe once: raise ``PythonNotFound``, else return ``{version, missing, ...}``.

    ``missing`` lists the modules of ``requires`` (plus ``werkzeug`` for
    another interpreter, which the child serves with) that failed to import.
    """
    executable = resolve_python(python)
    if python and os.path.isdir(executable):
        hint = os.path.join(executable, "Scripts" if os.name == "nt" else "bin", "python")
        raise _python_error(executable, "%s is a directory, not a Python interpreter; for a venv "
                            "pass its interpreter, e.g. python=%r" % (executable, hint))
    modules = list(requires) + (["werkzeug"] if python and "werkzeug" not in requires else [])
    try:
        done = subprocess.run([executable, "-c", _PROBE, *modules], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, text=True,
                              env=dict(env) if env is not None else None,
                              errors="replace")
    except FileNotFoundError:
        raise _python_error(executable, "Python executable not found: %s" % executable) from None
    except PermissionError:
        raise _python_error(executable, "Python executable is not runnable (permission denied): "
                            "%s" % executable) from None
    except OSError as exc:
        raise _python_error(executable, "Python executable cannot run: %s: %s"
                            % (executable, exc)) from None
    except subprocess.TimeoutExpired as exc:
        reports = _reports(exc.stdout)
        if reports:
            raise make_error(
                ErrorType.DEPENDENCY_ERROR,
                "Importing the required modules (%s) with %s did not finish within %.0fs; one "
                "of them hangs on import" % (", ".join(modules), executable, timeout),
                details={"python": executable, "checked": modules, "phase": "preflight"},
            ) from None
        raise _python_error(executable, "Python executable %s did not answer within %.0fs"
                            % (executable, timeout)) from None
    reports = _reports(done.stdout)
    if not reports:
        output = (done.stderr or done.stdout or "").strip()
        raise _python_error(executable, "%s does not run as a Python interpreter (exit code %s)%s"
                            % (executable, done.returncode,
                               ": %s" % output[-300:] if output else ", no output"))
    report = dict(reports[0])
    version = tuple(report["version"])
    if version[:2] < MIN_CHILD_VERSION:
        raise _python_error(executable, "%s is Python %s; the pyhost child needs Python %d.%d or "
                            "newer. Point python= at a newer interpreter or venv."
                            % (executable, ".".join(map(str, version)), *MIN_CHILD_VERSION))
    if len(reports) < 2:
        # Printed its version, then died while importing (a segfault in a C extension).
        output = (done.stderr or "").strip()
        raise make_error(
            ErrorType.DEPENDENCY_ERROR,
            "Importing the required modules (%s) with %s crashed the interpreter (exit code "
            "%s)%s" % (", ".join(modules), executable, done.returncode,
                       ": %s" % output[-300:] if output else ""),
            stderr_tail=output.splitlines()[-20:],
            details={"python": executable, "checked": modules, "phase": "preflight"},
        )
    report["missing"] = reports[1]["missing"]
    report["executable"] = executable
    report["checked"] = modules
    return report


# Imports the app's module (not the factory: calling it may open connections)
# and reports the exception as data. Runs in a fresh interpreter, so the
# parent never runs the user's code and a module cached there is no excuse.
_IMPORT_PROBE = r"""
import importlib, importlib.util, json, os, sys, traceback
MARK, kind, module, attr = sys.argv[1:5]
try:
    if kind == "file":
        sys.path.insert(0, os.path.dirname(module))
        spec = importlib.util.spec_from_file_location("__pyhost_reload_check__", module)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        spec.loader.exec_module(loaded)
    else:
        loaded = importlib.import_module(module)
    if attr and not hasattr(loaded, attr):
        raise AttributeError("module %r has no attribute %r" % (module, attr))
    report = {"ok": True}
except BaseException as exc:
    where = None
    if isinstance(exc, SyntaxError):
        where = "%s:%s" % (exc.filename, exc.lineno)
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            where = "%s:%s" % (frames[-1].filename, frames[-1].lineno)
    report = {"ok": False, "exc_type": type(exc).__name__, "error": str(exc), "where": where,
              "missing": getattr(exc, "name", None) if isinstance(exc, ImportError) else None,
              "traceback": "".join(traceback.format_exception(type(exc), exc,
                                                              exc.__traceback__))}
print(MARK + json.dumps(report))
"""


def check_import(target: Mapping[str, Any], config: HostConfig) -> None:
    """Import a parsed string target's module in a fresh interpreter; raise its typed error.

    ``DependencyError`` for a missing module, ``AppLoadError`` for a syntax
    error or an exception raised at import time (with ``where`` and the
    traceback). Callables and app objects are not checked.
    """
    if target.get("kind") not in ("file", "module"):
        return
    attr = str(target.get("attr") or "").split(".")[0]
    executable = resolve_python(config.python)
    try:
        done = subprocess.run(
            [executable, "-c", _IMPORT_PROBE, _MARK, str(target["kind"]), str(target["module"]),
             attr], capture_output=True, timeout=config.startup_timeout,
            stdin=subprocess.DEVNULL, text=True, env=child_environment(config),
            errors="replace")
    except subprocess.TimeoutExpired:
        raise make_error(ErrorType.HEALTH_CHECK_TIMEOUT,
                         "Importing %s did not finish within startup_timeout=%.0fs"
                         % (target.get("label"), config.startup_timeout),
                         details={"phase": "loading"}) from None
    except OSError as exc:
        raise _python_error(executable, "Python executable cannot run: %s: %s"
                            % (executable, exc)) from None
    reports = _reports(done.stdout)
    output = (done.stderr or "").strip().splitlines()[-20:]
    if not reports:
        raise make_error(ErrorType.PROCESS_CRASH, "Importing %s ended the interpreter (exit "
                         "code %s) before it could report" % (target.get("label"), done.returncode),
                         stderr_tail=output, exit_code=done.returncode)
    report = reports[-1]
    if report["ok"]:
        return
    message = "%s does not import: %s: %s%s" % (
        target.get("label"), report["exc_type"], report["error"],
        " (at %s)" % report["where"] if report.get("where") else "")
    details = {"where": report.get("where"), "exception": report["exc_type"],
               "phase": "import", "target": target.get("label")}
    if report["exc_type"] in ("ModuleNotFoundError", "ImportError") and report.get("missing"):
        raise make_error(ErrorType.DEPENDENCY_ERROR, message, missing_module=report["missing"],
                         remote_traceback=report["traceback"], stderr_tail=output,
                         details=details)
    raise make_error(ErrorType.APP_LOAD_ERROR, message, remote_traceback=report["traceback"],
                     stderr_tail=output, details=details)


def run_preflight(config: HostConfig, *, target: Optional[Mapping[str, Any]] = None,
                  sleep: Optional[Callable[[float], Any]] = None) -> Dict[str, Any]:
    """The pre-flight for ``config``: raise ``PythonNotFound``, ``DependencyError``
    or ``SpawnError`` (a function that cannot be sent to that interpreter).

    ``target`` is the parsed target (``pyhost.targets.parse_target``): a
    function shipped with cloudpickle needs cloudpickle in the child, and the
    same Python version when its code travels by value. ``sleep`` is
    injectable so tests record the 1 s wait instead of waiting.
    """
    retrying = preflight_retrying(sleep=sleep or time.sleep)
    reports: List[Dict[str, Any]] = []
    env = child_environment(config)
    requires = list(config.requires)
    shipped = bool(target and target.get("kind") == "callable"
                   and target.get("format") == "cloudpickle")
    if shipped and config.python and "cloudpickle" not in requires:
        requires.append("cloudpickle")

    def attempt() -> List[Dict[str, Any]]:
        report = check_environment(config.python, requires,
                                   timeout=config.startup_timeout, env=env)
        reports.append(report)
        if report["missing"]:
            log.info("Pre-flight check %d/2 for %s: %s", len(reports), report["executable"],
                     ", ".join(item["module"] for item in report["missing"]))
        return report["missing"]

    missing = retrying(attempt)
    report = reports[-1]
    if missing:
        raise dependency_error(report["executable"], missing, report["checked"])
    if shipped and config.python and target is not None:
        _check_code_travels(target, report)
    log.debug("pre-flight ok: Python %s at %s; imported %s",
              ".".join(map(str, report["version"])), report["executable"],
              ", ".join(report["checked"]) or "nothing")
    return report


def dependency_error(executable: str, problems: List[Dict[str, Any]],
                     checked: Sequence[str]) -> HostError:
    """One ``DependencyError`` naming every missing module and the pip line for all of them."""
    absent = [item for item in problems if item.get("import_error", True)]
    broken = [item for item in problems if not item.get("import_error", True)]
    names: List[str] = []
    for item in absent:
        name = item["missing"] or item["module"]
        if name not in names:
            names.append(name)
    parts = []
    if names:
        install = pip_install_line(executable, names)
        parts.append("Missing Python module%s for %s: %s. Install with: %s"
                     % ("s" if len(names) > 1 else "", executable, ", ".join(names), install))
    for item in absent:
        if item["missing"] and item["missing"] != item["module"]:
            parts.append("(%s needs %s)" % (item["module"], item["missing"]))
    for item in broken:
        parts.append("%s is installed but raised on import: %s" % (item["module"], item["error"]))
    if "werkzeug" in names and "werkzeug" not in [i["module"] for i in broken]:
        parts.append("(the pyhost child serves the app with Werkzeug, so that interpreter "
                     "needs it too)")
    details = {"missing_modules": names, "broken_modules": [item["module"] for item in broken],
               "python": executable, "checked": list(checked), "phase": "preflight",
               "errors": [item["error"] for item in problems]}
    return make_error(
        ErrorType.DEPENDENCY_ERROR,
        " ".join(parts),
        missing_module=(names or [broken[0]["module"]])[0],
        details=details,
        # Every missing module on the pip line, not only the first.
        troubleshooting=steps_for(ErrorType.DEPENDENCY_ERROR, missing_module=names or None,
                                  details=details),
    )


def _by_value(target: Mapping[str, Any]) -> bool:
    """cloudpickle sends a function's code only when it can't be imported by name."""
    label = str(target.get("label", ""))
    return target.get("module") in (None, "__main__") or "<locals>" in label \
        or "<lambda>" in label


def _check_code_travels(target: Mapping[str, Any], report: Mapping[str, Any]) -> None:
    # Bytecode differs between Python versions: a function rebuilt from another
    # version's code object can crash the child with SIGSEGV, which would look
    # like a transient crash and be restarted in vain.
    theirs = tuple(report["version"][:2])
    ours = tuple(sys.version_info[:2])
    if theirs == ours or not _by_value(target):
        return
    label = target.get("label", "the factory")
    raise make_error(
        ErrorType.PROCESS_SPAWN_ERROR,
        "cannot send %s to %s: it is defined in __main__, a notebook cell or a function body, "
        "so its code is shipped by value, and function code does not carry across Python "
        "versions (this is Python %d.%d, that is Python %d.%d). Move the factory into a module "
        "and pass 'module:factory()', or use a Python %d.%d interpreter."
        % ((label, report["executable"]) + ours + theirs + ours),
        troubleshooting=[
            "Move the factory into a module next to your code and pass 'module:factory()'",
            "Or point python= at a Python %d.%d interpreter (venv)" % ours,
        ],
        details={"python": report["executable"], "target": label,
                 "parent_version": list(ours), "child_version": list(theirs)},
    )


def _reports(stdout: Any) -> List[Dict[str, Any]]:
    if isinstance(stdout, bytes):
        stdout = stdout.decode("utf-8", "replace")
    found = []
    for line in (stdout or "").splitlines():
        index = line.find(_MARK)
        if index < 0:
            continue
        try:
            found.append(json.loads(line[index + len(_MARK):]))
        except ValueError:
            continue
    return found


def _python_error(executable: str, message: str) -> HostError:
    return make_error(ErrorType.PYTHON_NOT_FOUND, message, details={"python": executable})
