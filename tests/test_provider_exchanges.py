"""Every create and query call is kept per attempt, masked, and shown to operators."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from checkout.services.exchanges import mask_body
from checkout.store.models import PaymentAttempt, ProviderExchange
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, KR_PAYER, create_checkout
from tests.test_admin import _post, add_operator, login, paid_checkout
from tests.test_flows import start

PERSONAL = [KR_PAYER["first_name"], KR_PAYER["email"], KR_PAYER["mobile"], "Kim Minsu"]


def test_mask_body_hides_payer_details_and_signatures_and_keeps_the_rest() -> None:
    body = json.dumps(
        {
            "merchantNo": "M1000001",
            "amount": "15000",
            "payer": "Minsu Kim",
            "firstname": "Minsu",
            "mobile": "01012345678",
            "email": "minsu@example.com",
            "ipAddress": "203.0.113.7",
            "dateOfBirth": "1990-01-02",
            "sign": "9f86d081884c7d659a2feaa0c55ad015",
            "extra": {"api_token": "tok_live_abcdef", "phone": "01099998888", "note": "ok"},
        }
    ).encode()
    masked = json.loads(mask_body(body) or "")
    assert masked["merchantNo"] == "M1000001" and masked["amount"] == "15000"
    assert masked["payer"] == "M***" and masked["firstname"] == "M***"
    assert masked["mobile"] == "0***" and masked["email"] == "m***"
    assert masked["ipAddress"] == "2***" and masked["dateOfBirth"] == "1***"
    assert masked["sign"] == "***" and masked["extra"]["api_token"] == "***"
    assert masked["extra"]["phone"] == "0***" and masked["extra"]["note"] == "ok"
    # Not JSON (an HTML error page): masked as log text is.
    html = mask_body(b"<p>contact minsu@example.com or 010-1234-5678</p>") or ""
    assert "minsu@example.com" not in html and "1234-5678" not in html
    assert mask_body(None) is None
    assert mask_body(b"x" * 9000).endswith("(1000 more characters)")  # type: ignore[union-attr]


def test_create_call_is_kept_masked_and_shown(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)
    with live_app.session() as session:
        [exchange] = session.scalars(select(ProviderExchange)).all()
        attempt = session.scalars(select(PaymentAttempt)).one()
    assert exchange.attempt_id == attempt.id and exchange.operation == "create"
    assert exchange.provider == "paypro_kr" and exchange.http_method == "POST"
    assert exchange.response_status == 200 and exchange.outcome == "ok"
    assert exchange.duration_ms >= 0
    sent = json.loads(exchange.request_body or "")
    assert sent["amount"] == "15000" and sent["tradeNo"] == attempt.trade_no
    assert sent["firstname"] == "M***" and sent["mobile"] == "0***"
    assert sent["sign"] == "***"
    assert attempt.platform_trade_no and attempt.platform_trade_no in (exchange.response_body or "")
    for text in PERSONAL:
        assert text not in (exchange.request_body or "")

    add_operator(live_app)
    http = login(live_app)
    page = http.get(f"{live_app.url}/admin/checkouts/{checkout['id']}", timeout=10).text
    assert "Provider calls" in page and f"create · POST {exchange.path}" in page
    assert "&#34;sign&#34;: &#34;***&#34;" in page or '"sign": "***"' in page
    for text in PERSONAL:
        assert text not in page


def test_query_calls_are_kept_too(live_app: LiveApp) -> None:
    checkout, _shopper, _resp = start(live_app, FLOWS[4])  # TeemoPay VA: stays pending
    add_operator(live_app, "carol")
    http = login(live_app, "carol")
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
    page = _post(http, live_app, checkout["id"], "query", target=attempt.trade_no)
    assert page.status_code == 200
    with live_app.session() as session:
        calls = session.scalars(select(ProviderExchange).order_by(ProviderExchange.id)).all()
    assert [(c.operation, c.outcome) for c in calls] == [("create", "ok"), ("query", "ok")]
    assert calls[1].attempt_id == attempt.id and calls[1].response_body
    assert "query · POST" in page.text or "query · GET" in page.text


@pytest.mark.provider_config(paypro_kr={"read_timeout": 1.0})
def test_a_timed_out_create_is_kept_without_an_answer(live_app: LiveApp) -> None:
    live_app.sandbox.state.inject_fault("paypro", "read_timeout", delay=2.0)
    checkout = create_checkout(live_app.url, amount=15000, currency="KRW")
    from tests.support.shopper import Shopper

    Shopper(checkout["url"]).submit("kakaopay", KR_PAYER)
    with live_app.session() as session:
        [exchange] = session.scalars(select(ProviderExchange)).all()
        attempt = session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == "unknown"
    assert exchange.outcome == "timeout" and exchange.response_status is None
    assert exchange.response_body is None and exchange.request_body


def test_mask_body_knows_prefixed_personal_keys_and_hides_cookies() -> None:
    body = json.dumps(
        {
            "payerEmail": "minsu@example.com",
            "customer_mobile": "5512345678",
            "payerBirth": "1990-01-02",
            "accountHolder": "Kim Minsu",
            "Cookie": "session=abc",
            "merchantName": "Shop",
        }
    ).encode()
    masked = json.loads(mask_body(body) or "")
    assert masked["payerEmail"] == "m***" and masked["customer_mobile"] == "5***"
    assert masked["payerBirth"] == "1***" and masked["accountHolder"] == "K***"
    assert masked["Cookie"] == "***" and masked["merchantName"] == "Shop"
