"""``pyhost run`` as users run it: generated options, usage errors, a second Ctrl+C."""
from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.request

import psutil
import pytest
from conftest import wait_until
from test_cli import clean_env, gone, launch, pyhost  # noqa: F401 - launch is a fixture

from pyhost import fields
from pyhost.cli import build_parser, options_reference
from pyhost.config import HostConfig

STUBBORN_APP = """\
import signal
import time

from flask import Flask

# Ignores SIGTERM, and a request that never ends holds up the graceful stop:
# only SIGKILL ends this app before shutdown_timeout.
signal.signal(signal.SIGTERM, signal.SIG_IGN)
app = Flask(__name__)


@app.route("/")
def index():
    return "stubborn"


@app.route("/hang")
def hang():
    open("hanging", "w").close()  # tells the test the request is in flight
    time.sleep(3600)
    return "never"
"""


def _options(command):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    return {option: action for action in sub._actions for option in action.option_strings}


def test_every_flag_in_the_field_metadata_is_an_option_of_its_commands():
    for field in fields.settings(HostConfig):
        meta = field.metadata
        for command in ("run", "check"):
            options = _options(command)
            if meta["flag"] and command in meta["commands"]:
                assert meta["flag"] in options, (field.name, command)
                assert options[meta["flag"]].dest == field.name
                assert meta["help"].split(";")[0][:20].lower() in \
                    options[meta["flag"]].help.lower()
            elif meta["flag"]:
                assert meta["flag"] not in options, (field.name, command)
    run = _options("run")
    assert run["--server"].choices == ("werkzeug", "waitress", "gunicorn", "uvicorn")
    assert "--cooldown" in run and "--expose-details" in run and "--reload" in run


def test_options_reference_lists_every_command_option_and_exit_code():
    text = options_reference()
    for command in ("run", "check", "demo"):
        assert "### `pyhost %s`" % command in text
    for option in ("`--server`", "`--cooldown`", "`--expose-details`", "`--reload`",
                   "`--no-restart`", "`--port`, `-p`"):
        assert option in text, option
    assert "| 6 | `PORT_IN_USE` |" in text


def test_config_reference_has_a_row_per_field_with_env_and_flag():
    text = fields.config_reference()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(list(fields.settings(HostConfig)))
    server = next(row for row in rows if row.startswith("| `server`"))
    assert "`PYHOST_SERVER`" in server and "`--server`" in server and "`uvicorn`" in server
    env = next(row for row in rows if row.startswith("| `env`"))
    assert "–" in env.split("|")[4]  # env is not read from the environment


@pytest.mark.parametrize("args, field", [
    (["--workers", "1000000"], "HostConfig.workers"),
    (["--stderr-lines", "1000000000"], "HostConfig.stderr_lines"),
    (["--health-path", "/he alth"], "HostConfig.health_path"),
    (["--host", "127.0.0.1\x01"], "HostConfig.host"),
    (["--requires", "flask, not a module"], "HostConfig.requires"),
    (["--python", "/usr/bin/python\x07"], "HostConfig.python"),
    (["--server", "apache"], "--server"),
])
def test_invalid_input_exits_2_with_one_line_naming_the_field(tmp_path, args, field):
    code, out, err = pyhost("run", "myapp:app", *args, cwd=tmp_path)
    assert code == 2, err
    assert "Traceback" not in err
    if field is not None:
        assert field in err
    assert len(err.strip().splitlines()) <= 2  # argparse adds its one-line usage for its own errors


@pytest.mark.parametrize("target", [
    "x:" + ".".join(["a"] * 10000),
    "x:f(%r)" % ("a" * 10000),
    "os:system('touch pwned')",
    "builtins:exec('print(1)')",
])
def test_hostile_targets_exit_2_without_a_traceback_or_a_process(tmp_path, target):
    code, out, err = pyhost("run", target, "--port", "0", cwd=tmp_path)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("pyhost run: error: target")
    assert not (tmp_path / "pwned").exists()


def _get_quietly(url):
    try:
        urllib.request.urlopen(url, timeout=60).read()
    except OSError:
        pass  # the app is killed under it


def test_a_second_ctrl_c_kills_the_app_at_once(tmp_path, launch):  # noqa: F811
    (tmp_path / "stubborn.py").write_text(STUBBORN_APP)
    cli = launch("run", "stubborn:app", "--port", "0", "--shutdown-timeout", "30",
                 "--start-method", "spawn", cwd=tmp_path)
    serving = cli.wait_for(r"Serving stubborn:app at (\S+) \(pid (\d+)\)")
    url, pid = serving.group(1), int(serving.group(2))
    hanging = threading.Thread(target=_get_quietly, args=(url + "/hang",), daemon=True)
    hanging.start()
    assert wait_until(lambda: (tmp_path / "hanging").exists(), timeout=20)
    os.killpg(cli.proc.pid, signal.SIGINT)
    cli.wait_for(r"Stopping stubborn:app")
    # The graceful stop now waits for an app that will not end within 30 s ...
    time.sleep(0.5)
    assert cli.proc.poll() is None and psutil.pid_exists(pid) and not gone(pid)
    second = time.monotonic()
    os.killpg(cli.proc.pid, signal.SIGINT)
    code = cli.finish(timeout=25)
    elapsed = time.monotonic() - second
    assert code == 130, cli.output
    assert elapsed < 15, "exit took %.1fs after the second Ctrl+C (shutdown_timeout 30)" % elapsed
    assert wait_until(lambda: gone(pid), timeout=10)
    stopped = re.findall(r"Stopped stubborn:app.*", cli.output)
    assert len(stopped) == 1 and "killed" in stopped[0], cli.output
    assert "Second Ctrl+C: killing stubborn:app" in cli.output


def test_generated_options_build_the_config_over_the_environment(monkeypatch):
    from pyhost.cli import build_config

    monkeypatch.setenv("PYHOST_PORT", "0")
    monkeypatch.setenv("PYHOST_WORKERS", "2")
    args = build_parser().parse_args([
        "run", "myapp:app", "--server", "waitress", "--cooldown", "5", "--expose-details",
        "--no-restart", "-e", "A=1", "--env", "B=x=y", "--requires", "flask,flask_cors",
        "--requires", "jinja2", "--liveness-interval", "none", "-w", "3"])
    config = build_config(args)
    assert config.port == 0                                   # from the environment
    assert config.workers == 3                                # the option beats the environment
    assert (config.server, config.cooldown, config.expose_details, config.auto_restart) == \
        ("waitress", 5.0, True, False)
    assert config.env == {"A": "1", "B": "x=y"}
    assert config.requires == ("flask", "flask_cors", "jinja2")
    assert config.liveness_interval is None
    untouched = build_config(build_parser().parse_args(["run", "myapp:app"]))
    assert untouched.auto_restart is True and untouched.server == "werkzeug"
    assert untouched.liveness_interval == 10.0
