"""Abuse limits: PayPro's per-IP daily rule before we call it, and the rate limits (429)."""

from __future__ import annotations

import secrets
import socket
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import func, select

from checkout import create_app
from checkout.config import ConfigError
from checkout.domain.states import AttemptStatus
from checkout.services.ip_limits import day_start_utc
from checkout.services.payments import new_trade_no
from checkout.store.models import Checkout, NotifyMessage, PaymentAttempt
from tests.conftest import LiveApp
from tests.support.app_config import TEST_API_KEY_NEXT
from tests.support.shopper import (
    FLOWS,
    KR_PAYER,
    Shopper,
    api_headers,
    create_checkout,
    get_checkout,
)

PAYPRO_KR = FLOWS[0]  # KakaoPay through paypro_kr
TEEMOPAY = next(f for f in FLOWS if f.name == "teemopay_kr")
LOOPBACK = "127.0.0.1"  # every test request comes from here


# ---------------------------------------------------------------- PayPro per-IP rule
def add_attempts(
    live_app: LiveApp,
    count: int,
    *,
    status: str = AttemptStatus.FAILED,
    provider: str = "paypro_mx",
    ip: str = LOOPBACK,
    created_at: datetime | None = None,
) -> None:
    """Earlier attempts from `ip`, written straight to the table (on another checkout)."""
    checkout = create_checkout(live_app.url)
    with live_app.session() as session:
        for _ in range(count):
            session.add(
                PaymentAttempt(
                    checkout_id=checkout["id"],
                    trade_no=new_trade_no(),
                    provider=provider,
                    method="x",
                    amount=15000,
                    currency="KRW",
                    status=status,
                    payer_ip=ip,
                    created_at=created_at or datetime.now(UTC),
                )
            )
        session.commit()


def attempt_count(live_app: LiveApp) -> int:
    with live_app.session() as session:
        return session.scalar(select(func.count(PaymentAttempt.id))) or 0


def test_tenth_paypro_attempt_of_the_day_is_refused_before_paypro(live_app: LiveApp) -> None:
    # Ten earlier attempts at another PayPro instance (Mexico) from the same IP: PayPro
    # counts per payer IP, whatever instance we sent them through.
    add_attempts(live_app, 10)
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert resp.status_code == 422, resp.text
    assert 'id="form-error"' in resp.text
    assert "at most 10 payment attempts a day" in resp.text and "Nothing was charged" in resp.text
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []
    assert attempt_count(live_app) == 10  # nothing written
    assert live_app.sandbox.state.orders == {}  # nothing sent
    # Another provider has no such rule: the same shopper pays with TeemoPay.
    other = create_checkout(live_app.url, amount=TEEMOPAY.amount)
    assert Shopper(other["url"]).submit(TEEMOPAY.method, TEEMOPAY.payer).status_code == 303


def test_three_paid_paypro_payments_a_day_are_the_most(live_app: LiveApp) -> None:
    add_attempts(live_app, 3, status=AttemptStatus.PAID, provider="paypro_kr")
    checkout = create_checkout(live_app.url)
    resp = Shopper(checkout["url"]).submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert resp.status_code == 422
    assert "at most 3 payments a day" in resp.text
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []


def test_other_ips_and_yesterday_do_not_count(live_app: LiveApp) -> None:
    add_attempts(live_app, 10, ip="203.0.113.9")
    seoul_midnight = day_start_utc(datetime.now(UTC), "Asia/Seoul")
    add_attempts(live_app, 10, created_at=seoul_midnight - timedelta(minutes=1))
    add_attempts(live_app, 2, status=AttemptStatus.PAID)
    add_attempts(live_app, 7, provider="teemopay_kr")  # not PayPro
    checkout = create_checkout(live_app.url)
    resp = Shopper(checkout["url"]).submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert resp.status_code == 303, resp.text


@pytest.mark.provider_config(paypro_kr={"ip_daily_attempts": 2, "ip_daily_successes": 1})
def test_limits_are_configurable_per_instance(live_app: LiveApp) -> None:
    """Two attempts through the real form (both refused by PayPro), then ours says no."""
    state = live_app.sandbox.state
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    for _ in range(2):
        state.inject_create_error("paypro", "9999", "Channel request error")
        assert shopper.submit(PAYPRO_KR.method, PAYPRO_KR.payer).status_code == 422
    resp = shopper.submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert resp.status_code == 422
    assert "at most 2 payment attempts a day" in resp.text
    assert len(get_checkout(live_app.url, checkout["id"])["payment_attempts"]) == 2
    assert state.take_injected_error("paypro") is None  # both errors were used: 2 calls only


def test_day_starts_at_local_midnight() -> None:
    now = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 01:30 on 2 March in Seoul
    assert day_start_utc(now, "Asia/Seoul") == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    # 10:30 on 1 March in Mexico City (UTC-6, no daylight saving since 2022).
    assert day_start_utc(now, "America/Mexico_City") == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    start = day_start_utc(now, "Asia/Seoul").astimezone(ZoneInfo("Asia/Seoul"))
    assert (start.hour, start.minute) == (0, 0)


# ---------------------------------------------------------------- rate limits
def checkout_count(live_app: LiveApp) -> int:
    with live_app.session() as session:
        return session.scalar(select(func.count(Checkout.id))) or 0


@pytest.mark.app_config(rate_limits={"checkout_form": "2/minute"})
def test_checkout_form_posts_are_limited_per_ip(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    form = {"csrf_token": "stale", "method": PAYPRO_KR.method, **PAYPRO_KR.payer}
    for _ in range(2):  # counted even when the form is refused
        refused = shopper.http.post(checkout["url"], data=form, timeout=10)
        assert refused.status_code == 422
        # No X-RateLimit-* for a shopper's browser (a second storage round trip per payment).
        assert not any(h.lower().startswith("x-ratelimit") for h in refused.headers)
    # A good form now: over the limit, so nothing is created or sent.
    resp = shopper.submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert resp.status_code == 429
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Too many payment attempts" in resp.text and "Nothing was charged" in resp.text
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []
    assert live_app.sandbox.state.orders == {}
    assert shopper.open(PAYPRO_KR.method).status_code == 200  # reading the page is not limited


@pytest.mark.app_config(rate_limits={"api": "3/minute"})
def test_api_is_limited_per_api_key(live_app: LiveApp) -> None:
    url = f"{live_app.url}/api/v1/checkouts"
    for _ in range(3):
        assert requests.get(url, params={"order_id": "x"}, headers=api_headers(), timeout=10).ok
    resp = requests.post(
        url,
        json={
            "order_id": "A-1",
            "amount": 15000,
            "currency": "KRW",
            "return_url": "https://shop.example/done",
        },
        headers=api_headers(),
        timeout=10,
    )
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.headers["X-RateLimit-Limit"] == "3"  # shops' calls carry the headers
    assert checkout_count(live_app) == 0
    # Another key (even of the same store) has its own allowance.
    other = requests.get(
        url, params={"order_id": "x"}, headers=api_headers(TEST_API_KEY_NEXT), timeout=10
    )
    assert other.status_code == 200


@pytest.mark.app_config(rate_limits={"notify": "2/minute"})
def test_notify_is_limited_per_instance_and_ip(live_app: LiveApp) -> None:
    for _ in range(2):
        resp = requests.post(f"{live_app.url}/notify/paypro_kr", data=b"{", timeout=10)
        assert resp.status_code == 400  # malformed, but stored and counted
    resp = requests.post(f"{live_app.url}/notify/paypro_kr", data=b"{", timeout=10)
    assert resp.status_code == 429
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.text == "Too Many Requests"
    with live_app.session() as session:
        assert session.scalar(select(func.count(NotifyMessage.id))) == 2  # the 429 stored nothing
    assert int(resp.headers["Retry-After"]) > 0
    # Another provider instance is counted apart.
    other = requests.post(f"{live_app.url}/notify/teemopay_kr", data=b"{", timeout=10)
    assert other.status_code == 400


def _paid_kakaopay(live_app: LiveApp) -> tuple[str, bytes, dict]:
    """A pending PayPro Korea attempt, and its genuine signed "paid" notify."""
    from tests.test_concurrent_notify import paid_notify

    secret = live_app.app.extensions["settings"].providers["paypro_kr"].settings["app_secret"]
    checkout = create_checkout(live_app.url, amount=15000, currency="KRW")
    assert Shopper(checkout["url"]).submit("kakaopay", KR_PAYER).status_code == 303
    with live_app.session() as session:
        attempt = session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.checkout_id == checkout["id"])
        ).one()
    body, headers = paid_notify(attempt.trade_no, attempt.platform_trade_no or "", secret)
    return checkout["id"], body, headers


def _verdicts(live_app: LiveApp) -> list[str]:
    with live_app.session() as session:
        return list(session.scalars(select(NotifyMessage.verdict).order_by(NotifyMessage.id)))


@pytest.mark.app_config(rate_limits={"notify": "30/minute"})
def test_genuine_duplicates_never_count_against_the_source(live_app: LiveApp) -> None:
    """31 copies of one genuine notify (a provider's retries) are no refusals: every one is
    acknowledged and stored, and the next genuine notify, for another order, is accepted
    (on main: the copies counted, and that notify was refused 429 and never stored)."""
    url = f"{live_app.url}/notify/paypro_kr"
    _first, body, headers = _paid_kakaopay(live_app)
    second, other_body, other_headers = _paid_kakaopay(live_app)
    answers = [requests.post(url, data=body, headers=headers, timeout=10) for _ in range(31)]
    assert {(r.status_code, r.text) for r in answers} == {(200, "OK")}
    resp = requests.post(url, data=other_body, headers=other_headers, timeout=10)
    assert (resp.status_code, resp.text) == (200, "OK")
    assert get_checkout(live_app.url, second)["status"] == "paid"
    assert _verdicts(live_app) == ["accepted"] + ["duplicate"] * 30 + ["accepted"]


@pytest.mark.app_config(rate_limits={"notify": "5/minute"})
def test_forged_flood_is_refused_bounded_and_never_delays_a_genuine_notify(
    live_app: LiveApp,
) -> None:
    """Forgeries count; over the limit they get 429 and are not stored, so the flood
    leaves at most the limit's worth of rows. A genuine notify from the very same source,
    in the middle of the flood, is verified and accepted at once."""
    url = f"{live_app.url}/notify/paypro_kr"
    checkout_id, body, headers = _paid_kakaopay(live_app)
    forged = body.replace(b'"sign": "', b'"sign": "0')  # the signature no longer matches
    assert forged != body
    flood = [requests.post(url, data=forged, headers=headers, timeout=10) for _ in range(20)]
    assert [r.status_code for r in flood] == [401] * 5 + [429] * 15
    assert all(int(r.headers["Retry-After"]) > 0 for r in flood[5:])
    resp = requests.post(url, data=body, headers=headers, timeout=10)
    assert (resp.status_code, resp.text) == (200, "OK")
    assert get_checkout(live_app.url, checkout_id)["status"] == "paid"
    more = [requests.post(url, data=forged, headers=headers, timeout=10) for _ in range(5)]
    assert {r.status_code for r in more} == {429}
    assert _verdicts(live_app) == ["bad_signature"] * 5 + ["accepted"]
    # The 429s are counted where operators look: the notify metric.
    metrics = requests.get(f"{live_app.url}/metrics", timeout=10).text
    assert 'checkout_notifies_total{provider="paypro_kr",verdict="rate_limited"} 20.0' in metrics


@pytest.mark.app_config(
    rate_limits={"notify": "100/minute", "notify_instance": "6/hour"}, proxy_fix_x_for=1
)
def test_a_forged_flood_from_many_addresses_is_bounded_per_instance(live_app: LiveApp) -> None:
    """Each address under its own limit, the instance's counter still caps what is stored;
    a genuine notify still passes."""
    url = f"{live_app.url}/notify/paypro_kr"
    checkout_id, body, headers = _paid_kakaopay(live_app)
    forged = body.replace(b'"sign": "', b'"sign": "0')
    codes = [
        requests.post(
            url, data=forged, headers={**headers, "X-Forwarded-For": f"203.0.113.{i}"}, timeout=10
        ).status_code
        for i in range(1, 16)
    ]
    assert codes == [401] * 6 + [429] * 9
    resp = requests.post(
        url, data=body, headers={**headers, "X-Forwarded-For": "203.0.113.99"}, timeout=10
    )
    assert (resp.status_code, resp.text) == (200, "OK")
    assert get_checkout(live_app.url, checkout_id)["status"] == "paid"
    assert _verdicts(live_app) == ["bad_signature"] * 6 + ["accepted"]
    # Another instance is counted apart.
    other = requests.post(f"{live_app.url}/notify/teemopay_kr", data=b"{", timeout=10)
    assert other.status_code == 400


def _app_config(tmp_path, teemopay_keys, **overrides):  # type: ignore[no-untyped-def]
    from tests.support.app_config import test_config

    config = test_config(
        sandbox_url="http://127.0.0.1:9",
        public_base_url="http://127.0.0.1:9",
        database_url=f"sqlite:///{tmp_path / 'limits.sqlite3'}",
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    config.update(overrides)
    return config


def _api_hits(app, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    client = app.test_client()
    return [
        client.get("/api/v1/checkouts", headers=api_headers()).status_code for _ in range(count)
    ]


def test_each_app_counts_from_zero(tmp_path, teemopay_keys) -> None:  # type: ignore[no-untyped-def]
    config = _app_config(tmp_path, teemopay_keys, rate_limits={"api": "2/minute"})
    first, second = create_app(config), create_app(config)
    # 400: no order_id given, which is enough to be counted.
    assert _api_hits(first, 3) == [400, 400, 429]
    assert _api_hits(second, 1) == [400]


def test_bad_rate_limit_config_stops_the_app(tmp_path, teemopay_keys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"rate_limits\.api"):
        create_app(_app_config(tmp_path, teemopay_keys, rate_limits={"api": "lots"}))
    with pytest.raises(ConfigError, match="unknown key"):
        create_app(_app_config(tmp_path, teemopay_keys, rate_limits={"pages": "1/second"}))


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_instances_share_limits_through_redis(tmp_path, teemopay_keys) -> None:  # type: ignore[no-untyped-def]
    import redis

    prefix = f"checkout-test-{secrets.token_hex(6)}"  # this test's keys only
    config = _app_config(
        tmp_path,
        teemopay_keys,
        rate_limit_storage_uri="redis://127.0.0.1:6379",
        rate_limit_key_prefix=prefix,
        rate_limits={"api": "2/minute"},
    )
    one, two = create_app(config), create_app(config)  # two instances, one Redis
    try:
        assert _api_hits(one, 2) == [400, 400]
        assert _api_hits(two, 1) == [429]  # the other instance's requests counted
    finally:
        client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
        keys = list(client.scan_iter(match=f"*{prefix}*", count=100))[:1000]
        if keys:
            client.delete(*keys)
        client.close()
