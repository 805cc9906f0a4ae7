"""The README's main job in one run: ``pyhost demo`` and ``examples/demo.py``.

Hosts the example app on a free port and shows how long it took to be ready
and its status; kills the app process with SIGKILL and shows pyhost restart it
on the same URL; hosts an app with a missing dependency and shows the typed
``DependencyError`` with its troubleshooting steps; stops everything. It needs
only the core install (Flask, Werkzeug, tenacity): HTTP goes through urllib.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
from typing import Any, Iterator, Optional, TextIO

__all__ = ["run_demo", "find_examples", "main"]

#: How long the demo waits for the automatic restart before calling it a failure.
RESTART_WAIT = 30.0

# Used only when pyhost is installed without its source tree (no examples/ dir):
# the same two apps, written to a temporary directory.
_FALLBACK_APPS = {
    "hello_app.py": (
        "import os\n"
        "from flask import Flask, jsonify\n"
        "app = Flask(__name__)\n\n"
        "@app.route('/')\n"
        "def index():\n"
        "    return jsonify(message='hello from a pyhost child', pid=os.getpid())\n"
    ),
    "broken_app.py": (
        "from flask import Flask\n"
        "import not_installed_model_lib  # deliberately missing\n"
        "app = Flask(__name__)\n"
    ),
}


def find_examples(directory: Optional[str] = None) -> Optional[str]:
    """The ``examples/`` directory holding ``hello_app.py`` and ``broken_app.py``, if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [directory] if directory else [
        os.path.join(os.path.dirname(here), "examples"),
        os.path.join(os.getcwd(), "examples"),
    ]
    for candidate in candidates:
        if candidate and all(os.path.isfile(os.path.join(candidate, name))
                             for name in _FALLBACK_APPS):
            return os.path.abspath(candidate)
    if directory:
        raise ValueError("examples directory %r has no hello_app.py and broken_app.py"
                         % directory)
    return None


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def _relative(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def run_demo(out: Optional[TextIO] = None, examples_dir: Optional[str] = None,
             start_method: Optional[str] = None) -> int:
    """Run the demo, narrating to ``out``; returns the exit code (0: all went as shown)."""
    from . import DependencyError, FlaskHost, HostError
    from .testing import EventRecorder, kill_child

    out = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    with _console_logging(out) as handler, \
            tempfile.TemporaryDirectory(prefix="pyhost-demo-") as scratch:
        examples = find_examples(examples_dir)
        if examples is None:
            for name, source in _FALLBACK_APPS.items():
                with open(os.path.join(scratch, name), "w") as handle:
                    handle.write(source)
            examples = scratch
        hello = "%s:app" % _relative(os.path.join(examples, "hello_app.py"))
        broken = "%s:app" % _relative(os.path.join(examples, "broken_app.py"))

        events = EventRecorder()

        say("== 1. Host the example app on a free port")
        say("   FlaskHost(%r, port=0)" % hello)
        host = FlaskHost(hello, port=0, restart_delay=0.5, start_method=start_method,
                         on_event=events)
        try:
            began = time.perf_counter()
            try:
                host.start()
            except HostError as exc:
                say("❌ The example app did not start: %s" % exc.type.value)
                say(exc.describe())
                return 1
            ready_ms = (time.perf_counter() - began) * 1000
            say("   ready in %.0f ms at %s (pid %s, start method %s)"
                % (ready_ms, host.url, host.pid, host.config.resolved_start_method))
            say("   GET / -> %s" % json.dumps(_get("%s/" % host.url)))
            say("   status: %s" % host.status().summary())
            say()

            say("== 2. Kill the app process and watch pyhost restart it")
            mark = events.mark()
            say("   kill -KILL %s" % host.pid)
            kill_child(host)
            try:
                outcome = events.wait_for(("restarted", "gave_up"), RESTART_WAIT, after=mark)
            except TimeoutError as exc:
                outcome = None
                say("❌ %s" % exc)
            if outcome is None or outcome.name != "restarted":
                say("❌ No automatic restart: %s" % host.status().summary())
                return 1
            crash = events.wait_for("crashed", 0, after=mark).error
            if crash is not None:
                how = ("killed by %s" % crash.signal if crash.signal
                       else "exit code %s" % crash.exit_code)
                say("   recorded: %s (%s)" % (crash.type.value, how))
            status = host.status()
            body = _get("%s/" % host.url)
            say("   restarted: new pid %s on the same URL, GET / answered from pid %s"
                % (status.pid, body.get("pid")))
            say("   status: %s" % status.summary())
            say("   status.to_dict(): %s" % json.dumps(
                {key: status.to_dict()[key] for key in
                 ("state", "is_ready", "total_restarts", "pid", "port", "url")}))
            say()

            say("== 3. Host an app whose dependency is missing")
            say("   FlaskHost(%r, port=0)" % broken)
            began = time.perf_counter()
            # The demo narrates this failure itself; pyhost's own ❌ log would repeat it.
            handler.setLevel(logging.CRITICAL + 1)
            try:
                FlaskHost(broken, port=0, start_method=start_method).start()
            except DependencyError as exc:
                took = (time.perf_counter() - began) * 1000
                say("   raised %s (%s) in %.0f ms, without waiting for a health check"
                    % (type(exc).__name__, exc.type.value, took))
                say("   message: %s" % exc.message)
                say("   missing module: %s" % exc.missing_module)
                say("   troubleshooting:")
                for number, step in enumerate(exc.troubleshooting, 1):
                    say("     %d. %s" % (number, step))
                if exc.stderr_tail:
                    say("   the app's last output line: %s" % exc.stderr_tail[-1].strip())
            except HostError as exc:
                say("❌ Expected a DependencyError, got %s: %s" % (exc.type.value, exc))
                return 1
            else:
                say("❌ The broken example app started; expected a DependencyError")
                return 1
            finally:
                handler.setLevel(logging.NOTSET)
            say()

            say("== 4. Stop")
            last_pid = host.pid
        finally:
            host.stop()
        say("   %s; app process %s %s" % (host.status().state.value, last_pid,
                                         "is gone" if not _alive(last_pid) else "IS STILL RUNNING"))
        say("✓ Demo finished: ready in %.0f ms, restarted after SIGKILL, typed error shown."
            % ready_ms)
    return 0


@contextlib.contextmanager
def _console_logging(stream: TextIO) -> Iterator[logging.Handler]:
    """``[pyhost]`` lines on the demo's stream, removed again afterwards."""
    from .logs import ConsoleHandler, enable_console_logging, log

    existing = [h for h in log.handlers if isinstance(h, ConsoleHandler)]
    for old in existing:
        log.removeHandler(old)
    level = log.level
    handler = enable_console_logging(stream=stream)
    assert handler is not None
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        for old in existing:
            log.addHandler(old)


def _alive(pid: Optional[int]) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def main() -> int:
    """``python -m pyhost.demo``: the demo with default settings."""
    return run_demo()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
