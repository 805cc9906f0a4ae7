"""Pre-flight checks before any child starts: the interpreter and ``requires``.

Run once per ``start()`` (not per restart) with the interpreter the child will
use, in a short-lived subprocess so heavy modules are not imported into the
parent. Retried as the seed did: 2 tries, 1 second apart.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional

from .config import HostConfig
from .errors import ErrorType, HostError, make_error
from .policies import preflight_retrying

__all__ = ["run_preflight", "check_environment", "MIN_CHILD_VERSION"]

MIN_CHILD_VERSION = (3, 9)

_PROBE = r"""
import importlib, json, sys
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        missing.append({"module": name, "missing": getattr(exc, "name", None) or name,
                        "error": "%s: %s" % (type(exc).__name__, exc)})
    except Exception as exc:
        missing.append({"module": name, "missing": None,
                        "error": "%s: %s" % (type(exc).__name__, exc)})
print(json.dumps({"version": list(sys.version_info[:3]), "executable": sys.executable,
                  "missing": missing}))
"""


def resolve_python(python: Optional[str]) -> str:
    """The interpreter path: ``python`` (a path or a name on PATH), else this one."""
    if not python:
        return sys.executable
    if os.sep in python or (os.altsep and os.altsep in python):
        return os.path.abspath(os.path.expanduser(python))
    return shutil.which(python) or python


def check_environment(python: Optional[str], requires: List[str],
                      timeout: float = 60.0) -> Dict[str, Any]:
    """Run the probe once; raise ``PythonNotFound``, return ``{version, missing}``."""
    executable = resolve_python(python)
    # The child needs werkzeug to serve: check it along with what the user listed.
    modules = list(requires) + (["werkzeug"] if python else [])
    try:
        done = subprocess.run([executable, "-c", _PROBE, *modules], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, text=True)
    except FileNotFoundError:
        raise _python_error(executable, "Python executable not found: %s" % executable) from None
    except PermissionError:
        raise _python_error(executable, "Python executable is not runnable (permission denied): "
                            "%s" % executable) from None
    except OSError as exc:
        raise _python_error(executable, "Python executable cannot run: %s: %s"
                            % (executable, exc)) from None
    except subprocess.TimeoutExpired:
        raise _python_error(executable, "Python executable %s did not answer within %.0fs"
                            % (executable, timeout)) from None
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise _python_error(executable, "%s does not run as a Python 3 interpreter (exit code "
                            "%s): %s" % (executable, done.returncode,
                                         (done.stderr or done.stdout).strip()[-300:])) from None
    version = tuple(report["version"])
    if version[:2] < MIN_CHILD_VERSION:
        raise _python_error(executable, "%s is Python %s; the pyhost child needs Python %d.%d+"
                            % (executable, ".".join(map(str, version)), *MIN_CHILD_VERSION))
    report["executable"] = executable
    return report


def run_preflight(config: HostConfig, *, sleep: Callable[[float], Any] = None) -> Dict[str, Any]:
    """The pre-flight for ``config``: raise ``PythonNotFound`` or ``DependencyError``."""
    import time

    retrying = preflight_retrying(sleep=sleep or time.sleep)
    reports: List[Dict[str, Any]] = []

    def attempt() -> List[Dict[str, Any]]:
        report = check_environment(config.python, list(config.requires))
        reports.append(report)
        return report["missing"]

    missing = retrying(attempt)
    report = reports[-1]
    if missing:
        names = [item["missing"] or item["module"] for item in missing]
        raise make_error(
            ErrorType.DEPENDENCY_ERROR,
            "Python dependencies not installed for %s: %s"
            % (report["executable"], "; ".join(item["error"] for item in missing)),
            missing_module=names[0],
            details={"missing_modules": names, "python": report["executable"],
                     "checked": list(config.requires)},
        )
    return report


def _python_error(executable: str, message: str) -> HostError:
    return make_error(ErrorType.PYTHON_NOT_FOUND, message, details={"python": executable})
