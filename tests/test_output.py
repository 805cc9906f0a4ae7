"""OutputBuffer: memory bounded in bytes, cut lines say so, error tails stay small."""
from __future__ import annotations

import logging

from pyhost.output import LINE_CAP, TAIL_LINE_CAP, TAIL_TOTAL_CAP, OutputBuffer


def test_a_line_without_newline_keeps_only_the_cap_and_says_how_much_was_cut():
    buffer = OutputBuffer(50, line_cap=100)
    for _ in range(1000):
        buffer.feed(b"x" * 1000)  # 1 MB, no newline
    assert len(buffer._partial) == 100  # never more than the cap while it grows
    buffer.feed(b"\nnext\n")
    lines = buffer.tail(10)
    assert lines == ["x" * 100 + " … [cut %d bytes]" % (1000 * 1000 - 100), "next"]
    assert buffer.cut_bytes == 1000 * 1000 - 100
    assert buffer.total_bytes == 1000 * 1000 + 6


def test_the_total_is_bounded_in_bytes_and_the_oldest_lines_go_first():
    buffer = OutputBuffer(50, total_cap=10_000)
    for number in range(500):
        buffer.feed(b"line %04d " % number + b"y" * 90 + b"\n")
    assert buffer.size <= 10_000
    lines = buffer.tail(10_000)
    assert lines[-1].startswith("line 0499")
    assert not any(line.startswith("line 0000") for line in lines)


def test_the_default_caps():
    buffer = OutputBuffer(50)
    buffer.feed(b"z" * (3 * LINE_CAP) + b"\n")
    assert buffer.tail(1)[0].endswith("[cut %d bytes]" % (2 * LINE_CAP))
    for _ in range(300):
        buffer.feed(b"w" * 10_000 + b"\n")
    assert buffer.size <= 1024 * 1024


def test_the_error_tail_is_small():
    buffer = OutputBuffer(50)
    for _ in range(100):
        buffer.feed(b"q" * 5000 + b"\n")
    tail = buffer.tail()
    assert all(len(line) <= TAIL_LINE_CAP + 40 for line in tail)
    assert sum(len(line) + 1 for line in tail) <= TAIL_TOTAL_CAP + 600
    assert tail[-1].endswith("[cut %d characters]" % (5000 - TAIL_LINE_CAP))
    assert len(buffer.tail(50)[0]) == 5000  # host.logs() keeps the whole (capped) line


def test_line_ends_across_reads_and_progress_bars():
    buffer = OutputBuffer(50)
    for chunk in (b"one\r", b"\ntwo", b"\r\nthree", b" still\n", b"10%\r20%\r"):
        buffer.feed(chunk)
    buffer.flush()
    assert buffer.tail(10) == ["one", "two", "three still", "10%", "20%"]


def test_lines_are_logged_at_info_when_live_and_at_debug_otherwise(caplog):
    with caplog.at_level(logging.DEBUG, logger="pyhost.child"):
        OutputBuffer(5, "quiet").feed(b"a\n")
        OutputBuffer(5, "shown", live=True).feed(b"b\n")
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels == {"[quiet] a": logging.DEBUG, "[shown] b": logging.INFO}


def test_a_mark_is_not_counted_as_the_childs_output():
    buffer = OutputBuffer(5)
    buffer.add_mark("[pyhost] --- new process ---")
    assert buffer.total_lines == 0
    assert buffer.tail(5) == ["[pyhost] --- new process ---"]


def test_a_stack_dump_in_the_error_tail_keeps_each_threads_innermost_frames():
    buffer = OutputBuffer(50)
    dump = ["Thread 0x00007f01 (most recent call first):"]
    dump += ['  File "/lib/threading.py", line %d in wait' % n for n in range(3)]
    dump += ["", "Current thread 0x00007f02 (most recent call first):",
             '  File "/srv/app.py", line 7 in <module>']
    dump += ['  File "/venv/pytest/runner.py", line %d in call' % n for n in range(80)]
    buffer.feed(("\n".join(["before"] + dump) + "\n").encode())
    tail = buffer.tail()
    assert tail[:2] == ["before", dump[0]]
    assert '  File "/srv/app.py", line 7 in <module>' in tail
    assert tail[-1] == "  ... (75 outer frames left out; host.logs() has them)"
    assert len(tail) == 1 + 4 + 2 + 6 + 1
    assert buffer.tail(100)[1:] == dump  # host.logs() keeps the whole dump


def test_a_line_still_being_written_shows_last_without_being_kept_twice():
    buffer = OutputBuffer(5, line_cap=100)
    buffer.feed(b"first\nloading model")
    assert buffer.tail(5) == ["first", "loading model"]
    assert buffer.tail() == ["first", "loading model"]
    buffer.feed(b"." * 200)
    assert buffer.tail(1) == ["loading model" + "." * 87 + " … [cut 113 bytes]"]
    buffer.feed(b" done\n")
    assert buffer.tail(5) == ["first", "loading model" + "." * 87 + " … [cut 118 bytes]"]


def test_the_byte_count_stays_exact_when_the_line_count_cap_drops_lines():
    buffer = OutputBuffer(50)  # at most 1000 lines
    buffer.feed(b"".join(b"%d\n" % n for n in range(5000)))
    buffer.add_mark("[pyhost] mark")
    lines = buffer.tail(10_000)
    assert len(lines) == 1000 and lines[-1] == "[pyhost] mark" and lines[0] == "4001"
    assert buffer.size == sum(len(line) + 1 for line in lines)
