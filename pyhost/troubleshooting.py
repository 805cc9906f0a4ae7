"""Concrete troubleshooting steps for each error type.

Steps name the real module, port, file and line where the error carries them,
so the first thing a user reads is what to do, not what to search for.
"""
from __future__ import annotations

import errno
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .protocol import ErrorType

# Import names that differ from the distribution to ``pip install``.
_PIP_NAMES: Dict[str, str] = {
    "flask_cors": "flask-cors",
    "yaml": "PyYAML",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "dotenv": "python-dotenv",
    "prometheus_client": "prometheus-client",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "jwt": "PyJWT",
    "attr": "attrs",
    "google.protobuf": "protobuf",
    "dash_bootstrap_components": "dash-bootstrap-components",
    "flask_sqlalchemy": "flask-sqlalchemy",
    "flask_login": "flask-login",
}


def pip_name(module: str) -> str:
    """The distribution most likely to provide import name ``module``."""
    if module in _PIP_NAMES:
        return _PIP_NAMES[module]
    top = module.split(".")[0]
    return _PIP_NAMES.get(top, top.replace("_", "-"))


def pip_install_line(python: str, modules: Sequence[str]) -> str:
    """``python -m pip install`` the distributions of ``modules``, in their order, once each."""
    return "%s -m pip install %s" % (python, " ".join(dict.fromkeys(map(pip_name, modules))))


def _python_label(details: Mapping[str, Any]) -> str:
    return str(details.get("python") or sys.executable)


def _run_directly(details: Mapping[str, Any]) -> str:
    target = str(details.get("target") or "")
    if details.get("kind") == "callable" or not target:
        return ("Reproduce it in this interpreter: call the factory%s and serve the app with "
                "app.run(port=0)" % (" " + target if target else ""))
    return "Run the app directly to reproduce: flask --app %s run" % target


def _reproduce(python: str, details: Mapping[str, Any]) -> str:
    """A command that runs the same import (and factory call) in a plain interpreter."""
    module = details.get("module")
    target = str(details.get("target") or "")
    if module in ("__main__", "__mp_main__"):
        return "call %s in this interpreter (the notebook cell or script) and read its " \
               "traceback" % (target or "the factory")
    if not module or "/" in str(module):
        return "flask --app %s routes" % (repr(target) if target else "<target>")
    expr = target.split(":", 1)[1] if ":" in target and "(" in target else ""
    if expr:
        return '%s -c "import %s as m; m.%s"' % (python, module, expr)
    return "%s -c 'import %s'" % (python, module)


def _health_steps(details: Mapping[str, Any]) -> List[str]:
    phase = details.get("phase")
    if phase == "loading":
        return [
            "The app was still importing (or its factory still running) when startup_timeout "
            "ran out: see what it was doing in host.logs() / stderr_tail",
            "If it loads a model or waits for a service, raise startup_timeout",
            "Time the import alone: python -X importtime -c 'import yourapp'",
        ]
    steps = []
    last = str(details.get("last_result") or "")
    path = details.get("health_path")
    if phase == "liveness":
        steps.append("The app stopped answering after it was ready (a hung request handler, "
                     "a deadlock, a blocking call): host.logs() shows its last output")
    if last.startswith("HTTP 5"):
        steps.append("The app answers %s at %s: its traceback is in host.logs() / stderr_tail"
                     % (last, details.get("url") or path or "/"))
    elif last.startswith("HTTP"):
        steps.append("%s answers %s, but a health_path must answer 2xx: fix the route or "
                     "point health_path at one that does" % (path, last))
    elif last:
        steps.append("Probes ended with %r: check the app is serving (host.logs())" % last)
    if path is None:
        steps.append("Any answer below 500 on / counts as alive; set health_path='/health' "
                     "to probe a dedicated route")
    steps.append("If the app needs longer to warm up, raise health_check_timeout "
                 "(and health_check_max_retries)")
    return steps


def _network_steps(details: Mapping[str, Any], port: Optional[int]) -> List[str]:
    url = details.get("url")
    if url:
        return [
            "Check the server at %s is running and reachable: curl -i %s" % (url, url),
            "If it is slow to start, raise health_check_timeout",
        ]
    host = details.get("host", "")
    code = details.get("errno")
    if code == errno.EACCES:
        return [
            "Port %s needs privileges (ports below 1024): use a port above 1024, or port=0"
            % port,
        ]
    if code == errno.EADDRNOTAVAIL:
        return [
            "%r is not an address of this machine: use host='127.0.0.1' (loopback, the "
            "default) or host='0.0.0.0' (every interface)" % host,
            "List this machine's addresses: ip addr (or ifconfig)",
        ]
    return [
        "Check host=%r and port=%s: 127.0.0.1 with port=0 always works" % (host, port),
        "See the error number in error.details['errno'] and the message above",
    ]


def steps_for(error_type: ErrorType, *, message: str = "", **fields: Any) -> List[str]:
    details: Mapping[str, Any] = fields.get("details") or {}
    port: Optional[int] = fields.get("port")
    python = _python_label(details)
    if error_type is ErrorType.PYTHON_NOT_FOUND:
        given = details.get("python") or "(python=)"
        return [
            "Check the interpreter path: %s" % given,
            "Install Python 3.9+ from https://www.python.org/downloads/ or create the venv: "
            "python3 -m venv .venv",
            "Ensure Python is on your PATH (which %s) and restart your terminal/IDE after "
            "installing it" % os.path.basename(given),
            "Use the venv's interpreter, e.g. python='.venv/bin/python', or leave python=None "
            "to use this interpreter",
            "Verify it runs: %s --version" % (details.get("python") or "<path>"),
        ]
    if error_type is ErrorType.DEPENDENCY_ERROR:
        missing = fields.get("missing_module") or details.get("missing_modules")
        modules = missing if isinstance(missing, list) else [missing] if missing else []
        broken = details.get("broken_modules") or []
        modules = [m for m in modules if m not in broken]
        steps = ["Install the server: %s" % details["install"]] if details.get("install") else []
        for module in broken:  # installed, but its import raises: installing is not the fix
            steps.append("%s is installed but fails on import; see why: %s -c 'import %s'"
                         % (module, python, module))
        if modules:
            steps.append("Install the missing package%s: %s"
                         % ("s" if len(modules) > 1 else "", pip_install_line(python, modules)))
        steps += [
            "If the app has a requirements file: %s -m pip install -r requirements.txt" % python,
            "If you use a virtual environment, activate it or pass "
            "python='path/to/venv/bin/python'",
            "Check for conflicting package versions: %s -m pip check" % python,
        ]
        return steps
    if error_type is ErrorType.PORT_IN_USE:
        holder = details.get("holder")
        steps = ["Port %s is already in use%s" % (port, " by %s" % holder if holder else "")]
        if details.get("holder_in_process"):
            steps.append("It is another FlaskHost of this process: stop it first with its "
                         "host.stop() (or pyhost.stop_all())")
        elif details.get("holder_pid"):
            steps.append("Stop that process: kill %s" % details["holder_pid"])
        else:
            steps.append("Find the process holding it: lsof -i :%s  (or: ss -ltnp 'sport = :%s')"
                         % (port, port))
        steps += [
            "Or start on another port, e.g. port=0 to let the OS pick a free one",
        ]
        return steps
    if error_type is ErrorType.SCRIPT_NOT_FOUND:
        here = details.get("importable_here")
        first = [
            "This process imports it from %s (its sys.path), but the python= interpreter has its "
            "own sys.path: pass env={'PYTHONPATH': %r}" % (here, here)] if here else []
        return first + [
            "Check the target %s: 'package.module:attr', 'path/to/app.py:app' or 'module'"
            % (repr(details["target"]) if details.get("target") else ""),
            "Run from the project directory, or make the package importable "
            "(pip install -e . or PYTHONPATH)",
            "Check the spelling of the module and of the attribute after ':'",
        ]
    if error_type is ErrorType.APP_LOAD_ERROR:
        where = details.get("where")
        steps = []
        if details.get("reason") == "asgi_without_server":
            steps.append("It is an ASGI app (FastAPI, Starlette): install uvicorn to serve it: %s"
                         % details.get("install"))
        if details.get("reason") == "not_wsgi":
            steps.append("Make the factory return the app (a Flask app, a Dash app or a WSGI "
                         "callable): check that it ends with 'return app'")
        if where:
            steps.append("Fix the error raised at %s" % where)
        steps += [
            "Read the traceback (error.remote_traceback, or the app's output in host.logs()) "
            "for the failing line",
            "Reproduce it without pyhost: %s" % _reproduce(python, details),
        ]
        return steps
    if error_type is ErrorType.PROCESS_SPAWN_ERROR:
        steps = []
        if details.get("pin"):  # python= with another cloudpickle: the same version on both sides
            return ["Install the parent's cloudpickle version there: %s" % details["pin"],
                    "Or move the factory into a module and pass 'module:factory()'"]
        if details.get("reason") == "bootstrap":
            # multiprocessing's own RuntimeError: a script started a host at import time.
            steps.append("Start the host under  if __name__ == '__main__':  in your script: "
                         "spawn and forkserver children import the main module again")
        return steps + [
            "Move the factory into an importable module and pass 'module:factory()'",
            "Or use start_method='fork' where the platform has it",
            "Check system limits (ulimit -u, free memory) if the OS refused the process",
        ]
    if error_type is ErrorType.PROCESS_CRASH:
        steps = []
        if fields.get("signal") == "SIGKILL":
            steps.append("SIGKILL often means the out-of-memory killer: check dmesg and memory use")
        elif fields.get("signal"):
            steps.append("The child was ended by %s: check what sent it" % fields["signal"])
        elif fields.get("exit_code") is not None:
            steps.append("The child exited with code %s: see the app's output (host.logs())"
                         % fields["exit_code"])
        steps += [
            "Look at the app's recent output (stderr_tail, host.logs()) for the cause",
            _run_directly(details),
        ]
        return steps
    if error_type is ErrorType.HEALTH_CHECK_TIMEOUT:
        return _health_steps(details)
    if error_type is ErrorType.NETWORK_ERROR:
        return _network_steps(details, port)
    return [
        "See the message and the app's output (stderr_tail) for details",
        "Run with is_development=True for verbose logs",
    ]
