"""Prometheus metrics, served at GET /metrics (prometheus-client).

- `checkout_http_request_duration_seconds{endpoint, method, status}` (histogram): every
  request, observed in checkout/observability.py; its `_count` is the number of requests.
- `checkout_provider_request_duration_seconds{provider, outcome}` (histogram): every HTTP
  call to a provider, create or query, observed by the shared transport
  (checkout/providers/http.py); `outcome` is `ok` for a 2xx answer, else as below.
- `checkout_provider_errors_total{provider, outcome}` (counter): those calls without a 2xx
  answer (the same numbers as the histogram's non-`ok` counts, kept for existing alerts).
- `checkout_provider_failovers_total{provider, reason}` (counter): payments that left an
  instance for the method's next route (services/payments.py), by the instance left and
  the reason (checkout/domain/routing.py SkipReason).
- `checkout_notifies_total{provider, verdict}` (counter): every notify once its verdict is
  final (checkout/web/notify.py).
- Read from the database at scrape time: `checkout_checkouts{status}`,
  `checkout_outbox_pending_events`, `checkout_outbox_oldest_pending_age_seconds` (0 when none)
  and `checkout_database_up` (0 when those queries failed; the others are then left out).

`endpoint` is Flask's endpoint name (`pages.checkout_page`, `ops.healthz`; `unmatched` for a URL
no route takes), never the raw path, so ids in URLs never become series. `provider` is the
configured instance name (`paypro_kr`).

Several processes (gunicorn workers): with PROMETHEUS_MULTIPROC_DIR set before the process
starts, prometheus-client writes each process's counters and histograms to files there and
/metrics adds up every process's files (its multiprocess mode; gunicorn.conf.py cleans up).
Without it, each app has its own registry in memory (plus the usual process metrics).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import current_app, has_app_context
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from checkout.domain.states import CheckoutStatus

log = logging.getLogger(__name__)

EXTENSION = "checkout_metrics"
# Seconds. Our pages answer in milliseconds; a payment's create call waits on the provider.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR (created if missing) when multiprocess mode is on, else None.

    prometheus-client decides when it is first imported: the variable must be set before
    the process starts (gunicorn: in its environment), not later.
    """
    from prometheus_client import values

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return None
    if not getattr(values.ValueClass, "_multiprocess", False):
        log.warning(
            "PROMETHEUS_MULTIPROC_DIR was set after prometheus-client was imported; "
            "metrics stay in this process"
        )
        return None
    os.makedirs(path, exist_ok=True)
    return path


class Metrics:
    """One app's metrics: the series, and the exposition for /metrics."""

    def __init__(self, multiprocess_path: str | None = None, token: str | None = None) -> None:
        self.multiprocess_path = multiprocess_path
        self._token = token.encode() if token else None
        # Multiprocess mode: the values live in files; a registry is built for each scrape.
        registry = None if multiprocess_path else CollectorRegistry()
        self.registry = registry
        self.http_requests = Histogram(
            "checkout_http_request_duration_seconds",
            "Requests handled, by Flask endpoint, method and status, and how long they took.",
            ("endpoint", "method", "status"),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.provider_latency = Histogram(
            "checkout_provider_request_duration_seconds",
            "HTTP calls to payment providers (create and query), by provider instance and "
            "outcome (ok, timeout, connect_timeout, connection_error, error, http_3xx, "
            "http_4xx, http_5xx).",
            ("provider", "outcome"),
            buckets=PROVIDER_BUCKETS,
            registry=registry,
        )
        self.provider_errors = Counter(
            "checkout_provider_errors_total",
            "Provider calls without a 2xx answer, by provider instance and outcome "
            "(timeout, connect_timeout, connection_error, error, http_3xx, http_4xx, http_5xx).",
            ("provider", "outcome"),
            registry=registry,
        )
        self.failovers = Counter(
            "checkout_provider_failovers_total",
            "Payments that left a provider instance for the method's next route, by the "
            "instance left and why (unreachable, provider_refused, ip_limit, circuit_open, "
            "payer_rules, amount).",
            ("provider", "reason"),
            registry=registry,
        )
        self.notifies = Counter(
            "checkout_notifies_total",
            "Provider notifies, by provider instance and final verdict.",
            ("provider", "verdict"),
            registry=registry,
        )
        self.database = DatabaseCollector()
        if registry is not None:
            registry.register(self.database)
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        # (endpoint, method, status) -> its histogram child: one dict lookup per request
        # instead of prometheus-client's labels() (a lock and string conversions).
        self._request_series: dict[tuple[str, str, int], Any] = {}

    # ------------------------------------------------------------ observing
    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = self.http_requests.labels(endpoint, method, str(status))
            self._request_series[key] = series
        series.observe(seconds)

    def observe_provider_call(self, provider: str, seconds: float, outcome: str) -> None:
        # By outcome too: a timeout's 20 s must not hide inside the answered calls' latency.
        self.provider_latency.labels(provider, outcome).observe(seconds)
        if outcome != "ok":
            self.provider_errors.labels(provider, outcome).inc()

    def observe_notify(self, provider: str, verdict: str) -> None:
        self.notifies.labels(provider, verdict).inc()

    def observe_failover(self, provider: str, reason: str) -> None:
        self.failovers.labels(provider, reason).inc()

    # ------------------------------------------------------------ exposition
    def authorized(self, authorization: str | None) -> bool:
        """Without a metrics_token anyone may scrape; with one, `Bearer <token>` only."""
        if self._token is None:
            return True
        scheme, _sep, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._token
        )

    def exposition(self) -> tuple[bytes, str]:
        """(the text format, its content type); reads the database (needs an app context)."""
        if self.multiprocess_path:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_path)
            registry.register(self.database)
        else:
            assert self.registry is not None
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST


def metrics_of(app: Any) -> Metrics:
    return app.extensions[EXTENSION]


def observe_provider_call(provider: str, seconds: float, outcome: str) -> None:
    """The transport's observer (checkout/providers/http.py): counts into the current app's
    metrics; a call made outside any app context (a provider unit test) is not counted."""
    if has_app_context():
        metrics = current_app.extensions.get(EXTENSION)
        if metrics is not None:
            metrics.observe_provider_call(provider, seconds, outcome)


def observe_failover(provider: str, reason: str) -> None:
    """A payment left `provider` for the next route (services/payments.py); not counted
    outside an app context."""
    if has_app_context():
        metrics = current_app.extensions.get(EXTENSION)
        if metrics is not None:
            metrics.observe_failover(provider, reason)


class DatabaseCollector:
    """Gauges read from the database when /metrics is scraped: whichever process answers
    the scrape sees the same numbers, so they need no multiprocess bookkeeping."""

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    # Reads (checkouts by status, pending events, the oldest one's age in seconds); the app
    # sets it (services/admin.database_gauges on its session): metrics read no table itself.
    read: Callable[[], tuple[Mapping[str, int], int, float]] | None = None

    def collect(self) -> Iterator[Metric]:
        checkouts, pending, oldest, up = self._families()
        counts = None
        try:
            if self.read is not None:
                counts, backlog, age = self.read()
        except Exception:
            log.warning("metrics: the database did not answer", exc_info=True)
            counts = None
        if counts is None:
            up.add_metric([], 0)
            yield up
            return
        statuses = [str(s) for s in CheckoutStatus]
        for status in [*statuses, *sorted(set(counts) - set(statuses))]:
            checkouts.add_metric([status], counts.get(status, 0))
        pending.add_metric([], backlog)
        oldest.add_metric([], age)
        up.add_metric([], 1)
        yield from (checkouts, pending, oldest, up)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "checkout_checkouts",
                "Checkouts in each status (final: paid, partially_paid, expired, cancelled).",
                labels=["status"],
            ),
            GaugeMetricFamily(
                "checkout_outbox_pending_events", "Webhook events waiting to be sent."
            ),
            GaugeMetricFamily(
                "checkout_outbox_oldest_pending_age_seconds",
                "Age of the oldest webhook event waiting to be sent; 0 when none waits.",
            ),
            GaugeMetricFamily(
                "checkout_database_up", "1 when the scrape-time database queries answered."
            ),
        )
