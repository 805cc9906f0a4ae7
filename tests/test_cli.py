"""The ``pyhost`` command, run as users run it: in a subprocess."""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import psutil
import pytest
from conftest import wait_until

from pyhost.cli import EXIT_CODES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SCRIPT = os.path.join(os.path.dirname(sys.executable), "pyhost")
COMMAND = [SCRIPT] if os.path.exists(SCRIPT) else [sys.executable, "-m", "pyhost"]

APP = """\
import os
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return os.environ.get("GREETING", "hello")
"""


def clean_env(**extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYHOST_")}
    env["PYHOST_SKIP_DOTENV"] = "1"
    env.update(extra)
    return env


class Running:
    """A ``pyhost`` process whose merged output is read line by line as it comes."""

    def __init__(self, args, cwd, env=None):
        # Its own session, so a test can send Ctrl+C to the whole process group
        # as a terminal does.
        self.proc = subprocess.Popen(COMMAND + list(args), cwd=str(cwd), env=env or clean_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                                     start_new_session=True)
        self.lines = []
        self._queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="test-cli-reader", daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern, timeout=30.0):
        """The first match of ``pattern`` in a line not yet consumed, else fail."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(0.0, remaining))
            except queue.Empty:
                line = None
                remaining = 0
            if line is None:
                if remaining <= 0 or self.proc.poll() is not None:
                    pytest.fail("no line matching %r within %.0fs; output:\n%s"
                                % (pattern, timeout, "\n".join(self.lines)))
                continue
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def finish(self, timeout=30.0):
        code = self.proc.wait(timeout)
        self._reader.join(5)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return code

    @property
    def output(self):
        return "\n".join(self.lines)

    def cleanup(self):
        if self.proc.poll() is None:
            try:
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    child.kill()
            except psutil.NoSuchProcess:
                pass
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()


@pytest.fixture
def launch():
    started = []

    def run(*args, cwd, env=None):
        process = Running(args, cwd, env)
        started.append(process)
        return process

    yield run
    for process in started:
        process.cleanup()


def pyhost(*args, cwd, env=None, timeout=60):
    done = subprocess.run(COMMAND + list(args), cwd=str(cwd), env=env or clean_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def app_dir(tmp_path):
    (tmp_path / "myapp.py").write_text(APP)
    return tmp_path


# ----------------------------------------------------------------- help, version
def test_version_and_help_document_every_exit_code(tmp_path):
    code, out, _ = pyhost("--version", cwd=tmp_path)
    assert code == 0 and re.match(r"pyhost \d+\.\d+", out)
    module = subprocess.run([sys.executable, "-m", "pyhost", "--version"], capture_output=True,
                            text=True, timeout=60)
    assert module.returncode == 0 and module.stdout == out  # python -m pyhost is the same
    code, out, _ = pyhost("--help", cwd=tmp_path)
    assert code == 0
    for name, number in EXIT_CODES.items():
        assert re.search(r"^\s+%d\s+%s$" % (number, name), out, re.M), name
    assert "pyhost run myapp:app" in out and "pyhost check" in out
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    assert not {0, 1, 2} & set(EXIT_CODES.values())


def test_bad_option_values_are_usage_errors_naming_the_field(tmp_path):
    code, _, err = pyhost("run", "myapp:app", "--port", "70000", cwd=tmp_path)
    assert code == 2 and "HostConfig.port" in err
    code, _, err = pyhost("check", "myapp:app", cwd=tmp_path,
                          env=clean_env(PYHOST_STARTUP_TIMEOUT="soon"))
    assert code == 2 and "PYHOST_STARTUP_TIMEOUT" in err
    code, _, err = pyhost("run", "my app:app", cwd=tmp_path)
    assert code == 2 and "not a module name" in err


# ----------------------------------------------------------------------------- run
def test_run_serves_restarts_after_a_kill_and_stops_gracefully_on_ctrl_c(app_dir, launch):
    cli = launch("run", "myapp:app", "--port", "0", "--restart-delay", "0.1", cwd=app_dir)
    serving = cli.wait_for(r"Serving myapp:app at (http://\S+) \(pid (\d+)\)")
    url, first_pid = serving.group(1), int(serving.group(2))
    assert get(url + "/") == "hello"
    cli.wait_for(r'^\[myapp:app\] .*"GET / HTTP/1\.1" 200')  # the app's own output is shown

    os.kill(first_pid, signal.SIGKILL)
    cli.wait_for(r"❌ .*pid %d.*SIGKILL" % first_pid)
    cli.wait_for(r"↻ Attempting automatic restart \(1/3\)")
    second_pid = int(cli.wait_for(r"✓ myapp:app restarted successfully \(pid (\d+)\)").group(1))
    assert second_pid != first_pid
    assert get(url + "/") == "hello"  # the same URL after the restart

    os.killpg(cli.proc.pid, signal.SIGINT)  # Ctrl+C: the whole process group gets SIGINT
    assert cli.finish() == 0, cli.output
    # "stopped": the app finished over the pipe; not terminated or killed by the Ctrl+C.
    assert re.search(r"✓ Stopped myapp:app \(pid %d, stopped\)" % second_pid, cli.output)
    assert wait_until(lambda: gone(first_pid) and gone(second_pid), timeout=10)


def test_run_reads_dotenv_and_pyhost_env_and_stops_on_sigterm(app_dir, launch):
    pytest.importorskip("dotenv")
    (app_dir / ".env").write_text("PYHOST_PORT=0\nGREETING=from-dotenv\n")
    env = clean_env()
    del env["PYHOST_SKIP_DOTENV"]
    cli = launch("run", "myapp:app", "--quiet", cwd=app_dir, env=env)  # no --port: .env says 0
    serving = cli.wait_for(r"Serving myapp:app at (http://\S+) \(pid (\d+)\)")
    assert get(serving.group(1) + "/") == "from-dotenv"
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.finish() == 0, cli.output
    assert "Stopped myapp:app" in cli.output
    assert "[myapp:app]" not in cli.output  # --quiet hides the app's output lines
    assert wait_until(lambda: gone(int(serving.group(2))), timeout=10)


def test_run_missing_dependency_prints_the_typed_error_and_exits_5(tmp_path):
    code, out, err = pyhost("run", os.path.join(EXAMPLES, "broken_app.py") + ":app",
                            "--port", "0", cwd=tmp_path)
    assert code == EXIT_CODES["DEPENDENCY_ERROR"] == 5, err
    assert "Error type: DEPENDENCY_ERROR (exit code 5)" in err
    assert "no module named 'not_installed_model_lib'" in err
    assert "Troubleshooting:" in err and "pip install not-installed-model-lib" in err
    assert "ModuleNotFoundError" in err  # the app's own output tail
    assert err.count("Troubleshooting:") == 1  # printed once, not once per layer


def test_run_port_in_use_exits_6(app_dir):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, _, err = pyhost("run", "myapp:app", "--port", str(port), cwd=app_dir)
    assert code == EXIT_CODES["PORT_IN_USE"] == 6, err
    assert "PORT_IN_USE" in err and "Port %d is already in use" % port in err
    assert "kill %d" % os.getpid() in err  # the holder is named


def test_run_without_restart_exits_with_the_crash(app_dir, launch):
    cli = launch("run", "myapp:app", "--port", "0", "--no-restart", cwd=app_dir)
    pid = int(cli.wait_for(r"Serving myapp:app at \S+ \(pid (\d+)\)").group(1))
    os.kill(pid, signal.SIGKILL)
    assert cli.finish() == EXIT_CODES["PROCESS_CRASH"] == 8, cli.output
    assert "Error type: PROCESS_CRASH (exit code 8)" in cli.output
    assert "SIGKILL" in cli.output
    assert "↻" not in cli.output  # --no-restart: no restart attempt


def test_run_gives_up_after_the_restart_budget_and_exits_with_the_crash(tmp_path):
    (tmp_path / "dying.py").write_text(
        "import os, threading\n"
        "from flask import Flask\n"
        "app = Flask(__name__)\n"
        "threading.Timer(0.5, os._exit, (1,)).start()  # every app process dies after 0.5 s\n")
    code, _, err = pyhost("run", "dying:app", "--port", "0", "--max-restarts", "1",
                          "--restart-delay", "0.05", cwd=tmp_path)
    assert code == EXIT_CODES["PROCESS_CRASH"], err
    assert "↻ Attempting automatic restart (1/1)" in err
    assert "(2/1)" not in err  # a circuit breaker, not a loop
    assert "Gave up on dying:app after 1 restart attempts" in err
    assert "Error type: PROCESS_CRASH (exit code 8)" in err


def test_run_shows_the_apps_output_once_when_it_fails(tmp_path):
    # pyhost run shows the app's output live; the error block must not repeat it.
    (tmp_path / "loud.py").write_text(
        "print('loud-marker: connecting', flush=True)\n"
        "raise RuntimeError('no database')\n")
    code, _, err = pyhost("run", "loud:app", "--port", "0", cwd=tmp_path)
    assert code == EXIT_CODES["APP_LOAD_ERROR"], err
    assert "RuntimeError: no database" in err
    assert err.count("loud-marker: connecting") == 1, err
    assert "Recent output from the app" not in err
    code, _, err = pyhost("run", "loud:app", "--port", "0", "--quiet", cwd=tmp_path)
    assert code == EXIT_CODES["APP_LOAD_ERROR"], err
    assert err.count("loud-marker: connecting") == 1, err  # --quiet: only in the error block
    assert "Recent output from the app" in err


# --------------------------------------------------------------------------- check
def test_check_passes_for_a_good_app(tmp_path):
    code, out, _ = pyhost("check", os.path.join(EXAMPLES, "hello_app.py") + ":app",
                          "--port", "0", "--requires", "flask", cwd=tmp_path)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("✓ Python") and sys.version.split()[0] in lines[0]
    assert lines[1] == "✓ Module     flask"
    assert lines[2].startswith("✓ App import loaded in a child process (pid ")
    assert re.match(r"✓ Port +127\.0\.0\.1:0 bound \(picked \d+\)", lines[3])
    assert re.match(r"✓ HTTP +GET / answered HTTP 200", lines[4])
    assert lines[-1].endswith("would start.")


def test_check_names_the_missing_dependency_and_exits_5(tmp_path):
    code, out, err = pyhost("check", os.path.join(EXAMPLES, "broken_app.py") + ":app",
                            "--port", "0", cwd=tmp_path)
    assert code == 5, out + err
    assert re.search(r"^❌ App import Missing dependency: no module named "
                     r"'not_installed_model_lib'", out, re.M)
    assert "pip install not-installed-model-lib" in out
    assert re.search(r"^– HTTP +not checked", out, re.M)
    assert "would not start: DEPENDENCY_ERROR (exit code 5)" in out
    assert err == ""  # the library's log records stay off the terminal


def test_ctrl_c_during_check_shows_the_checks_that_finished(tmp_path, launch):
    marker = tmp_path / "importing"
    (tmp_path / "slowapp.py").write_text(
        "import pathlib, time\npathlib.Path(%r).write_text('now')\ntime.sleep(120)\n"
        "from flask import Flask\napp = Flask(__name__)\n" % str(marker))
    cli = launch("check", "slowapp:app", "--startup-timeout", "120", cwd=tmp_path)
    assert wait_until(marker.exists, timeout=30), "the app import never began"
    os.killpg(cli.proc.pid, signal.SIGINT)
    assert cli.finish() == 130, cli.output
    assert re.search(r"^✓ Python ", cli.output, re.M), cli.output  # finished before Ctrl+C
    assert "Interrupted (Ctrl+C)" in cli.output
    assert "would start" not in cli.output and "Traceback" not in cli.output


def test_check_json_reports_a_taken_port_but_still_checks_the_import(app_dir):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, out, _ = pyhost("check", "myapp:app", "--port", str(port), "--json", cwd=app_dir)
    assert code == 6
    report = json.loads(out)
    assert report["ok"] is False and report["exit_code"] == 6
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["port"]["ok"] is False
    assert checks["port"]["error"]["type"] == "PORT_IN_USE"
    assert checks["import"]["ok"] is True and checks["http"]["ok"] is True


def test_check_an_address_not_on_this_machine_leaves_the_import_unchecked(app_dir):
    # 192.0.2.1 (TEST-NET-1) is never a local address: the bind fails on any port, and
    # the app process binds before it imports, so the import was not tried.
    code, out, _ = pyhost("check", "myapp:app", "--host", "192.0.2.1", cwd=app_dir)
    assert code == EXIT_CODES["NETWORK_ERROR"], out
    assert re.search(r"^– App import +not checked: no port could be bound either "
                     r"\(Cannot bind 192\.0\.2\.1:0", out, re.M), out
    assert re.search(r"^❌ Port +Cannot bind 192\.0\.2\.1:5001", out, re.M)
    assert re.search(r"^– HTTP +not checked", out, re.M)
    assert "❌ App import" not in out
    assert "would not start: NETWORK_ERROR" in out


def test_check_missing_interpreter_and_modules(app_dir):
    code, out, _ = pyhost("check", "myapp:app", "--python", "/nonexistent/python3", "--json",
                          cwd=app_dir)
    assert code == EXIT_CODES["PYTHON_NOT_FOUND"] == 3
    checks = json.loads(out)["checks"]
    assert checks[0]["name"] == "python" and checks[0]["ok"] is False
    assert all(check["ok"] is None for check in checks[1:])

    code, out, _ = pyhost("check", "myapp:app", "--port", "0", "--requires",
                          "flask,no_such_module_here", cwd=app_dir)
    assert code == 5
    assert "✓ Module     flask" in out
    assert "❌ Module     no_such_module_here" in out
    assert "pip install no-such-module-here" in out
    assert "✓ App import" in out  # the app itself loads; only the requirement is missing


def test_check_another_interpreter_without_werkzeug(app_dir, tmp_path):
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True,
                   timeout=120)
    python = bare / ("Scripts" if os.name == "nt" else "bin") / "python"
    code, out, _ = pyhost("check", "myapp:app", "--port", "0", "--python", str(python),
                          cwd=app_dir)
    assert code == 5, out
    assert re.search(r"^✓ Python +%s" % re.escape(str(python)), out, re.M)
    assert re.search(r"^❌ Module +werkzeug: ModuleNotFoundError", out, re.M)
    assert "%s -m pip install werkzeug" % python in out
    assert re.search(r"^– App import +not checked", out, re.M)  # reported once, above


# ---------------------------------------------------------------------------- demo
def test_demo_shows_ready_restart_and_typed_error(tmp_path):
    code, out, err = pyhost("demo", cwd=tmp_path, timeout=120)
    assert code == 0, out + err
    assert re.search(r"ready in \d+ ms at http://127\.0\.0\.1:\d+", out)
    assert re.search(r"status: READY · http://", out)
    assert re.search(r"↻ Attempting automatic restart \(1/3\)", out)
    assert re.search(r"restarted: new pid \d+ on the same URL", out)
    assert "recorded: PROCESS_CRASH (killed by SIGKILL)" in out
    assert "raised DependencyError (DEPENDENCY_ERROR)" in out
    assert "pip install not-installed-model-lib" in out
    assert re.search(r"STOPPED; app process \d+ is gone", out)


def test_demo_without_a_source_tree_uses_its_own_copies_of_the_apps(monkeypatch, tmp_path):
    """An installed pyhost has no examples/ directory: the demo still runs."""
    import io
    import logging

    from pyhost import demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "find_examples", lambda directory=None: None)
    handlers = list(logging.getLogger("pyhost").handlers)
    out = io.StringIO()
    assert demo.run_demo(out) == 0, out.getvalue()
    text = out.getvalue()
    assert re.search(r"FlaskHost\('/\S+/pyhost-demo-\w+/hello_app\.py:app'", text)
    assert "restarted: new pid" in text and "raised DependencyError" in text
    assert logging.getLogger("pyhost").handlers == handlers  # its console handler is removed


# -------------------------------------------------------- the README's first command
def _readme_first_command():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    # The first command of the first set-up block (the README opens with the install line).
    block = next(block for block in re.findall(r"```bash\n(.*?)```", text, re.S)
                 if "python3 -m venv" in block)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    return commands[0]


@pytest.mark.slow
def test_readme_first_command_from_a_fresh_clone(tmp_path):
    """The README's demo command, verbatim, in a fresh clone of HEAD (about a minute)."""
    command = _readme_first_command()
    assert "examples/demo.py" in command
    python = shutil.which("python3")
    if python is None:
        pytest.skip("no python3 on PATH")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=120)
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
           and not key.startswith("PYHOST_")}
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep)
        if not part.startswith(os.path.dirname(sys.executable)))
    done = subprocess.run(["bash", "-c", command], cwd=str(clone), env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"ready in \d+ ms", done.stdout)
    assert "restarted: new pid" in done.stdout
    assert "raised DependencyError" in done.stdout
    assert "Demo finished" in done.stdout


def test_check_json_into_a_closed_pipe_ends_quietly(app_dir):
    proc = subprocess.Popen(COMMAND + ["check", "myapp:app", "--port", "0", "--json"],
                            cwd=app_dir, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # like `| head -1` that has already left
    _, err = proc.communicate(timeout=60)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert proc.returncode == 0
