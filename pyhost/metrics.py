"""Prometheus metrics for one host, read from ``host.status()`` at scrape time.

Needs the ``metrics`` extra (``pip install 'pyhost-supervisor[metrics]'``, which is
``prometheus_client``); importing this module without it raises ImportError.

A custom collector in a registry of its own per host, not the global
``REGISTRY``: two hosts in one process, or a host started again in a test,
never clash over metric names, and nothing is counted twice. Gauges and the
restart/probe counters come from ``host.status()`` when scraped; the probe
latency histogram and the error counts are fed as things happen, by a
``HealthStats`` listener and an ``on_event`` callback.
"""
from __future__ import annotations

import bisect
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from .errors import ErrorType, HostError
from .public import expose_details_for
from .status import HostState

if TYPE_CHECKING:  # pragma: no cover
    from .health import ProbeResult
    from .lifecycle import HostEvent

__all__ = ["HostCollector", "collector_for", "exposition", "metrics_text", "LATENCY_BUCKETS"]

#: Probe latency buckets in seconds: a local app answers in milliseconds; the
#: top buckets catch a host that is busy or about to be declared hung.
LATENCY_BUCKETS: Tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5, 1.0, 2.5, 5.0, 10.0)

_collectors: "weakref.WeakKeyDictionary[Any, HostCollector]" = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


class HostCollector:
    """Collects one host's metrics; register it in a ``CollectorRegistry``.

    Probe latencies and errors are counted from the moment it is created
    (``host.health_app()`` creates it), so create it before ``start()`` to see
    the startup probes too.
    """

    def __init__(self, host: Any, buckets: Tuple[float, ...] = LATENCY_BUCKETS) -> None:
        # Weak: the collector lives in a WeakKeyDictionary keyed by the host,
        # and a strong reference back would keep every host alive forever.
        self._host = weakref.ref(host)
        self.name = host.name
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._bucket_counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self._latency_sum = 0.0
        self._errors: Dict[str, int] = {kind.value: 0 for kind in ErrorType}
        # Errors are not weak-referenceable: keep the last one counted, so one
        # seen by an event and again at a scrape counts once.
        self._last_counted: Optional[HostError] = None
        host._health.add_listener(self._observe_probe)
        host.on_event(self._on_event)

    # -- fed as things happen (supervisor and probe threads) ----------------
    def _observe_probe(self, result: "ProbeResult") -> None:
        index = bisect.bisect_left(self.buckets, result.latency)
        with self._lock:
            self._bucket_counts[index] += 1
            self._latency_sum += result.latency

    @property
    def host(self) -> Optional[Any]:
        return self._host()

    def _on_event(self, event: "HostEvent") -> None:
        self._count_error(event.error)

    def _count_error(self, error: Optional[HostError]) -> None:
        if error is None or error.details.get("gave_up"):
            # "Gave up" re-wraps the last attempt's error, which was counted.
            return
        with self._lock:
            if error is self._last_counted:
                return
            self._last_counted = error
            self._errors[error.type.value] = self._errors.get(error.type.value, 0) + 1

    # -- read at scrape time --------------------------------------------------
    def collect(self, expose_details: Optional[bool] = None) -> Iterator[Metric]:
        """The metrics; label values carry no paths or URLs unless ``expose_details``
        (None: the host's ``expose_details`` field)."""
        host = self.host
        if host is None:
            return
        expose = expose_details_for(host, expose_details)
        status = host.status()
        self._count_error(status.last_error)
        app = [host.name]

        info = InfoMetricFamily("pyhost_app", "The hosted app", labels=["app"])
        if expose:
            # The child's interpreter: python=, else this one (none for an external_url).
            python = host.config.python or ("" if host.config.external_url else sys.executable)
            labels = {"target": status.target, "url": status.url or "", "python": python}
        else:
            # The app's short name only: a target may be a file path, the URL and
            # the interpreter name the machine's layout.
            labels = {"target": host.name, "url": "", "python": ""}
        info.add_metric(app, labels)
        yield info

        running = status.pid is not None or (
            host.config.external_url is not None and status.state is not HostState.STOPPED)
        yield _gauge("pyhost_up", "1 while the app's process is running", app, running)
        yield _gauge("pyhost_ready", "1 while the app is ready (answering its health checks)",
                     app, status.is_ready)
        state = GaugeMetricFamily("pyhost_state", "1 for the host's current state",
                                  labels=["app", "state"])
        for candidate in HostState:
            state.add_metric(app + [candidate.value], 1.0 if candidate is status.state else 0.0)
        yield state
        yield _gauge("pyhost_uptime_seconds", "Seconds since the current child became ready "
                     "(0 while not ready)", app, status.uptime or 0.0)

        restarts = CounterMetricFamily("pyhost_restarts", "Automatic restarts since the host "
                                       "was created", labels=["app"])
        restarts.add_metric(app, status.total_restarts)
        yield restarts
        yield _gauge("pyhost_restart_attempts", "Restarts in the current restart window (the "
                     "circuit opens at max_restart_attempts)", app, status.restart_attempts)

        with self._lock:
            errors = dict(self._errors)
            counts = list(self._bucket_counts)
            latency_sum = self._latency_sum
        by_type = CounterMetricFamily("pyhost_errors", "Errors by type: crashes, hangs, failed "
                                      "starts and restarts", labels=["app", "type"])
        for kind, count in sorted(errors.items()):
            by_type.add_metric(app + [kind], count)
        yield by_type

        health = status.health
        probes = CounterMetricFamily("pyhost_health_probes", "HTTP health probes by result",
                                     labels=["app", "result"])
        total, failed = int(health.get("probes", 0)), int(health.get("failures", 0))
        probes.add_metric(app + ["ok"], total - failed)
        probes.add_metric(app + ["failed"], failed)
        yield probes

        histogram = HistogramMetricFamily("pyhost_health_probe_latency_seconds",
                                          "Latency of HTTP health probes", labels=["app"])
        histogram.add_metric(app, _cumulative(self.buckets, counts), latency_sum)
        yield histogram

        if status.last_health_check is not None:
            yield _gauge("pyhost_last_health_check_timestamp_seconds",
                         "When the last health probe ran (epoch seconds)", app,
                         status.last_health_check)


def _gauge(name: str, documentation: str, labels: List[str], value: Any) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["app"])
    family.add_metric(labels, float(value))
    return family


def _cumulative(buckets: Tuple[float, ...], counts: List[int]) -> List[Tuple[str, float]]:
    out: List[Tuple[str, float]] = []
    running = 0
    for bound, count in zip(buckets, counts):
        running += count
        out.append((repr(float(bound)), running))
    out.append(("+Inf", running + counts[-1]))
    return out


def collector_for(host: Any) -> Tuple[HostCollector, CollectorRegistry]:
    """The host's collector and its own registry, created on first use."""
    with _collectors_lock:
        entry = _collectors.get(host)
        if entry is None:
            collector = HostCollector(host)
            registry = CollectorRegistry(auto_describe=False)
            registry.register(collector)  # type: ignore[arg-type]
            entry = _collectors[host] = (collector, registry)  # type: ignore[assignment]
    return entry  # type: ignore[return-value]


def metrics_text(host: Any) -> bytes:
    """The Prometheus text exposition for ``host``."""
    return exposition(host)[0]


def exposition(host: Any, accept: Optional[str] = None,
               expose_details: Optional[bool] = None) -> Tuple[bytes, str]:
    """``(body, content type)`` in the format the scraper's ``Accept`` header asks for
    (OpenMetrics or the Prometheus text format)."""
    encoder, content_type = choose_encoder(accept or "")
    collector, registry = collector_for(host)
    if expose_details is not None:
        # This scrape only: the host's shared registry keeps the config's choice.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape(collector, expose_details))  # type: ignore[arg-type]
    return encoder(registry), content_type


class _Scrape:
    def __init__(self, collector: HostCollector, expose_details: bool) -> None:
        self._collector, self._expose = collector, expose_details

    def collect(self) -> Iterator[Metric]:
        return self._collector.collect(self._expose)
