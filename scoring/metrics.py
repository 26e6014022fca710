"""Prometheus metrics of one scoring process, served on ``GET /metrics``.

Each replica is its own process and is scraped on its own (``prometheus_client``'s plain
single-process mode: no shared files, no multiprocess directory); Prometheus sums replicas.

Series (``scoring_`` prefix):

- ``requests_total{route,method,status}``: every answered request (499: the client left);
- ``request_duration_seconds{route}``: latency histogram, arrival to response sent;
- ``errors_total{route,status}``: the requests answered 4xx or 5xx (and 499);
- ``rows_scored_total``: rows predicted by ``/score``;
- ``model_info{name,version,sha256}``: the served model, value 1;
- ``collect_queue_depth`` and ``collect_dropped_total``: the collection queue, read from a
  callback at scrape time (0 when the service collects nothing).

The hot path is one dict lookup and three lock-guarded additions: the labelled children are
made once per (route, method, status) and kept. Unknown paths count as ``route="other"`` so a
scanner cannot create a series per URL it tries.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
# Seconds. The service answers a small /score in about a millisecond; the upper buckets
# catch queueing under load and slow clients.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})
OTHER = "other"


class QueueStats(NamedTuple):
    """The collection queue as the metrics see it."""

    depth: int = 0
    dropped: int = 0


QueueStatsSource = Callable[[], QueueStats]


def no_queue() -> QueueStats:
    """The stats of a service that collects nothing."""
    return QueueStats()


class _QueueCollector(Collector):
    """Reads the collection queue's depth and drop count when Prometheus scrapes."""

    def __init__(self, source: QueueStatsSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        stats = self._source()
        yield GaugeMetricFamily(
            "scoring_collect_queue_depth",
            "Collected rows waiting in memory to be written to the lake.",
            value=stats.depth,
        )
        yield CounterMetricFamily(
            "scoring_collect_dropped",
            "Collected rows dropped because the queue was full.",
            value=stats.dropped,
        )


class ServiceMetrics:
    """The metrics of one scoring process, in a registry of its own (no global state).

    Args:
        model_name: Served model's name.
        model_version: Served model's version.
        model_sha256: sha256 of the served ``model.joblib``.
        routes: The service's paths; any other path is counted as ``other``.
        queue_stats: Called at scrape time for the collection queue's depth and drops.
    """

    def __init__(
        self,
        model_name: str,
        model_version: str,
        model_sha256: str,
        routes: Collection[str],
        queue_stats: QueueStatsSource = no_queue,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._routes = frozenset(routes)
        self._requests = Counter(
            "scoring_requests",
            "Requests answered, by route, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "scoring_request_duration_seconds",
            "Time from a request's arrival to its response, by route.",
            ("route",),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "scoring_errors",
            "Requests answered with an error status (4xx, 5xx; 499: the client left).",
            ("route", "status"),
            registry=self.registry,
        )
        self._rows = Counter(
            "scoring_rows_scored", "Rows predicted by /score.", registry=self.registry
        )
        Info("scoring_model", "The served model.", registry=self.registry).info(
            {"name": model_name, "version": model_version, "sha256": model_sha256}
        )
        self.registry.register(_QueueCollector(queue_stats))
        # (route, method, status) -> the children to increment: made once, then reused.
        self._children: dict[tuple[str, str, int], tuple[Callable[..., None], ...]] = {}

    def observe(self, path: str, method: str, status: int, seconds: float, rows: int) -> None:
        """Count one answered request.

        Args:
            path: Request path (an unknown one counts as ``other``).
            method: HTTP method.
            status: Status answered (499 when the client went away).
            seconds: Time from arrival to response.
            rows: Rows scored (0 for other routes and refused requests).
        """
        key = (path, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._make_children(key)
        children[0]()
        children[1](seconds)
        if len(children) > 2:
            children[2]()
        if rows:
            self._rows.inc(rows)

    def _make_children(self, key: tuple[str, str, int]) -> tuple[Callable[..., None], ...]:
        path, method, status = key
        route = path if path in self._routes else OTHER
        method = method if method in _METHODS else OTHER
        found: tuple[Callable[..., None], ...] = (
            self._requests.labels(route, method, str(status)).inc,
            self._latency.labels(route).observe,
        )
        if status >= 400:
            found += (self._errors.labels(route, str(status)).inc,)
        if route != OTHER and method != OTHER:  # bounded: routes x methods x statuses
            self._children[key] = found
        return found

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
