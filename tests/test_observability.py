"""Observability: /metrics (exact series after real traffic), its token, request ids, JSON logs.

Everything goes over real HTTP to the app and the provider sandboxes on loopback; the
numbers are read back from /metrics as Prometheus would scrape them.
"""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from checkout import create_app
from checkout.config import ConfigError
from checkout.logging_setup import JsonFormatter, RequestIdFilter, install_masking
from checkout.observability import request_id_from
from checkout.store.models import WebhookEvent
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, KR_PAYER, Shopper, create_checkout, get_checkout
from tests.test_flows import cashier_url, settle, start

PAYPRO_KR = FLOWS[0]  # KakaoPay through paypro_kr: a redirect to the sandbox cashier
METRICS_TOKEN = "metrics-token-0123456789abcdef"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str, token: str | None = None) -> Series:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = requests.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    series: Series = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, tuple(sorted(labels.items()))))


def requests_count(series: Series, endpoint: str, method: str, status: int) -> float | None:
    return value(
        series,
        "checkout_http_request_duration_seconds_count",
        endpoint=endpoint,
        method=method,
        status=str(status),
    )


def labelled(series: Series, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in series.items() if n == name}


def forged_notify(live_app: LiveApp, **headers: str) -> requests.Response:
    """A PayPro notify whose sign does not match; it carries a payer's e-mail and mobile."""
    body = {
        "tradeNo": "20260105093012abcdef0123456789ab",
        "status": "0000",
        "amount": "15000",
        "payerEmail": KR_PAYER["email"],
        "payerMobile": KR_PAYER["mobile"],
        "sign": "0" * 64,
    }
    return requests.post(
        f"{live_app.url}/notify/{PAYPRO_KR.instance}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


# ---------------------------------------------------------------- /metrics
def test_metrics_after_pages_a_bad_notify_a_paid_flow_and_a_provider_error(
    live_app: LiveApp,
) -> None:
    # Pages: two health checks and a URL no route takes.
    for _ in range(2):
        assert requests.get(f"{live_app.url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{live_app.url}/no/such/page", timeout=10).status_code == 404
    # A notify with a bad signature: refused with 401.
    assert forged_notify(live_app).status_code == 401
    # A paid flow: API create (201), the form (GET, POST 303), the sandbox cashier's "pay"
    # and its signed notify (accepted).
    checkout, shopper, resp = start(live_app, PAYPRO_KR)
    settle(live_app, cashier_url(live_app, PAYPRO_KR, resp, shopper), "pay")
    assert get_checkout(live_app.url, checkout["id"])["status"] == "paid"
    # A provider error: PayPro answers the next create with HTTP 500; the checkout reopens.
    live_app.sandbox.state.inject_fault("paypro", "http_500")
    failing = create_checkout(live_app.url)
    refused = Shopper(failing["url"]).submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert refused.status_code == 422

    with live_app.session() as session:
        pending_events = session.scalar(
            select(func.count()).where(WebhookEvent.status == "pending")
        )
    series = scrape(live_app.url)

    # Requests, by endpoint (never the raw path), method and status.
    assert requests_count(series, "ops.healthz", "GET", 200) == 2
    assert requests_count(series, "unmatched", "GET", 404) == 1
    assert requests_count(series, "api.create", "POST", 201) == 2
    assert requests_count(series, "api.read", "GET", 200) == 1
    assert requests_count(series, "pages.checkout_page", "GET", 200) == 2
    assert requests_count(series, "pages.checkout_page", "POST", 303) == 1
    assert requests_count(series, "pages.checkout_page", "POST", 422) == 1
    assert requests_count(series, "notify.notify", "POST", 401) == 1
    assert requests_count(series, "notify.notify", "POST", 200) == 1
    request_labels = labelled(series, "checkout_http_request_duration_seconds_count")
    assert not any("co_" in v or "/" in v for labels in request_labels for _k, v in labels)
    assert sum(request_labels.values()) == 12  # every request above, and nothing else
    # Its histogram: every request falls in the +Inf bucket.
    assert (
        value(
            series,
            "checkout_http_request_duration_seconds_bucket",
            endpoint="ops.healthz",
            method="GET",
            status="200",
            le="+Inf",
        )
        == 2
    )

    # Notifies by final verdict.
    assert labelled(series, "checkout_notifies_total") == {
        (("provider", "paypro_kr"), ("verdict", "bad_signature")): 1,
        (("provider", "paypro_kr"), ("verdict", "accepted")): 1,
    }

    # Provider calls: two creates at paypro_kr, one answered 500; latency by outcome.
    assert labelled(series, "checkout_provider_request_duration_seconds_count") == {
        (("outcome", "ok"), ("provider", "paypro_kr")): 1,
        (("outcome", "http_5xx"), ("provider", "paypro_kr")): 1,
    }
    assert value(
        series, "checkout_provider_request_duration_seconds_sum", provider="paypro_kr", outcome="ok"
    )
    assert labelled(series, "checkout_provider_errors_total") == {
        (("outcome", "http_5xx"), ("provider", "paypro_kr")): 1
    }

    # From the database at scrape time.
    assert labelled(series, "checkout_checkouts") == {
        (("status", "open"),): 1,
        (("status", "pending"),): 0,
        (("status", "paid"),): 1,
        (("status", "partially_paid"),): 0,
        (("status", "expired"),): 0,
        (("status", "cancelled"),): 0,
    }
    # No worker runs here: every status event is still waiting in the outbox.
    assert pending_events and pending_events >= 3
    assert value(series, "checkout_outbox_pending_events") == pending_events
    oldest = value(series, "checkout_outbox_oldest_pending_age_seconds")
    assert oldest is not None and 0 < oldest < 120
    assert value(series, "checkout_database_up") == 1

    # The scrape itself is counted by the next one.
    assert requests_count(scrape(live_app.url), "ops.metrics", "GET", 200) == 1


@pytest.mark.provider_config(paypro_kr={"read_timeout": 0.5})
def test_provider_timeouts_and_dropped_connections_are_counted_by_outcome(
    live_app: LiveApp,
) -> None:
    state = live_app.sandbox.state
    # read_timeout: the sandbox takes the payment, then holds its answer past our timeout.
    state.inject_fault("paypro", "read_timeout", delay=1.5)
    timed_out = Shopper(create_checkout(live_app.url)["url"])
    assert timed_out.submit(PAYPRO_KR.method, PAYPRO_KR.payer).status_code == 303
    # connection_reset: the sandbox acts, then drops the connection.
    state.inject_fault("paypro", "connection_reset")
    reset = Shopper(create_checkout(live_app.url)["url"])
    assert reset.submit(PAYPRO_KR.method, PAYPRO_KR.payer).status_code == 422
    series = scrape(live_app.url)
    assert labelled(series, "checkout_provider_errors_total") == {
        (("outcome", "timeout"), ("provider", "paypro_kr")): 1,
        (("outcome", "connection_error"), ("provider", "paypro_kr")): 1,
    }
    # Latency by provider and outcome: the timeout's wait is its own series, apart from
    # the reset (and from any answered call).
    count = "checkout_provider_request_duration_seconds_count"
    assert labelled(series, count) == {
        (("outcome", "timeout"), ("provider", "paypro_kr")): 1,
        (("outcome", "connection_error"), ("provider", "paypro_kr")): 1,
    }
    hist = "checkout_provider_request_duration_seconds"
    timeout_sum = value(series, f"{hist}_sum", provider="paypro_kr", outcome="timeout")
    assert timeout_sum is not None and timeout_sum >= 0.5  # the timeout waited read_timeout
    fast = {
        outcome: value(series, f"{hist}_bucket", provider="paypro_kr", outcome=outcome, le="0.25")
        for outcome in ("timeout", "connection_error")
    }
    assert fast == {"timeout": 0, "connection_error": 1}  # the reset came at once


@pytest.mark.app_config(metrics_token=METRICS_TOKEN)
def test_metrics_token_is_required_when_set(live_app: LiveApp) -> None:
    url = f"{live_app.url}/metrics"
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
    ):
        resp = requests.get(url, headers=headers, timeout=10)
        assert resp.status_code == 401, headers
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "checkout_" not in resp.text
    assert value(scrape(live_app.url, METRICS_TOKEN), "checkout_database_up") == 1


def test_metrics_token_must_be_long(live_app: LiveApp) -> None:
    config: dict[str, Any] = {**live_app.app.extensions["settings"].raw, "metrics_token": "short"}
    with pytest.raises(ConfigError, match="metrics_token"):
        create_app(config)


# ---------------------------------------------------------------- request ids
def test_request_id_is_kept_when_safe_and_made_otherwise(live_app: LiveApp) -> None:
    healthz = f"{live_app.url}/healthz"
    kept = requests.get(healthz, headers={"X-Request-Id": "edge-7f3a.42_b"}, timeout=10)
    assert kept.headers["X-Request-Id"] == "edge-7f3a.42_b"
    made = {
        requests.get(healthz, headers=headers, timeout=10).headers["X-Request-Id"]
        for headers in (
            {},
            {},
            {"X-Request-Id": "has spaces"},
            {"X-Request-Id": "a" * 65},
            {"X-Request-Id": KR_PAYER["email"]},
            {"X-Request-Id": "-leading-dash"},
        )
    }
    assert len(made) == 6 and all(HEX_ID.match(rid) for rid in made)
    # Every answer has one, a 404 and a refused API call too.
    for resp in (
        requests.get(f"{live_app.url}/no/such/page", timeout=10),
        requests.get(f"{live_app.url}/api/v1/checkouts/co_x", timeout=10),
    ):
        assert resp.status_code in (401, 404) and HEX_ID.match(resp.headers["X-Request-Id"])


def test_request_id_from() -> None:
    assert request_id_from("abc") == "abc"
    assert HEX_ID.match(request_id_from(None))
    assert HEX_ID.match(request_id_from(""))
    assert HEX_ID.match(request_id_from("x\r\nInjected: 1"))


@pytest.fixture
def json_log() -> Any:
    """Every WARNING+ record in the process (the live app's server threads too), as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_log_lines_inside_a_request_are_json_with_its_id_and_no_personal_data(
    live_app: LiveApp, json_log: io.StringIO
) -> None:
    # An unsafe incoming id (an e-mail) is replaced, never echoed or logged.
    resp = forged_notify(live_app, **{"X-Request-Id": KR_PAYER["email"]})
    assert resp.status_code == 401
    request_id = resp.headers["X-Request-Id"]
    assert HEX_ID.match(request_id)
    other = forged_notify(live_app, **{"X-Request-Id": "proxy-id-0001"})
    assert other.headers["X-Request-Id"] == "proxy-id-0001"

    lines = [line for line in json_log.getvalue().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    rejected = [e for e in entries if e["message"].startswith("notify rejected")]
    assert [e["request_id"] for e in rejected] == [request_id, "proxy-id-0001"]
    first = rejected[0]
    assert first["level"] == "WARNING"
    assert first["logger"] == "checkout.services.provider_notifies"
    assert "verdict=bad_signature" in first["message"] and first["time"]
    text = json_log.getvalue()
    assert KR_PAYER["email"] not in text and KR_PAYER["mobile"] not in text
    assert "12345678" not in text


def test_log_lines_outside_requests_have_no_request_id() -> None:
    install_masking()  # the record factory that stamps request ids
    record = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    assert record.request_id is None  # type: ignore[attr-defined]
    assert "request_id" not in json.loads(JsonFormatter().format(record))
    RequestIdFilter().filter(record)
    line = logging.Formatter("[%(request_id)s] %(message)s").format(record)
    assert line == "[-] hello"
