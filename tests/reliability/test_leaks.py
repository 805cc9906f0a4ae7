"""Nothing leaks over start/stop cycles and failed starts of each error type.

Short form: 30 cycles, 3 failed starts of each type; ``--long``: 1,000 and 100.
"""
from __future__ import annotations

from . import scenarios


def _no_leaks(leaked):
    assert leaked["fds"] <= 0 and leaked["threads"] <= 0, leaked
    assert leaked["children"] <= 0 and leaked["listening"] <= 0, leaked
    assert leaked["rss_mb"] < 30, leaked  # allocator noise, not a child per cycle


def test_start_stop_cycles_leak_nothing(long_form):
    figures = scenarios.start_stop_cycles(1000 if long_form else 30)
    _no_leaks(figures["leaked"])


def test_failed_starts_of_each_type_leak_nothing_and_raise_their_type(long_form):
    count = 100 if long_form else 3
    figures = scenarios.failed_starts(count)
    for kind, seen in figures["raised"].items():
        assert seen == {kind: count}, (kind, seen)
    _no_leaks(figures["leaked"])
