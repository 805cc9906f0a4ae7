"""No orphans: the child exits by itself when the parent dies, under every start method.

Part of the reliability suite (docs/reliability.md): the forkserver and the
resource tracker are checked as well as the app's process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import TESTS, alive, wait_until

PARENT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import psutil
from pyhost import FlaskHost
host = FlaskHost("apps.hello:app", port=0, start_method=sys.argv[2]).start()
print(host.pid, flush=True)
# Every process this one started: the child, and under forkserver and spawn
# multiprocessing's forkserver and resource tracker.
print(" ".join(str(p.pid) for p in psutil.Process().children(recursive=True)), flush=True)
sys.stdin.read()  # wait until killed
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_child_exits_when_the_parent_dies(method, how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, TESTS, method],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        started = [int(pid) for pid in parent.stdout.readline().split()]
        assert alive(child_pid) and child_pid in started
        if method != "fork":
            assert len(started) >= 2, "expected the forkserver or resource tracker too"
        os.kill(parent.pid, how)  # no atexit, no stop(): only the child's own watch helps
        parent.wait(10)
        assert wait_until(lambda: not alive(child_pid), 10), "child %d orphaned" % child_pid
        # multiprocessing's helpers end too (EOF on their pipe from the dead parent).
        left = wait_until(lambda: not [pid for pid in started if alive(pid)], 10)
        assert left, "orphaned: %r" % [pid for pid in started if alive(pid)]
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        parent.stdin.close()


def test_interpreter_exit_stops_running_hosts():
    """A host the program forgot to stop is stopped gracefully by atexit."""
    code = PARENT.replace("sys.stdin.read()  # wait until killed", "sys.stdin.readline()")
    parent = subprocess.Popen([sys.executable, "-c", code, TESTS, "forkserver"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    _, err = parent.communicate("\n", timeout=20)
    assert parent.returncode == 0, err
    assert wait_until(lambda: not alive(child_pid), 5)


EXIT_EVENTS = r"""
import sys
sys.path.insert(0, sys.argv[1])
from pyhost import FlaskHost
host = FlaskHost("apps.hello:app", port=0, restart_delay=0,
                 on_event=lambda event: print("event", event.name, flush=True))
host.start()
print("pid", host.pid, flush=True)
# the script ends here without stop(): atexit must stop the host gracefully
"""


def test_interpreter_exit_stops_hosts_before_multiprocessing_terminates_children():
    """multiprocessing's exit handler SIGTERMs daemonic children; pyhost's must run first."""
    for _ in range(3):  # the race showed up in about 1 run in 4
        done = subprocess.run([sys.executable, "-c", EXIT_EVENTS, TESTS], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        events = [line.split()[1] for line in done.stdout.splitlines()
                  if line.startswith("event")]
        assert events == ["started", "ready", "stopped"], (events, done.stderr)
        assert "unexpectedly" not in done.stderr
        pid = int(next(line.split()[1] for line in done.stdout.splitlines()
                       if line.startswith("pid")))
        assert wait_until(lambda pid=pid: not alive(pid), 5)
