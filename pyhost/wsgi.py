"""WSGI apps for a main app that sits in front of a host: the route guard and health.

A main app forwards ``/api/model`` to the hosted app (503 + JSON while it
is not ready) and serves ``/api/health/python``. The main app mounts these
with Werkzeug's ``DispatcherMiddleware``::

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {
        "/api/model": host.proxy_app(),
        "/api/health/python": host.health_app(),
    })

The guard itself (a streaming relay on urllib3's pool) is
:class:`pyhost.guard.ProxyApp`; what clients may see of errors and status is
decided in :mod:`pyhost.public`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

from .guard import UNAVAILABLE, ProxyApp, json_answer, raw_path_info, unavailable_payload
from .public import expose_details_for, public_status

__all__ = ["ProxyApp", "HealthApp", "proxy_app", "health_app", "unavailable_payload",
           "UNAVAILABLE"]

Environ = Dict[str, Any]
StartResponse = Callable[..., Any]

# Kept under its old name for code that imported it from here.
_raw_path_info = raw_path_info


class HealthApp:
    """A ``/api/health/python``-style endpoint: ``{"healthy": ..., **status}``, 200 or 503.

    The status is the public one (:func:`pyhost.public.public_status`): no
    pids, paths, URLs, output or exception text unless ``expose_details``
    (None: the host's ``expose_details`` field). ``/metrics`` under it
    answers Prometheus text (501 without prometheus_client).
    """

    def __init__(self, host: Any, *, expose_details: Optional[bool] = None) -> None:
        self.host = host
        self.expose_details = expose_details_for(host, expose_details)
        self._metrics_problem: Optional[str] = None
        try:
            from .metrics import collector_for
        except ImportError as exc:
            if not (getattr(exc, "name", None) or "").startswith("prometheus_client"):
                raise
            from ._meta import pip_install

            self._metrics_problem = (
                "Prometheus metrics need the prometheus_client package, which is not "
                "installed: %s (or: pip install prometheus-client)" % pip_install("metrics"))
        else:
            # Now, not at the first scrape: probes and errors count from here on.
            collector_for(host)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = self._answer(environ, start_response)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else body

    def _answer(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = (environ.get("PATH_INFO") or "/").rstrip("/") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return json_answer(start_response, "405 Method Not Allowed",
                               {"error": "method not allowed; use GET"}, [("Allow", "GET, HEAD")])
        if path == "/":
            status = self.host.status()
            body = {"healthy": status.is_ready, **public_status(status, self.expose_details)}
            code = "200 OK" if status.is_ready else "503 Service Unavailable"
            return json_answer(start_response, code, body)
        if path == "/metrics":
            return self._metrics(environ.get("HTTP_ACCEPT"), start_response)
        return json_answer(start_response, "404 Not Found",
                           {"error": "not found; try / or /metrics"})

    def _metrics(self, accept: Optional[str], start_response: StartResponse) -> Iterable[bytes]:
        if self._metrics_problem is not None:
            body = (self._metrics_problem + "\n").encode()
            start_response("501 Not Implemented", [("Content-Type", "text/plain; charset=utf-8"),
                                                   ("Content-Length", str(len(body)))])
            return [body]
        from .metrics import exposition

        body, content_type = exposition(self.host, accept, expose_details=self.expose_details)
        start_response("200 OK", [("Content-Type", content_type),
                                  ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [body]


def proxy_app(host: Any, **options: Any) -> ProxyApp:
    """``host.proxy_app()``: see :class:`pyhost.guard.ProxyApp` for the options."""
    return ProxyApp(host, **options)


def health_app(host: Any, **options: Any) -> HealthApp:
    """``host.health_app()``: public status JSON (200 ready / 503) and ``/metrics``."""
    return HealthApp(host, **options)
