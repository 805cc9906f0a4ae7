"""Floods: output and responses far larger than anything kept, and stop() mid-stream."""
from __future__ import annotations

from pyhost.output import LINE_CAP, TOTAL_CAP

from . import scenarios


def test_200_mb_without_newline_and_a_10_mb_line_cost_the_parent_little():
    figures = scenarios.flood_output(200, 10)
    assert figures["read_mb"] == 210  # all of it was read (the child never blocked)
    assert figures["parent_rss_growth_mb"] < 30, figures  # 0.1.0: 126 MB
    assert figures["logs_chars"] <= TOTAL_CAP
    assert figures["longest_line_chars"] <= LINE_CAP + 40
    assert figures["cut_lines"] == 2  # both floods say they were cut
    assert figures["error_tail_chars"] < 10_000  # 0.1.0: 6.4 MB in every 503 body


def test_50_mb_responses_arrive_whole(long_form):
    figures = scenarios.big_responses(10 if long_form else 2, 50)
    assert figures["complete"] == figures["responses"]


def test_stop_during_never_ending_responses_is_bounded_and_frees_the_port():
    figures = scenarios.endless_responses_during_stop(clients=4)
    assert figures["stop_seconds"] < 2.0 + 3.0  # shutdown_timeout, plus slack for a busy box
    # A response that never ends cannot finish gracefully: the child ends on
    # SIGTERM after 60% of shutdown_timeout (werkzeug's server_close() joins
    # request threads), never needing SIGKILL.
    assert figures["ended"] in ("stopped", "terminated"), figures
    assert figures["child_gone"]
    assert figures["readers_ended"] == 4
