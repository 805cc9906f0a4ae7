"""A storm of SIGKILLs under client load: every kill is recovered, on the same URL."""
from __future__ import annotations

from . import scenarios


def test_every_sigkill_under_load_is_recovered(long_form):
    kills = 100 if long_form else 5
    figures = scenarios.kill_storm(kills)
    assert figures["recovered"] == kills, figures
    assert figures["requests_ok"] > 0
    assert figures["requests_cut"] <= kills * 4, figures  # at most the in-flight ones per kill
    assert figures["longest_outage_ms"] < 15_000, figures
