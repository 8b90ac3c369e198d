"""The operator console (/admin): login, CSRF, masking, search, actions; /healthz, /readyz."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from checkout.models import Checkout, Operator, OperatorAction, PaymentAttempt, StateEvent
from checkout.services.admin import create_operator
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
        found = http.get(f"{live_app.url}/admin/", params=query)
        assert data["id"] in found.text, query
        assert "1 checkout(s)" in found.text, query
    assert data["id"] not in http.get(f"{live_app.url}/admin/", params={"order_id": "x"}).text
    assert data["id"] not in http.get(f"{live_app.url}/admin/", params={"payer": "9999"}).text

    pages = [
        http.get(f"{live_app.url}/admin/checkouts/{data['id']}").text,
        http.get(f"{live_app.url}/admin/", params={"payer": KR_PAYER["email"]}).text,
        http.get(f"{live_app.url}/admin/", params={"payer": KR_PAYER["mobile"]}).text,
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
    assert get_checkout(live_app.url, checkout["id"])["status"] == "cancelled"
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
        assert (event.to_status, event.source) == ("cancelled", "operator")


def test_query_and_resend_record_the_operator(live_app: LiveApp) -> None:
    flow = FLOWS[4]  # TeemoPay VA: stays pending until the deposit
    checkout, _shopper, _resp = start(live_app, flow)
    add_operator(live_app, "carol")
    http = login(live_app, "carol")
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
        event = session.scalars(select(StateEvent)).first()
        assert event is not None
        from checkout.models import WebhookEvent

        webhook = session.scalars(select(WebhookEvent)).first()
        assert webhook is not None
    page = _post(http, live_app, checkout["id"], "query", target=attempt.trade_no)
    assert page.status_code == 200 and f"Query {attempt.trade_no}" in page.text
    page = _post(http, live_app, checkout["id"], "resend", target=webhook.public_id)
    assert page.status_code == 200 and "queued again" in page.text
    # Cancelling a checkout with a live attempt is refused and changes nothing.
    page = _post(http, live_app, checkout["id"], "cancel")
    assert "Not cancelled" in page.text
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"
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

    from checkout.services import admin as admin_service

    # A database that cannot answer the probe: not ready.
    monkeypatch.setattr(admin_service, "text", lambda _sql: sqlalchemy.text("SELECT * FROM nope"))
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

    from checkout.models import utcnow

    today = utcnow().date().isoformat()
    summary = runner.invoke(args=["daily-summary", "--date", today])
    assert summary.exit_code == 0, summary.output
    assert "shop\tpaypro_kr\t1\t1\t0\t0\tKRW 15000\tKRW 15000" in summary.output
    assert "waiting for review: 0" in summary.output


def test_login_is_rate_limited_per_ip_and_failures_are_logged_without_password(
    live_app: LiveApp, caplog: pytest.LogCaptureFixture
) -> None:
    add_operator(live_app)
    wrong = "wrong-password-7Qx9"
    for _ in range(10):  # the default [rate_limits] admin_login: 10/minute per IP
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


def _attempt_row(checkout_id: str, provider: str, latency_ms: int | None, **extra: object):  # type: ignore[no-untyped-def]
    from checkout.services.payments import new_trade_no

    return PaymentAttempt(
        checkout_id=checkout_id,
        trade_no=new_trade_no(),
        provider=provider,
        method="x",
        amount=15000,
        currency="KRW",
        status="pending",
        provider_latency_ms=latency_ms,
        **extra,
    )


def _provider_row(page: str, provider: str) -> str:
    start_at = page.index(f'id="provider-{provider}"')
    return page[start_at : page.index("</tr>", start_at)]


def test_providers_page_shows_create_latency_percentiles(live_app: LiveApp) -> None:
    from datetime import timedelta

    from checkout.models import utcnow

    # A real create call at Diamond Pay, slowed down by the sandbox: recorded on the attempt.
    live_app.sandbox.state.inject_fault("diamondpay", "slow", delay=0.4)
    diamond = next(f for f in FLOWS if f.name == "diamondpay_kr")
    start(live_app, diamond)
    with live_app.session() as session:
        [slow] = session.scalars(select(PaymentAttempt)).all()
        assert slow.provider_latency_ms is not None and 400 <= slow.provider_latency_ms < 5000
        slow_ms = slow.provider_latency_ms

    # paypro_kr: 20 attempts timed 10, 20, ... 200 ms, one not called yet, one from yesterday.
    checkout = create_checkout(live_app.url)
    with live_app.session() as session:
        for ms in range(10, 201, 10):
            session.add(_attempt_row(checkout["id"], "paypro_kr", ms))
        session.add(_attempt_row(checkout["id"], "paypro_kr", None))
        session.add(
            _attempt_row(
                checkout["id"], "paypro_kr", 99_999, created_at=utcnow() - timedelta(hours=25)
            )
        )
        session.commit()

    add_operator(live_app)
    page = login(live_app).get(f"{live_app.url}/admin/providers").text
    paypro = _provider_row(page, "paypro_kr")
    assert '<td class="num">21</td>' in paypro  # attempts in the last 24 h
    assert 'latency-p50">100 ms<' in paypro  # nearest rank: the 10th of 20
    assert 'latency-p95">190 ms<' in paypro  # the 19th of 20
    assert 'latency-samples">20<' in paypro
    diamond_row = _provider_row(page, "diamondpay_kr")
    assert f'latency-p50">{slow_ms} ms<' in diamond_row
    assert f'latency-p95">{slow_ms} ms<' in diamond_row
    teemopay = _provider_row(page, "teemopay_kr")
    assert 'latency-p50">—<' in teemopay and 'latency-samples">0<' in teemopay


def test_resent_event_counts_as_pending_since_the_resend(live_app: LiveApp) -> None:
    """A days-old event resent by an operator: the outbox's oldest age starts again at the
    resend, in /metrics and on the checkout page."""
    from datetime import timedelta

    from checkout.models import WebhookEvent, utcnow
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
