"""workers > 1: child processes sharing one listening socket, supervised as one group."""
from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest
from conftest import http_get as get
from conftest import wait_until

from pyhost import FlaskHost, HostConfig


def test_two_workers_share_the_port_and_stop_together():
    with FlaskHost("apps.hello:app", port=0, workers=3, shutdown_timeout=3) as host:
        group = {host.pid} | {p.pid for p in psutil.Process(host.pid).children()}
        assert len(group) == 3
        seen = set()
        assert wait_until(lambda: seen.add(int(get(host.url + "/pid"))) or len(seen) >= 2, 20)
        assert seen <= group
    assert wait_until(lambda: not any(psutil.pid_exists(pid) and
                                      psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                                      for pid in group), 10)


def test_a_dead_worker_ends_the_group_and_the_host_restarts_it():
    restarted = threading.Event()
    with FlaskHost("apps.hello:app", port=0, workers=2, restart_delay=0,
                   on_event=lambda e: e.name == "restarted" and restarted.set()) as host:
        first = host.pid
        (worker,) = psutil.Process(first).children()
        os.kill(worker.pid, signal.SIGKILL)
        assert restarted.wait(20)
        assert host.pid != first
        assert len(psutil.Process(host.pid).children()) == 1
        assert any("worker pid %d was killed" % worker.pid in line for line in host.logs(100))
        assert get(host.url + "/") == "hello"


@pytest.mark.parametrize("fields, word", [({"workers": 0}, "workers"),
                                          ({"workers": 2, "debug": True}, "workers")])
def test_bad_worker_settings_are_refused(fields, word):
    with pytest.raises(ValueError, match=word):
        HostConfig(**fields)
