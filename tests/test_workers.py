"""workers > 1: gunicorn's arbiter runs the workers; pyhost supervises the arbiter."""
from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest
from conftest import alive, wait_until
from conftest import http_get as get

from pyhost import FlaskHost, HostConfig
from pyhost.testing import EventRecorder


def full_worker_list(host, count):
    """``status().workers`` once it lists ``count`` live worker pids."""
    def ready():
        pids = host.status().workers
        return pids if len(pids) == count and all(alive(pid) for pid in pids) else None
    return wait_until(ready, 20)


def test_workers_share_the_port_and_stop_together():
    with FlaskHost("apps.hello:app", port=0, server="gunicorn", workers=3,
                   shutdown_timeout=4) as host:
        workers = full_worker_list(host, 3)
        assert workers
        assert set(workers) == {p.pid for p in psutil.Process(host.pid).children()}
        seen = set()
        assert wait_until(lambda: seen.add(int(get(host.url + "/pid"))) or len(seen) >= 2, 20)
        assert seen <= set(workers)
        group = {host.pid, *workers}
    assert wait_until(lambda: not any(alive(pid) for pid in group), 10)


def test_a_killed_worker_is_replaced_by_gunicorn_while_the_others_serve():
    recorder = EventRecorder()
    failures = []
    stop_load = threading.Event()
    with FlaskHost("apps.hello:app", port=0, server="gunicorn", workers=2,
                   on_event=recorder) as host:
        arbiter = host.pid
        victim, survivor = full_worker_list(host, 2)

        def load():
            while not stop_load.is_set():
                try:
                    assert get(host.url + "/") == "hello"
                except Exception as exc:  # noqa: BLE001 - counted, not raised in a thread
                    failures.append(exc)

        client = threading.Thread(target=load)
        client.start()
        try:
            os.kill(victim, signal.SIGKILL)
            exited = recorder.wait_for("worker_exited", 20)
            assert exited.data["pid"] == victim and exited.data["exitcode"] == -signal.SIGKILL
            replaced = wait_until(lambda: (lambda pids: len(pids) == 2 and victim not in pids
                                           and survivor in pids)(host.status().workers), 20)
            assert replaced
        finally:
            stop_load.set()
            client.join(20)
        # gunicorn replaced it: the arbiter (pyhost's child) was never restarted.
        assert host.pid == arbiter and "restarted" not in recorder.names()
        assert host.status().to_dict()["workers"] == list(host.status().workers)
        # At most the request the killed worker was serving failed.
        assert len(failures) <= 1, failures
        assert any("worker pid %d exited" % victim in line or str(victim) in line
                   for line in host.logs(200))


def test_asgi_workers_run_on_uvicorns_worker_class_under_gunicorn():
    with FlaskHost("apps.asgi_apps:fastapi_app", port=0, server="uvicorn", workers=2) as host:
        workers = full_worker_list(host, 2)
        seen = set()
        import json

        assert wait_until(lambda: seen.add(json.loads(get(host.url + "/"))["pid"])
                          or len(seen) >= 2, 20)
        assert seen <= set(workers)


@pytest.mark.parametrize("fields, word", [({"workers": 0}, "workers"),
                                          ({"workers": 2, "debug": True}, "workers")])
def test_bad_worker_settings_are_refused(fields, word):
    with pytest.raises(ValueError, match=word):
        HostConfig(**fields)


GUNICORN_PARENT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from pyhost import FlaskHost
from conftest import wait_until
host = FlaskHost("apps.hello:app", port=0, server="gunicorn", workers=2).start()
wait_until(lambda: len(host.status().workers) == 2, 20)
print(host.pid, *host.status().workers, flush=True)
sys.stdin.read()  # wait until killed
"""


def test_arbiter_and_workers_exit_when_the_parent_dies():
    import subprocess
    import sys

    from conftest import TESTS

    parent = subprocess.Popen([sys.executable, "-c", GUNICORN_PARENT, TESTS],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_until(lambda: not any(alive(pid) for pid in pids), 10), pids
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        parent.stdin.close()
