"""A library is quiet unless asked; development mode shows the app's output live, once."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from conftest import TESTS

PRELUDE = "import sys; sys.path.insert(0, %r)\n" % TESTS


def run_script(tmp_path, body: str, name: str = "script.py", env=None, timeout: float = 90):
    path = tmp_path / name
    path.write_text(PRELUDE + textwrap.dedent(body))
    environ = dict(os.environ, **(env or {}))
    environ.pop("FLASK_DEBUG", None)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=str(tmp_path), env=environ, timeout=timeout)


def test_errors_the_caller_handles_print_nothing(tmp_path):
    done = run_script(tmp_path, """
        import os, signal, time
        import pyhost
        if __name__ == "__main__":
            try:
                pyhost.FlaskHost("apps.missing_dep:app", port=0).start()
            except pyhost.DependencyError:
                pass
            # A crash and a restart log WARNING and ERROR records: no handler, no print.
            with pyhost.FlaskHost("apps.hello:app", port=0, restart_delay=0.1) as host:
                first = host.pid
                os.kill(first, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while not (host.is_ready() and host.pid not in (None, first)):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            print("done")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == ""


def test_a_script_without_the_main_guard_under_spawn_says_so_briefly(tmp_path):
    done = run_script(tmp_path, """
        import pyhost
        host = pyhost.FlaskHost("apps.hello:app", port=0, start_method="spawn").start()
        host.stop()
    """)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) < 40, done.stderr  # 0.1.0 printed about 150
    assert "pyhost: this program starts a host while a spawn child re-imports" in lines[0]
    assert "if __name__ == '__main__'" in lines[-1]  # the parent's error says what to do
    assert done.stderr.count("bootstrapping phase") == 0


def test_development_mode_shows_the_apps_output_live_and_logs_keep_up(tmp_path):
    done = run_script(tmp_path, """
        import threading, urllib.request
        import pyhost

        def burn():  # busy threads: pyhost's reader thread waits for the GIL
            while True:
                sum(range(1000))

        if __name__ == "__main__":
            with pyhost.FlaskHost("apps.hello:app", port=0, is_development=True,
                                  name="myapp") as host:
                for _ in range(3):
                    threading.Thread(target=burn, daemon=True).start()
                for number in range(30):
                    urllib.request.urlopen(host.url_for("/?n=%d" % number)).read()
                    # The response has arrived: its log line must be in logs() now.
                    assert any("/?n=%d " % number in line for line in host.logs(5)), number
            print("done")
    """)
    assert done.returncode == 0, done.stderr
    shown = [line for line in done.stderr.splitlines() if line.startswith("[myapp] ")]
    assert len([line for line in shown if '"GET /?n=' in line]) == 30
    assert '"GET /?n=29 HTTP/1.1" 200' in shown[-1]


def test_not_in_development_mode_the_apps_output_is_not_shown(tmp_path):
    done = run_script(tmp_path, """
        import logging, urllib.request
        import pyhost
        if __name__ == "__main__":
            logging.basicConfig(level=logging.INFO)
            with pyhost.FlaskHost("apps.hello:app", port=0, is_development=False,
                                  name="myapp") as host:
                urllib.request.urlopen(host.url).read()
    """)
    assert done.returncode == 0, done.stderr
    assert "[myapp] " not in done.stderr
    assert "GET / HTTP" not in done.stderr


def test_development_mode_reports_a_failure_once(tmp_path):
    done = run_script(tmp_path, """
        import pyhost
        if __name__ == "__main__":
            try:
                pyhost.FlaskHost("apps.raises_at_import:app", port=0, is_development=True,
                                 name="myapp").start()
            except pyhost.AppLoadError:
                print("caught")
    """, env={"FLASK_DEBUG": ""})
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert err.count("Traceback (most recent call last)") == 1  # live, with the prefix
    assert "[myapp] Traceback (most recent call last)" in err
    assert err.count("❌") == 1
    assert "Recent output from the app" not in err


def test_under_pytest_development_mode_output_shows_once(tmp_path):
    """pytest captures log records itself: no console handler shows them again."""
    (tmp_path / "test_app.py").write_text(PRELUDE + textwrap.dedent("""
        import urllib.request
        from pyhost import FlaskHost

        def test_fails():
            with FlaskHost("apps.hello:app", port=0, is_development=True, name="myapp") as h:
                urllib.request.urlopen(h.url_for("/unique-path")).read()
            assert False, "fail, to get the captured output in the report"
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_app.py"], capture_output=True, text=True, cwd=str(tmp_path),
                          timeout=120)
    assert "1 failed" in done.stdout, done.stdout
    assert done.stdout.count('"GET /unique-path HTTP/1.1" 404') == 1, done.stdout
    assert done.stdout.count("myapp ready at") == 1, done.stdout
