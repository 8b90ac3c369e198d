"""The operator console (/admin): login, CSRF, masking, search, actions; /healthz, /readyz."""

from __future__ import annotations

import re
import time
from urllib.parse import quote, quote_plus, urljoin

import pytest
import requests
from sqlalchemy import select

from checkout.services.admin import create_operator
from checkout.store.models import (
    Checkout,
    Operator,
    OperatorAction,
    PaymentAttempt,
    ProviderExchange,
    StateEvent,
)
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, KR_PAYER, Shopper, create_checkout, get_checkout
from tests.test_flows import cashier_url, settle, start

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def add_operator(live_app: LiveApp, name: str = "alice") -> None:
    with live_app.session() as session:
        create_operator(session, name, PASSWORD)


def login(live_app: LiveApp, name: str = "alice", password: str = PASSWORD) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{live_app.url}/admin/login", timeout=10)
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    resp = http.post(
        f"{live_app.url}/admin/login",
        data={"csrf_token": token, "name": name, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    http.last_login = resp  # type: ignore[attr-defined]
    return http


def csrf_of(http: requests.Session, url: str) -> str:
    return CSRF_RE.search(http.get(url, timeout=10).text).group(1)  # type: ignore[union-attr]


def search(http: requests.Session, live_app: LiveApp, **fields: str) -> requests.Response:
    """Submit the checkouts search form (a POST with CSRF, redirected to a GET) as a browser
    does; the redirect's URL never carries what was typed as the payer."""
    token = csrf_of(http, f"{live_app.url}/admin/")
    resp = http.post(
        f"{live_app.url}/admin/", data={"csrf_token": token, **fields}, allow_redirects=False
    )
    assert resp.status_code == 303, resp.text
    location = resp.headers["Location"]
    payer = fields.get("payer")
    if payer:
        assert "pt=" in location and "payer=" not in location
        for form in (payer, quote(payer), quote_plus(payer), "".join(filter(str.isdigit, payer))):
            assert not form or form not in location or len(form) < 5, location
    return http.get(urljoin(f"{live_app.url}/admin/", location), timeout=10)


def flashes(page: str) -> list[str]:
    """The messages flashed on a page (what the operator is told happened)."""
    found = re.search(r'<ul class="flash">(.*?)</ul>', page, flags=re.S)
    return re.findall(r"<li>(.*?)</li>", found.group(1)) if found else []


def paid_checkout(live_app: LiveApp) -> dict:
    flow = FLOWS[0]  # KakaoPay via PayPro Korea, payer with e-mail and mobile
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    return get_checkout(live_app.url, checkout["id"])


PAGES = ["/admin/", "/admin/notifies", "/admin/providers", "/admin/checkouts/co_x"]
ACTIONS = ["query", "resend", "review", "resolve", "cancel"]


def test_every_page_and_action_needs_login(live_app: LiveApp) -> None:
    for path in PAGES:
        resp = requests.get(live_app.url + path, allow_redirects=False, timeout=10)
        assert resp.status_code == 302, path
        assert "/admin/login" in resp.headers["Location"]
    checkout = create_checkout(live_app.url)
    for action in [*ACTIONS]:
        resp = requests.post(
            f"{live_app.url}/admin/checkouts/{checkout['id']}/{action}",
            allow_redirects=False,
            timeout=10,
        )
        assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"], action
    resp = requests.post(f"{live_app.url}/admin/logout", allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert get_checkout(live_app.url, checkout["id"])["status"] == "open"


def test_login_refuses_bad_password_and_needs_csrf(live_app: LiveApp) -> None:
    add_operator(live_app)
    bad = login(live_app, password="wrong password!")
    assert bad.last_login.status_code == 401  # type: ignore[attr-defined]
    assert bad.get(f"{live_app.url}/admin/", allow_redirects=False).status_code == 302
    unknown = login(live_app, name="mallory")
    assert unknown.last_login.status_code == 401  # type: ignore[attr-defined]
    # No CSRF token: refused before the password is even looked at.
    no_token = requests.post(
        f"{live_app.url}/admin/login",
        data={"name": "alice", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert no_token.status_code == 400
    good = login(live_app)
    assert good.last_login.status_code == 302  # type: ignore[attr-defined]
    page = good.get(f"{live_app.url}/admin/")
    assert page.status_code == 200 and 'id="operator-name">alice<' in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    cookie = good.last_login.headers["Set-Cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    with live_app.session() as session:
        stored = session.scalars(select(Operator)).one()
        assert PASSWORD not in stored.password_hash and stored.last_login_at is not None
    # Logging out needs the token too, then ends the session.
    assert good.post(f"{live_app.url}/admin/logout").status_code == 400
    token = csrf_of(good, f"{live_app.url}/admin/")
    good.post(f"{live_app.url}/admin/logout", data={"csrf_token": token})
    assert good.get(f"{live_app.url}/admin/", allow_redirects=False).status_code == 302


def test_paid_checkout_page_masks_personal_data_and_search_finds_it(live_app: LiveApp) -> None:
    data = paid_checkout(live_app)
    add_operator(live_app)
    http = login(live_app)
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
        trade_no, platform_no = attempt.trade_no, attempt.platform_trade_no
    page = http.get(f"{live_app.url}/admin/checkouts/{data['id']}")
    assert page.status_code == 200
    assert trade_no in page.text and "accepted" in page.text  # the notify and its verdict
    assert "checkout.paid" in page.text  # the shop's webhook events
    assert 'id="timeline"' in page.text and ">notify<" in page.text
    assert "m***@example.com" in page.text and "*******5678" in page.text

    for query in (
        {"order_id": data["order_id"]},
        {"trade_no": trade_no},
        {"trade_no": platform_no},
        {"status": "paid", "provider": "paypro_kr", "store": "shop"},
        {"payer": KR_PAYER["email"]},
        {"payer": "5678"},  # the end of the mobile
    ):
        found = search(http, live_app, **query)
        assert data["id"] in found.text, query
        assert "1 checkout(s)" in found.text, query
    assert data["id"] not in search(http, live_app, order_id="x").text
    assert data["id"] not in search(http, live_app, payer="9999").text

    pages = [
        http.get(f"{live_app.url}/admin/checkouts/{data['id']}").text,
        search(http, live_app, payer=KR_PAYER["email"]).text,
        search(http, live_app, payer=KR_PAYER["mobile"]).text,
        http.get(f"{live_app.url}/admin/notifies").text,
        http.get(f"{live_app.url}/admin/notifies", params={"verdict": "accepted"}).text,
    ]
    for text in pages:
        assert KR_PAYER["email"] not in text
        assert KR_PAYER["mobile"] not in text and "010-1234-5678" not in text
        assert KR_PAYER["first_name"] not in text
    assert trade_no in pages[3] and trade_no in pages[4]
    assert trade_no not in http.get(f"{live_app.url}/admin/notifies?verdict=conflict").text

    providers = http.get(f"{live_app.url}/admin/providers").text
    assert 'id="provider-paypro_kr"' in providers and "sandbox" in providers
    assert "kakaopay" in providers and "0.0 %" in providers


def _post(http: requests.Session, live_app: LiveApp, checkout_id: str, action: str, **data: str):
    url = f"{live_app.url}/admin/checkouts/{checkout_id}"
    token = csrf_of(http, url)
    return http.post(f"{url}/{action}", data={"csrf_token": token, **data}, timeout=30)


def test_actions_need_csrf_and_change_nothing_without_it(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    add_operator(live_app)
    http = login(live_app)
    for action in ACTIONS:
        resp = http.post(
            f"{live_app.url}/admin/checkouts/{checkout['id']}/{action}",
            data={"target": "x", "reason": "r"},
            allow_redirects=False,
        )
        assert resp.status_code == 400, action
        bad = http.post(
            f"{live_app.url}/admin/checkouts/{checkout['id']}/{action}",
            data={"csrf_token": "forged", "target": "x"},
            allow_redirects=False,
        )
        assert bad.status_code == 400, action
    with live_app.session() as session:
        assert session.scalars(select(OperatorAction)).all() == []
        row = session.get(Checkout, checkout["id"])
        assert row is not None and row.status == "open" and row.review_reason is None


def test_review_resolve_cancel_record_the_operator(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    add_operator(live_app, "bob")
    http = login(live_app, "bob")
    page = _post(http, live_app, checkout["id"], "review", reason="customer called")
    assert page.status_code == 200 and "customer called (bob)" in page.text
    _post(http, live_app, checkout["id"], "resolve", reason="ok")
    page = _post(http, live_app, checkout["id"], "cancel")
    assert 'id="checkout-status">cancelled<' in page.text
    assert "Checkout cancelled (was open)." in page.text
    assert get_checkout(live_app.url, checkout["id"])["status"] == "cancelled"
    # The timeline names the operator who cancelled.
    timeline = page.text[page.text.index('id="timeline"') : page.text.index("</table>")]
    assert "by operator bob" in timeline
    with live_app.session() as session:
        actions = session.scalars(select(OperatorAction).order_by(OperatorAction.id)).all()
        assert [(a.operator, a.action) for a in actions] == [
            ("bob", "mark_review"),
            ("bob", "resolve_review"),
            ("bob", "cancel"),
        ]
        row = session.get(Checkout, checkout["id"])
        assert row is not None and row.review_reason is None
        event = session.scalars(select(StateEvent).order_by(StateEvent.id.desc())).first()
        assert event is not None
        assert (event.to_status, event.source, event.detail) == (
            "cancelled",
            "operator",
            "by operator bob",
        )


def test_stale_page_cancel_is_recorded_and_says_what_happened(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    add_operator(live_app)
    http = login(live_app)
    url = f"{live_app.url}/admin/checkouts/{checkout['id']}"
    stale_token = csrf_of(http, url)  # the page as it was, before anyone cancelled
    _post(http, live_app, checkout["id"], "cancel")
    again = http.post(f"{url}/cancel", data={"csrf_token": stale_token}, timeout=10)
    assert again.status_code == 200
    assert flashes(again.text) == ["Already cancelled; nothing changed."]
    with live_app.session() as session:
        actions = session.scalars(select(OperatorAction).order_by(OperatorAction.id)).all()
        assert [(a.action, a.detail) for a in actions] == [
            ("cancel", "Checkout cancelled (was open)."),
            ("cancel", "Already cancelled; nothing changed."),
        ]
        cancelled = session.scalars(
            select(StateEvent).where(StateEvent.to_status == "cancelled")
        ).all()
        assert len(cancelled) == 1  # one status change, two recorded actions


def test_query_and_resend_record_the_operator(live_app: LiveApp) -> None:
    flow = FLOWS[4]  # TeemoPay VA: stays pending until the deposit
    checkout, _shopper, _resp = start(live_app, flow)
    add_operator(live_app, "carol")
    http = login(live_app, "carol")
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
        event = session.scalars(select(StateEvent)).first()
        assert event is not None
        from checkout.store.models import WebhookEvent

        webhook = session.scalars(select(WebhookEvent)).first()
        assert webhook is not None
    page = _post(http, live_app, checkout["id"], "query", target=attempt.trade_no)
    assert page.status_code == 200 and f"Query {attempt.trade_no}" in page.text
    page = _post(http, live_app, checkout["id"], "resend", target=webhook.public_id)
    assert page.status_code == 200 and "queued again" in page.text
    with live_app.session() as session:
        actions = session.scalars(select(OperatorAction).order_by(OperatorAction.id)).all()
        assert [(a.operator, a.action) for a in actions] == [
            ("carol", "query_provider"),
            ("carol", "resend_webhook"),
        ]
        assert actions[0].target == attempt.trade_no
        refreshed = session.get(PaymentAttempt, attempt.id)
        assert refreshed is not None and refreshed.last_queried_at is not None
        assert session.get(WebhookEvent, webhook.id).status == "pending"  # type: ignore[union-attr]


def test_shopper_session_is_not_an_operator(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    shopper.open("kakaopay")
    assert shopper.http.get(f"{live_app.url}/admin/", allow_redirects=False).status_code == 302


def test_healthz_and_readyz(live_app: LiveApp, monkeypatch: pytest.MonkeyPatch) -> None:
    health = requests.get(f"{live_app.url}/healthz", timeout=10)
    assert health.status_code == 200 and health.text == "ok"
    assert requests.get(f"{live_app.url}/readyz", timeout=10).status_code == 200
    import sqlalchemy

    from checkout.services.admin import health

    # A database that cannot answer the probe: not ready.
    monkeypatch.setattr(health, "text", lambda _sql: sqlalchemy.text("SELECT * FROM nope"))
    assert requests.get(f"{live_app.url}/readyz", timeout=10).status_code == 503
    assert requests.get(f"{live_app.url}/healthz", timeout=10).status_code == 200


def test_create_operator_and_daily_summary_cli(live_app: LiveApp) -> None:
    paid_checkout(live_app)
    runner = live_app.app.test_cli_runner()
    result = runner.invoke(
        args=["create-operator", "dave", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "operator dave created" in result.output
    again = runner.invoke(
        args=["create-operator", "dave", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(args=["create-operator", "erin", "--password-stdin"], input="short\n")
    assert short.exit_code != 0
    assert login(live_app, "dave").last_login.status_code == 302  # type: ignore[attr-defined]

    from checkout.store.models import utcnow

    today = utcnow().date().isoformat()
    summary = runner.invoke(args=["daily-summary", "--date", today])
    assert summary.exit_code == 0, summary.output
    assert "shop\t1\t1\t0\t0\t0\t0\tKRW 15000\tKRW 15000" in summary.output
    assert "shop\tpaypro_kr\t1\t1\t0\t0\t0\tKRW 15000" in summary.output
    assert "waiting for review (checkouts of any day): 0" in summary.output


def test_daily_summary_counts_attempts_at_their_provider_and_shows_the_review_queue(
    live_app: LiveApp,
) -> None:
    """A checkout whose first attempt failed at PayPro and was paid at TeemoPay; an MXN
    checkout overpaid (flagged); an expired one; one from another day (not counted)."""
    from datetime import timedelta

    from checkout.domain.money import Money
    from checkout.sandbox.core import OrderStatus
    from checkout.store.models import utcnow

    state = live_app.sandbox.state
    teemo, mx_api = FLOWS[4], FLOWS[3]
    # 1. KRW 30000: PayPro answers 500 (attempt failed), then the shopper pays by TeemoPay VA.
    first = create_checkout(live_app.url, amount=30000, currency="KRW")
    shopper = Shopper(first["url"])
    state.inject_fault("paypro", "http_500")
    assert shopper.submit("kakaopay", KR_PAYER).status_code == 422
    resp = shopper.submit(teemo.method, teemo.payer)
    assert resp.status_code == 303, resp.text
    settle(live_app, cashier_url(live_app, teemo, resp, shopper), "pay")
    assert get_checkout(live_app.url, first["id"])["status"] == "paid"
    # 2. MXN 250.00, 300.00 received: paid, and flagged for review.
    second, _shopper, _resp = start(live_app, mx_api)
    order = next(o for o in state.orders.values() if o.amount.currency == "MXN")
    state.settle(order, OrderStatus.PAID, Money(30000, "MXN"))
    assert state.notifier.wait_idle(10)
    assert get_checkout(live_app.url, second["id"])["status"] == "paid"
    # 3. KRW 15000, nobody paid: past its deadline, expired by reconciliation.
    third = create_checkout(live_app.url)
    # 4. Created two days ago: not part of today's numbers.
    old = create_checkout(live_app.url, amount=99000)
    with live_app.session() as session:
        session.get(Checkout, third["id"]).expires_at = utcnow() - timedelta(minutes=1)  # type: ignore[union-attr]
        session.get(Checkout, old["id"]).created_at = utcnow() - timedelta(days=2)  # type: ignore[union-attr]
        session.commit()
    runner = live_app.app.test_cli_runner()
    assert runner.invoke(args=["reconcile", "--once"]).exit_code == 0
    assert get_checkout(live_app.url, third["id"])["status"] == "expired"

    result = runner.invoke(args=["daily-summary", "--date", utcnow().date().isoformat()])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "amounts in currency units" in lines[0]
    # Checkouts: 3 created today; 2 paid, 1 expired; due and paid per currency, in units.
    assert "shop\t3\t2\t0\t1\t0\t0\tKRW 45000, MXN 250.00\tKRW 30000, MXN 300.00" in lines
    assert any("each attempt counts at its own provider" in line for line in lines)
    # Attempts: the failure counts at PayPro, the payment at TeemoPay.
    assert "shop\tpaypro_kr\t1\t0\t1\t0\t0\t-" in lines
    assert "shop\tteemopay_kr\t1\t1\t0\t0\t0\tKRW 30000" in lines
    assert "shop\tpaypro_mx_api\t1\t1\t0\t0\t0\tMXN 300.00" in lines
    assert "waiting for review (checkouts of any day): 1" in lines
    [flagged] = [line for line in lines if second["id"] in line]
    assert "overpaid: 300.00 MXN received for 250.00 MXN" in flagged
    assert "99000" not in result.output


def _away_from_a_window_edge(window_seconds: int, margin: float = 30.0) -> None:
    """Sleep past the next window edge if it is under `margin` seconds away.

    The sliding-window counter weighs the previous window by how much of it is still in
    view, so ten refusals straddling an edge count as slightly fewer than ten.
    """
    left = window_seconds - time.time() % window_seconds
    if left < margin:
        time.sleep(left + 0.1)


@pytest.mark.app_config(rate_limits={"admin_login": "10/hour"})
def test_login_is_rate_limited_per_ip_and_failures_are_logged_without_password(
    live_app: LiveApp, caplog: pytest.LogCaptureFixture
) -> None:
    add_operator(live_app)
    wrong = "wrong-password-7Qx9"
    _away_from_a_window_edge(3600)
    for _ in range(10):  # [rate_limits] admin_login (default 10/minute) per IP
        assert login(live_app, password=wrong).last_login.status_code == 401  # type: ignore[attr-defined]
    # The 11th POST within the minute is refused before the password is checked, even the
    # right one; the form itself (GET) still shows.
    blocked = login(live_app).last_login  # type: ignore[attr-defined]
    assert blocked.status_code == 429
    assert re.fullmatch(r"[0-9a-f]{32}", blocked.headers["X-Request-Id"])  # refused, still traced
    assert "Too many login attempts" in blocked.text and int(blocked.headers["Retry-After"]) > 0
    assert "admin_operator_id" not in blocked.headers.get("Set-Cookie", "")
    assert requests.get(f"{live_app.url}/admin/login", timeout=10).status_code == 200
    with live_app.session() as session:
        assert session.scalars(select(Operator)).one().last_login_at is None
    # Only the login POST is limited: the same IP still reaches the shop API.
    assert create_checkout(live_app.url)["status"] == "open"

    refused = [r for r in caplog.records if r.getMessage().startswith("admin login refused")]
    assert len(refused) == 10
    assert all(
        "name='alice'" in r.getMessage() and "ip=127.0.0.1" in r.getMessage() for r in refused
    )
    assert any("rate limit" in r.getMessage() for r in caplog.records)
    assert wrong not in caplog.text and PASSWORD not in caplog.text


def _exchange_row(attempt_id: int, provider: str, ms: int, outcome: str = "ok", **extra: object):  # type: ignore[no-untyped-def]
    from checkout.store.models import ProviderExchange

    return ProviderExchange(
        attempt_id=attempt_id,
        provider=provider,
        operation="query",
        http_method="POST",
        path="/q",
        response_status=200 if outcome == "ok" else None,
        outcome=outcome,
        duration_ms=ms,
        **extra,
    )


def _calls_row(page: str, provider: str, window: str) -> str:
    start_at = page.index(f'id="calls-{provider}-{window}"')
    return page[start_at : page.index("</tr>", start_at)]


def test_providers_page_shows_calls_errors_and_latency_per_window(live_app: LiveApp) -> None:
    from datetime import timedelta

    from checkout.store.models import utcnow

    # A real create call at Diamond Pay, slowed down by the sandbox: one recorded call.
    live_app.sandbox.state.inject_fault("diamondpay", "slow", delay=0.4)
    diamond = next(f for f in FLOWS if f.name == "diamondpay_kr")
    start(live_app, diamond)
    with live_app.session() as session:
        [slow] = session.scalars(select(ProviderExchange)).all()
        assert slow.outcome == "ok" and 400 <= slow.duration_ms < 5000
        slow_ms, attempt_id = slow.duration_ms, slow.attempt_id

    # paypro_kr: in the last hour 20 calls of 10, 20, ... 200 ms, the last two failed (a
    # 5xx, a timeout); 3 hours ago 2 more ok calls; 25 hours ago one more: out of both windows.
    now = utcnow()
    with live_app.session() as session:
        for ms in range(10, 181, 10):
            session.add(_exchange_row(attempt_id, "paypro_kr", ms))
        session.add(_exchange_row(attempt_id, "paypro_kr", 190, "http_5xx"))
        session.add(_exchange_row(attempt_id, "paypro_kr", 200, "timeout"))
        for ms in (1000, 2000):
            session.add(
                _exchange_row(attempt_id, "paypro_kr", ms, created_at=now - timedelta(hours=3))
            )
        session.add(
            _exchange_row(attempt_id, "paypro_kr", 99_999, created_at=now - timedelta(hours=25))
        )
        session.commit()

    add_operator(live_app)
    page = login(live_app).get(f"{live_app.url}/admin/providers").text
    hour = _calls_row(page, "paypro_kr", "1h")
    assert 'class="num calls">20<' in hour and 'class="num errors">2<' in hour
    assert 'error-rate">10.0 %<' in hour
    assert 'class="outcomes">http_5xx 1, timeout 1<' in hour
    assert 'latency-p50">100 ms<' in hour  # nearest rank: the 10th of 20
    assert 'latency-p95">190 ms<' in hour  # the 19th of 20
    day = _calls_row(page, "paypro_kr", "24h")
    assert 'class="num calls">22<' in day and 'error-rate">9.1 %<' in day
    assert 'latency-p50">110 ms<' in day and 'latency-p95">1000 ms<' in day  # 11th, 21st of 22
    diamond_row = _calls_row(page, "diamondpay_kr", "1h")
    assert f'latency-p50">{slow_ms} ms<' in diamond_row
    assert 'error-rate">0.0 %<' in diamond_row
    teemopay = _calls_row(page, "teemopay_kr", "24h")
    assert 'class="num calls">0<' in teemopay and 'latency-p50">—<' in teemopay


@pytest.mark.provider_config(teemopay_kr={"read_timeout": 0.5})
def test_a_provider_timing_out_on_every_call_shows_100_percent_errors(live_app: LiveApp) -> None:
    """TeemoPay holds every answer past our read timeout: the create leaves the attempt
    unknown (not failed) and the operator's query times out too; both are errors."""
    flow = next(f for f in FLOWS if f.provider_type == "teemopay")
    live_app.sandbox.state.inject_fault("teemopay", "read_timeout", count=None, delay=1.5)
    live_app.sandbox.state.inject_fault(
        "teemopay", "read_timeout", endpoint="query", count=None, delay=1.5
    )
    checkout, _shopper, _resp = start(live_app, flow)
    [attempt] = get_checkout(live_app.url, checkout["id"])["payment_attempts"]
    assert attempt["status"] == "unknown"
    add_operator(live_app)
    http = login(live_app)
    _post(http, live_app, checkout["id"], "query", target=attempt["trade_no"])
    page = http.get(f"{live_app.url}/admin/providers").text
    for window in ("1h", "24h"):
        row = _calls_row(page, "teemopay_kr", window)
        assert 'class="num calls">2<' in row and 'error-rate">100.0 %<' in row, row
        assert 'class="outcomes">timeout 2<' in row


def test_resent_event_counts_as_pending_since_the_resend(live_app: LiveApp) -> None:
    """A days-old event resent by an operator: the outbox's oldest age starts again at the
    resend, in /metrics and on the checkout page."""
    from datetime import timedelta

    from checkout.store.models import WebhookEvent, utcnow
    from tests.test_observability import scrape, value

    data = paid_checkout(live_app)
    three_days_ago = utcnow() - timedelta(days=3)
    with live_app.session() as session:
        for event in session.scalars(select(WebhookEvent)):
            # As if the worker delivered them all three days ago.
            event.created_at = event.pending_since = three_days_ago
            event.status, event.delivered_at = "delivered", three_days_ago
        session.commit()
        paid = session.scalars(
            select(WebhookEvent).where(WebhookEvent.type == "checkout.paid")
        ).one()
    assert value(scrape(live_app.url), "checkout_outbox_pending_events") == 0
    add_operator(live_app)
    http = login(live_app)
    page = _post(http, live_app, data["id"], "resend", target=paid.public_id)
    assert "queued again" in page.text
    series = scrape(live_app.url)
    assert value(series, "checkout_outbox_pending_events") == 1
    age = value(series, "checkout_outbox_oldest_pending_age_seconds")
    assert age is not None and 0 <= age < 120  # not three days
    with live_app.session() as session:
        event = session.get(WebhookEvent, paid.id)
        assert event is not None and event.created_at == three_days_ago
        assert utcnow() - event.pending_since < timedelta(minutes=2)
    table = page.text[page.text.index('id="webhooks"') :]
    row = table[table.index(paid.public_id) :]
    assert "pending since" in row[: row.index("</tr>")]


def test_cancel_while_pending_keeps_late_money_and_refuses_anything_paid(
    live_app: LiveApp,
) -> None:
    """An operator cancels a checkout whose VA is still live with nothing paid; the shopper
    deposits anyway: the money is kept on the cancelled checkout and flagged. A paid
    checkout cannot be cancelled."""
    flow = FLOWS[4]  # TeemoPay VA: pending until the deposit
    checkout, shopper, resp = start(live_app, flow)
    add_operator(live_app, "carol")
    http = login(live_app, "carol")
    page = _post(http, live_app, checkout["id"], "cancel")
    assert "Checkout cancelled (was pending)." in page.text
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "cancelled" and data["payment_attempts"][0]["status"] == "pending"

    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "cancelled" and data["amount_paid"] == flow.amount
    assert data["payment_attempts"][0]["status"] == "paid"
    assert "arrived while cancelled" in (data["review_reason"] or "")

    paid = paid_checkout(live_app)
    page = _post(http, live_app, paid["id"], "cancel")
    assert "Not cancelled: Only an open or pending checkout with nothing paid" in page.text
    assert get_checkout(live_app.url, paid["id"])["status"] == "paid"
    with live_app.session() as session:
        refused = session.scalars(
            select(OperatorAction).where(OperatorAction.checkout_id == paid["id"])
        ).one()
        assert refused.action == "cancel" and (refused.detail or "").startswith("Not cancelled")


def test_customer_paid_but_order_open_is_fixed_by_querying_the_failed_attempt(
    live_app: LiveApp,
) -> None:
    """PayPro took the payment but its create answer came back cut in half: the attempt
    failed, the checkout reopened. The shopper paid on the cashier; the notify was lost.
    The operator opens the checkout and clicks "Query the provider now" on the failed
    attempt: the money is kept, the checkout paid, the shop's webhook queued, and the
    checkout flagged for review."""
    from checkout.sandbox.core import OrderStatus
    from checkout.store.models import WebhookEvent
    from tests.test_reconcile import DEAD_URL

    flow = FLOWS[0]  # KakaoPay via PayPro Korea
    state = live_app.sandbox.state
    state.inject_fault("paypro", "truncated_json")  # PayPro acts; its answer is unreadable
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    assert Shopper(checkout["url"]).submit(flow.method, flow.payer).status_code == 422
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "open" and data["payment_attempts"][0]["status"] == "failed"
    [order] = state.orders.values()
    order.notify_url = DEAD_URL
    state.settle(order, OrderStatus.PAID, order.amount)
    assert state.notifier.wait_idle(10)
    assert get_checkout(live_app.url, checkout["id"])["status"] == "open"  # the notify was lost

    add_operator(live_app)
    http = login(live_app)
    trade_no = data["payment_attempts"][0]["trade_no"]
    page = http.get(f"{live_app.url}/admin/checkouts/{checkout['id']}").text
    section = page[page.index('class="attempt"') :]
    assert "Query the provider now" in section  # offered on the failed attempt too
    page = _post(http, live_app, checkout["id"], "query", target=trade_no)
    assert f"Query {trade_no}: failed -&gt; paid" in page.text
    assert 'id="checkout-status">paid<' in page.text
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == flow.amount
    assert data["review_reason"] == "paid after failed"
    assert data["payment_attempts"][0]["review_reason"] == "paid after failed"
    assert data["events"][-2:] == [
        {
            **data["events"][-2],
            "kind": "attempt",
            "from": "failed",
            "to": "paid",
            "source": "query",
        },
        {**data["events"][-1], "kind": "checkout", "from": "open", "to": "paid", "source": "query"},
    ]
    with live_app.session() as session:
        paid_event = session.scalars(
            select(WebhookEvent).where(WebhookEvent.type == "checkout.paid")
        ).one()
        assert paid_event.status == "pending"
        assert paid_event.payload["data"]["review_reason"] == "paid after failed"
        action = session.scalars(select(OperatorAction)).one()
        assert (action.operator, action.action, action.target) == (
            "alice",
            "query_provider",
            trade_no,
        )
        assert (action.detail or "").startswith("failed -> paid")


def test_an_attempt_flag_flags_its_checkout_for_the_list_filter_and_resolve(
    live_app: LiveApp,
) -> None:
    """The shopper pays more than due: the attempt is flagged "overpaid", and so is its
    checkout; the list shows it, the "needs review" filter finds it, Resolve clears both."""
    from checkout.domain.money import Money
    from checkout.sandbox.core import OrderStatus

    flow = FLOWS[0]
    checkout, _shopper, _resp = start(live_app, flow)
    other = create_checkout(live_app.url)  # not flagged
    [order] = live_app.sandbox.state.orders.values()
    live_app.sandbox.state.settle(order, OrderStatus.PAID, Money(20000, "KRW"))
    assert live_app.sandbox.state.notifier.wait_idle(10)
    data = get_checkout(live_app.url, checkout["id"])
    trade_no = data["payment_attempts"][0]["trade_no"]
    reason = f"attempt {trade_no}: overpaid: 20000 KRW received for 15000 KRW"
    assert data["status"] == "paid" and data["review_reason"] == reason

    add_operator(live_app)
    http = login(live_app)
    listed = http.get(f"{live_app.url}/admin/").text
    row = listed[listed.index(checkout["id"]) :]
    assert reason in row[: row.index("</tr>")]  # the Review column
    flagged = http.get(f"{live_app.url}/admin/", params={"review": "1"}).text
    assert checkout["id"] in flagged and other["id"] not in flagged
    assert "1 checkout(s)" in flagged

    page = _post(http, live_app, checkout["id"], "resolve", reason="refunded the difference")
    assert flashes(page.text) == ["Review resolved by alice."]
    assert checkout["id"] not in http.get(f"{live_app.url}/admin/", params={"review": "1"}).text
    with live_app.session() as session:
        row_ = session.get(Checkout, checkout["id"])
        assert row_ is not None and row_.review_reason is None
        assert all(a.review_reason is None for a in row_.attempts)
        action = session.scalars(select(OperatorAction)).one()
        assert (action.operator, action.action) == ("alice", "resolve_review")
        assert (action.detail or "").startswith(f"resolved by alice: {reason}")
        assert "note: refunded the difference" in (action.detail or "")


def test_payer_search_is_normalised_posted_and_never_in_a_url(live_app: LiveApp) -> None:
    data = paid_checkout(live_app)  # payer minsu@example.com, 01012345678
    add_operator(live_app)
    http = login(live_app)
    for typed in (
        "MINSU@Example.COM",  # e-mail: any case
        "  minsu@example.com ",
        "EXAMPLE.COM",  # the end of the e-mail
        "010-1234-5678",  # mobile: as people type it
        "010 1234 5678",
        "+82 10-1234-5678",  # with the country code
        "(5678)",
    ):
        found = search(http, live_app, payer=typed)
        assert data["id"] in found.text and "1 checkout(s)" in found.text, typed
        assert "minsu@example.com" not in found.text.lower()
    assert "0 checkout(s)" in search(http, live_app, payer="other@example.com").text
    assert "0 checkout(s)" in search(http, live_app, payer="010-9999-5678").text
    # The search form needs its CSRF token; a typed payer in the URL is not a search.
    refused = http.post(f"{live_app.url}/admin/", data={"payer": "minsu@example.com"})
    assert refused.status_code == 400
    plain = http.get(f"{live_app.url}/admin/", params={"payer": "nobody@example.com"})
    assert data["id"] in plain.text and "nobody" not in plain.text  # ignored, not echoed
    # A forged or expired token shows nothing (never every checkout), and says so.
    forged = http.get(f"{live_app.url}/admin/", params={"pt": "not-a-token"})
    assert 'id="payer-expired"' in forged.text and data["id"] not in forged.text


def _bare_checkout(session, store: str, created_at, email: str | None = None, **extra):  # type: ignore[no-untyped-def]
    """A checkout row (and, with `email`, one attempt by that payer) for search tests."""
    from datetime import timedelta

    from checkout.services.payments import new_trade_no
    from checkout.store.models import Store

    if session.get(Store, store) is None:
        session.add(Store(id=store, name=store))
    checkout = Checkout(
        store_id=store, order_id=f"o-{new_trade_no()[-10:]}", amount=15000, currency="KRW",
        amount_paid=0, return_url="https://shop.example/", status="open",
        expires_at=created_at + timedelta(hours=1), created_at=created_at, **extra,
    )  # fmt: skip
    session.add(checkout)
    session.flush()
    if email:
        session.add(
            PaymentAttempt(
                checkout_id=checkout.id, trade_no=new_trade_no(), provider="paypro_kr",
                method="kakaopay", amount=15000, currency="KRW", status="failed",
                payer_email=email, created_at=created_at,
            )
        )  # fmt: skip
    return checkout


def test_search_by_date_range_store_alone_and_pages_keep_the_payer_token(
    live_app: LiveApp,
) -> None:
    from datetime import UTC, datetime, timedelta

    days = [datetime(2026, 3, d, 12, tzinfo=UTC) for d in (1, 2, 3, 4)]
    with live_app.session() as session:
        by_day = [_bare_checkout(session, "shop", day).id for day in days]
        other_store = _bare_checkout(session, "other", days[1]).id
        # 55 checkouts by one payer, newest last; 3 by someone else.
        pager = [
            _bare_checkout(
                session, "shop", days[3] + timedelta(minutes=i), email="Pager@Example.com"
            ).id
            for i in range(55)
        ]
        for i in range(3):
            _bare_checkout(session, "shop", days[3], email=f"else{i}@example.com")
        session.commit()
    add_operator(live_app)
    http = login(live_app)

    # A date range: from the 2nd to the 3rd (UTC days, both included).
    found = search(http, live_app, date_from="2026-03-02", date_to="2026-03-03").text
    assert "3 checkout(s)" in found
    assert by_day[1] in found and by_day[2] in found and other_store in found
    assert by_day[0] not in found and by_day[3] not in found
    # A store alone.
    found = search(http, live_app, store="other").text
    assert "1 checkout(s)" in found and other_store in found and by_day[1] not in found

    # 55 by the payer: page 1 has the 50 newest, its "next" link carries only the token.
    first = search(http, live_app, payer="pager@example.com")
    assert "55 checkout(s)" in first.text and "page 1 of 2" in first.text
    assert first.text.count("/admin/checkouts/co_") == 50
    assert pager[-1] in first.text and pager[0] not in first.text
    [next_href] = re.findall(r'<a href="([^"]+)">next</a>', first.text)
    next_href = next_href.replace("&amp;", "&")
    assert "pt=" in next_href and "page=2" in next_href and "pager" not in next_href.lower()
    second = http.get(urljoin(f"{live_app.url}/admin/", next_href)).text
    assert "page 2 of 2" in second and second.count("/admin/checkouts/co_") == 5
    assert all(pid in second for pid in pager[:5]) and pager[5] not in second
    assert "else0" not in second


def test_forged_notify_claiming_a_checkout_shows_on_it_unverified_and_masked(
    live_app: LiveApp,
) -> None:
    """A notify with a bad signature names a live attempt's trade number and carries a
    payer's name, birth date, e-mail, mobile, a signature and a token: it shows on that
    checkout (marked unverified) and in the inbox's trade-number filter, with our answer,
    and none of those values appears in clear; nor does the payer's IP."""
    import json

    from checkout.store.models import WebhookDelivery, WebhookEvent

    flow = FLOWS[0]
    checkout, _shopper, _resp = start(live_app, flow)
    [attempt] = get_checkout(live_app.url, checkout["id"])["payment_attempts"]
    trade_no = attempt["trade_no"]
    secrets_ = {
        "name": "Quokkarina Zeldovich",
        "birth": "1987-11-23",
        "email": "zelda.quokka@example.org",
        "mobile": "01098765432",
        "sign": "5e1f0c0ffee5e1f0c0ffee5e1f0c0ffee",
        "token": "forged-token-a8b7c6d5e4",
        "header_sign": "hdrsig-77aa88bb99cc",
    }
    body = {
        "tradeNo": trade_no,
        "status": "SUCCESS",
        "amount": "15000",
        "payerName": secrets_["name"],
        "birthDate": secrets_["birth"],
        "payerEmail": secrets_["email"],
        "payerMobile": secrets_["mobile"],
        "sign": secrets_["sign"],
    }
    forged = requests.post(
        f"{live_app.url}/notify/{flow.instance}",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {secrets_['token']}",
            "Sign": secrets_["header_sign"],
        },
        timeout=10,
    )
    assert forged.status_code == 401
    # A shop's answer to a webhook, with personal data in it.
    with live_app.session() as session:
        event = session.scalars(
            select(WebhookEvent).where(WebhookEvent.checkout_id == checkout["id"])
        ).first()
        assert event is not None
        shop_answer = {"customer_name": secrets_["name"], "session_token": secrets_["token"]}
        session.add(
            WebhookDelivery(
                event_id=event.id, status_code=500, response_body=json.dumps(shop_answer)
            )
        )
        session.commit()

    add_operator(live_app)
    http = login(live_app)
    page = http.get(f"{live_app.url}/admin/checkouts/{checkout['id']}").text
    notifies_table = page[page.index('<table id="notifies">') :]
    notifies_table = notifies_table[: notifies_table.index("</table>")]
    assert trade_no in notifies_table and "bad_signature" in notifies_table
    assert "claimed, unverified" in notifies_table
    assert "401" in notifies_table and "bad signature" in notifies_table  # our answer
    assert "Authorization" in notifies_table and "payerName" in notifies_table  # shown, masked
    [payer] = re.findall(r"<dt>Payer</dt><dd>(.*?)</dd>", page)
    assert "127.0.0.1" not in payer and payer.endswith("· 1***")  # the payer's IP, masked

    inbox = http.get(f"{live_app.url}/admin/notifies", params={"trade_no": trade_no}).text
    assert "1 notify message(s)" in inbox and checkout["id"] in inbox
    assert "named, not applied" in inbox
    other = http.get(f"{live_app.url}/admin/notifies", params={"trade_no": "nope"}).text
    assert "0 notify message(s)" in other
    everything = http.get(f"{live_app.url}/admin/notifies").text
    for text in (page, inbox, everything):
        for key, value in secrets_.items():
            assert value not in text, key
        assert "Quokkarina" not in text and "Zeldovich" not in text
        assert "19871123" not in text and "1098765432" not in text


def _signed_in(http: requests.Session, live_app: LiveApp) -> bool:
    resp = http.get(f"{live_app.url}/admin/", allow_redirects=False, timeout=10)
    assert resp.status_code in (200, 302)
    return resp.status_code == 200


def test_deactivate_reactivate_and_reset_password_from_the_cli(live_app: LiveApp) -> None:
    add_operator(live_app)
    runner = live_app.app.test_cli_runner()
    http = login(live_app)
    assert _signed_in(http, live_app)

    # Deactivated: the open session ends at its next request, and login is refused.
    result = runner.invoke(args=["deactivate-operator", "alice"])
    assert result.exit_code == 0 and "operator alice deactivated" in result.output
    assert not _signed_in(http, live_app)
    assert login(live_app).last_login.status_code == 401  # type: ignore[attr-defined]
    result = runner.invoke(args=["reactivate-operator", "alice"])
    assert result.exit_code == 0 and "operator alice reactivated" in result.output
    http = login(live_app)
    assert _signed_in(http, live_app)

    # A new password from standard input: the old one no longer works, and the session
    # opened with it ends.
    new = "a brand new passphrase"
    result = runner.invoke(
        args=["reset-operator-password", "alice", "--password-stdin"], input=new + "\n"
    )
    assert result.exit_code == 0 and "password of operator alice reset" in result.output
    assert not _signed_in(http, live_app)
    assert login(live_app).last_login.status_code == 401  # type: ignore[attr-defined]
    assert _signed_in(login(live_app, password=new), live_app)
    short = runner.invoke(
        args=["reset-operator-password", "alice", "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    for command in ("deactivate-operator", "reactivate-operator"):
        unknown = runner.invoke(args=[command, "mallory"])
        assert unknown.exit_code != 0 and "no operator named 'mallory'" in unknown.output
    assert (
        runner.invoke(
            args=["reset-operator-password", "mallory", "--password-stdin"], input=new + "\n"
        ).exit_code
        != 0
    )
    with live_app.session() as session:
        assert session.scalars(select(Operator)).one().active is True


class Clock:
    """The console's clock, moved by the test (the app reads ADMIN_CLOCK)."""

    def __init__(self) -> None:
        from checkout.store.models import utcnow

        self.now = utcnow()

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


def test_sessions_end_after_30_idle_minutes_and_12_hours_from_login(live_app: LiveApp) -> None:
    clock = Clock()
    live_app.app.config["ADMIN_CLOCK"] = clock
    add_operator(live_app)

    # Idle: 29 minutes between requests is fine, however often; 31 is not.
    http = login(live_app)
    for _ in range(3):
        clock.advance(minutes=29)
        assert _signed_in(http, live_app)
    clock.advance(minutes=31)
    assert not _signed_in(http, live_app)
    page = http.get(f"{live_app.url}/admin/providers", allow_redirects=False)
    assert page.status_code == 302 and "/admin/login" in page.headers["Location"]

    # Absolute: busy all day, a request every 25 minutes, still over at 12 hours.
    http = login(live_app)
    elapsed = 0
    while elapsed + 25 <= 12 * 60:
        clock.advance(minutes=25)
        elapsed += 25
        assert _signed_in(http, live_app), elapsed
    clock.advance(minutes=25)  # 12 h 5 min after login
    assert not _signed_in(http, live_app)
    assert _signed_in(login(live_app), live_app)  # logging in again starts a new session
