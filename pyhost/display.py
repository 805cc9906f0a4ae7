"""HTML for notebooks (``_repr_html_``) of hosts and statuses."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .status import HostState, HostStatus

if TYPE_CHECKING:  # pragma: no cover
    from .host import FlaskHost

__all__ = ["status_html", "host_html"]

_COLOURS = {
    HostState.READY: "#1a7f37",
    HostState.STARTING: "#9a6700",
    HostState.RESTARTING: "#9a6700",
    HostState.UNHEALTHY: "#bc4c00",
    HostState.FAILED: "#cf222e",
    HostState.STOPPED: "#57606a",
}


def status_html(status: HostStatus, title: str = "") -> str:
    esc = html.escape
    colour = _COLOURS.get(status.state, "#57606a")
    rows = []
    if status.url:
        rows.append(("URL", '<a href="%s" target="_blank">%s</a>' % (esc(status.url), esc(status.url))))
    if status.pid:
        rows.append(("PID", str(status.pid)))
    if status.uptime is not None:
        rows.append(("Uptime", "%.1f s" % status.uptime))
    rows.append(("Restarts", "%d (%d in this window)" % (status.total_restarts,
                                                        status.restart_attempts)))
    health = status.health or {}
    if health.get("probes"):
        rows.append(("Health", "%s probes, %s failed, last %s ms, p95 %s ms" % (
            health.get("probes"), health.get("failures"), health.get("last_latency_ms"),
            health.get("p95_latency_ms"))))
    error = status.last_error
    if error is not None:
        steps = "".join("<li>%s</li>" % esc(step) for step in error.troubleshooting)
        rows.append(("Last error", "<b>%s</b>: %s%s" % (
            esc(error.type.value), esc(error.message),
            "<ol style='margin:4px 0'>%s</ol>" % steps if steps else "")))
    body = "".join(
        "<tr><th style='text-align:left;padding-right:1em'>%s</th><td style='text-align:left'>%s"
        "</td></tr>" % (esc(k), v) for k, v in rows)
    return (
        "<div class='pyhost-status'><div><b>%s</b> "
        "<span style='background:%s;color:white;border-radius:4px;padding:1px 6px'>%s</span>"
        "</div><table>%s</table></div>"
        % (esc(title or status.target or "pyhost"), colour, esc(status.state.value), body)
    )


def host_html(host: "FlaskHost") -> str:
    return status_html(host.status(), "FlaskHost %s" % host.target_label)
