"""The process layer: a failed launch leaves nothing behind; output lines are clean."""
from __future__ import annotations

import pytest

from conftest import fd_count, pyhost_threads
from pyhost import FlaskHost, HostState, SpawnError
from pyhost.process import ChildProcess, OutputBuffer


def test_output_lines_are_kept_without_terminal_colour_codes():
    buffer = OutputBuffer(10)
    buffer.feed(b'\x1b[31m"GET /x HTTP/1.1" 500 -\x1b[0m\npartial')
    assert buffer.tail() == ['"GET /x HTTP/1.1" 500 -']
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
