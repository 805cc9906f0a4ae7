"""HTML for notebooks (``_repr_html_``) of hosts and statuses.

A host shown in a cell answers the questions asked when something is off: is
it up (state, in colour), where (a link while it serves), which process, for
how long, how often it restarted, what went wrong last and what to do about it,
and what the app printed recently (folded away, so output never floods a cell).
Everything that comes from the app or the user is escaped.

Below :mod:`pyhost.status` and :mod:`pyhost.host` (both call it for their
``_repr_html_``), it takes them as they come and imports neither.
"""
from __future__ import annotations

import html
from typing import Any, List, Optional, Sequence, Tuple

from .errors import HostError

__all__ = ["status_html", "host_html", "format_duration"]

#: Badge colours, readable with white text on light and dark themes.
COLOURS = {
    "READY": "#1a7f37",
    "STARTING": "#9a6700",
    "RESTARTING": "#9a6700",
    "UNHEALTHY": "#bc4c00",
    "FAILED": "#cf222e",
    "STOPPED": "#57606a",
}

#: States in which the URL answers (or is about to): only then is it a link.

#: How many of the app's recent output lines a displayed host shows.
OUTPUT_LINES = 20

_esc = html.escape
_PRE = ("<pre style='margin:2px 0;max-height:16em;overflow:auto;white-space:pre-wrap;"
        "font-size:90%%'>%s</pre>")


def format_duration(seconds: float) -> str:
    """``4.2`` → ``"4.2 s"``, ``125`` → ``"2 min 5 s"``, ``7384`` → ``"2 h 3 min"``."""
    if seconds < 60:
        return "%.1f s" % seconds
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return "%d min %d s" % (minutes, secs)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return "%d h %d min" % (hours, minutes)
    return "%d d %d h" % divmod(hours, 24)


def status_html(status: Any, title: str = "",
                output: Optional[Sequence[str]] = None) -> str:
    """One table: state badge, URL, pid, uptime, restarts, health, last error, output."""
    rows: List[Tuple[str, str]] = []
    if status.url:
        if status.state.active:
            rows.append(("URL", '<a href="%s" target="_blank">%s</a>'
                         % (_esc(status.url, quote=True), _esc(status.url))))
        else:
            rows.append(("URL", "%s <i>(not serving)</i>" % _esc(status.url)))
    if status.pid:
        rows.append(("PID", str(status.pid)))
    if status.uptime is not None:
        rows.append(("Uptime", format_duration(status.uptime)))
    rows.append(("Restarts", "%d total, %d in the current window"
                 % (status.total_restarts, status.restart_attempts)))
    health = status.health or {}
    if health.get("probes"):
        text = "%s probe%s, %s failed" % (health["probes"], "" if health["probes"] == 1 else "s",
                                         health.get("failures", 0))
        if health.get("last_latency_ms") is not None:
            text += "; latency last %s ms, p95 %s ms" % (health.get("last_latency_ms"),
                                                        health.get("p95_latency_ms"))
        rows.append(("Health", _esc(text)))
    error = status.last_error
    if error is not None:
        label = "Last error" if status.state.value != "READY" else "Last error (recovered)"
        rows.append((label, _error_html(error)))
    if output:
        rows.append(("Output", _folded("last %d line%s of the app's output"
                                       % (len(output), "" if len(output) == 1 else "s"),
                                       "\n".join(output))))
    body = "".join(
        "<tr><th style='text-align:left;vertical-align:top;padding-right:1em'>%s</th>"
        "<td style='text-align:left'>%s</td></tr>" % (_esc(name), value) for name, value in rows)
    colour = COLOURS.get(status.state.value, COLOURS["STOPPED"])
    return (
        "<div class='pyhost-status'><div><b>%s</b> "
        "<span style='background:%s;color:white;border-radius:4px;padding:1px 6px'>%s</span>"
        "</div><table>%s</table></div>"
        % (_esc(title or status.target or "pyhost"), colour, _esc(status.state.value), body)
    )


def host_html(host: Any) -> str:
    return status_html(host.status(), "FlaskHost %s" % host.target_label,
                       output=host.logs(OUTPUT_LINES))


def _error_html(error: HostError) -> str:
    parts = ["<b>%s</b>: %s" % (_esc(error.type.value), _esc(error.message))]
    if error.troubleshooting:
        parts.append("<ol style='margin:4px 0'>%s</ol>" % "".join(
            "<li>%s</li>" % _esc(step) for step in error.troubleshooting))
    if error.remote_traceback:
        parts.append(_folded("traceback in the app process", error.remote_traceback.rstrip()))
    elif error.stderr_tail:
        parts.append(_folded("app output before the error", "\n".join(error.stderr_tail)))
    return "".join(parts)


def _folded(summary: str, text: str) -> str:
    return "<details><summary>%s</summary>%s</details>" % (_esc(summary), _PRE % _esc(text))
