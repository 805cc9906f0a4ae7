"""The process layer: failed launches leave nothing behind and say why; output lines."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import TESTS, fd_count, pyhost_threads

from pyhost import FlaskHost, HostState, SpawnError
from pyhost.output import OutputBuffer
from pyhost.process import ChildProcess


def test_output_lines_are_kept_without_terminal_colour_codes():
    buffer = OutputBuffer(10)
    buffer.feed(b'\x1b[31m"GET /x HTTP/1.1" 500 -\x1b[0m\npartial')
    assert buffer.tail() == ['"GET /x HTTP/1.1" 500 -', "partial"]  # still being written
    buffer.flush()
    assert buffer.tail(1) == ["partial"]


def test_output_tail_keeps_the_configured_number_of_lines():
    buffer = OutputBuffer(3)
    buffer.feed(b"".join(b"line %d\n" % i for i in range(10)))
    assert buffer.tail() == ["line 7", "line 8", "line 9"]
    assert len(buffer.tail(100)) == 10


def test_a_launch_that_fails_is_a_spawn_error_and_leaves_no_thread_or_fd(monkeypatch):
    with FlaskHost("apps.hello:app", port=0):
        pass  # the forkserver and its fds exist before counting
    before = fd_count()

    def refuse(self):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ChildProcess, "_start_mp", refuse)
    host = FlaskHost("apps.hello:app", port=0)
    with pytest.raises(SpawnError) as caught:
        host.start()
    assert "Resource temporarily unavailable" in caught.value.message
    assert caught.value.troubleshooting
    assert host.state is HostState.FAILED
    assert pyhost_threads() == []
    assert fd_count() == before


UNGUARDED = """
import sys
sys.path.insert(0, %r)
from pyhost import FlaskHost
FlaskHost("apps.hello:app", port=0, restart_delay=0.2).start()  # no __main__ guard
"""


def test_a_program_read_from_stdin_is_refused_before_any_process_starts():
    script = ("import sys\nsys.path.insert(0, %r)\nfrom pyhost import FlaskHost, SpawnError\n"
              "try:\n    FlaskHost('apps.hello:app', port=0).start()\n"
              "except SpawnError as exc:\n    print('refused:', exc.message)\n") % TESTS
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                          timeout=60)
    assert "refused: this program's __main__ ('<stdin>') is not a file" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr  # no child ever ran


def test_a_child_dying_while_reimporting_main_is_a_spawn_error_not_retried(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED % TESTS)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, cwd=str(tmp_path))
    assert done.returncode == 1
    assert "pyhost.errors.SpawnError: The child for apps.hello:app" in done.stderr, done.stderr
    assert "before pyhost's code ran in it" in done.stderr
    assert "re-imports this program's __main__ module" in done.stderr
    assert "if __name__ == '__main__'" in done.stderr  # the troubleshooting step
    assert "Attempting automatic restart" not in done.stderr


GUARDED = """
import sys, urllib.request
sys.path.insert(0, %r)
from flask import Flask
from pyhost import FlaskHost, AppNotFound

if __name__ == "__main__":
    def create_app():  # under the guard: the child cannot find it by name
        app = Flask("guarded")
        app.route("/")(lambda: "guarded factory")
        return app

    app = Flask(__name__)  # under the guard too
    with FlaskHost(create_app, port=0, start_method=sys.argv[1]) as host:
        print("served:", urllib.request.urlopen(host.url).read().decode())
    try:
        FlaskHost(app, port=0, start_method=sys.argv[1], auto_restart=False).start()
    except AppNotFound as exc:
        print("refused:", exc.message)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_factory_defined_under_the_main_guard_is_shipped_by_value(tmp_path, method):
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED % TESTS)
    done = subprocess.run([sys.executable, str(script), method], capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path))
    assert "served: guarded factory" in done.stdout, done.stderr
    assert "refused:" in done.stdout and "`if __name__ == '__main__':` block" in done.stdout
