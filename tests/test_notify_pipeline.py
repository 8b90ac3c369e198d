"""One notify pipeline for pay-ins and payouts (issue 22 item 2) and stale running totals
(issue 25 item 3).

Route, read once (verify and parse), decide, write, answer: the same verdict table, metric
labels, inbox rows and unverified-source counting on `/notify/<instance>` (PayPro's one URL
carries pay-in and payout results) and on `/notify/<instance>/payout`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from sqlalchemy import event, select
from sqlalchemy.orm import Session as OrmSession

from checkout import jsonsafe
from checkout.domain.ledger import Verdict
from checkout.providers.paypro import signing
from checkout.services.provider_notifies import payout_inbound, receive_notify
from checkout.store.models import Checkout, NotifyMessage, PaymentAttempt, WebhookEvent
from checkout.web.notify import payouts_of
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, get_checkout
from tests.test_flows import cashier_url, settle, start
from tests.test_refunds_api import REFUND_KEY
from tests.test_refunds_worker import new_refund, run_round, wait_status

KR_PAYOUT_NO = "PO20261207010203a1b2c3d4e5f60718"


def _secret(live_app: LiveApp) -> str:
    return live_app.app.extensions["settings"].providers["paypro_kr"].settings["app_secret"]


def _paypro_body(live_app: LiveApp, trade_no: str, *, forged: bool = False) -> bytes:
    """A PayPro notify (pay-in or payout: one shape, one URL), signed like PayPro's."""
    fields: dict[str, Any] = {
        "status": "0000",
        "message": "success",
        "platFormTradeNo": "PP" + trade_no[-12:],
        "tradeNo": trade_no,
        "amount": "5000",
        "timestamp": 1765069200000,
    }
    fields[signing.SIGN_FIELD] = signing.sign(fields, _secret(live_app))
    if forged:
        fields["amount"] = "5000000"  # the signature no longer matches
    return json.dumps(fields).encode()


def _metrics(live_app: LiveApp) -> str:
    return requests.get(f"{live_app.url}/metrics", timeout=10).text


def _notify_rows(live_app: LiveApp) -> list[NotifyMessage]:
    with live_app.session() as session:
        rows = list(session.scalars(select(NotifyMessage).order_by(NotifyMessage.id)))
        for row in rows:
            session.expunge(row)
        return rows


def _headers(row: NotifyMessage) -> dict[str, str]:
    dropped = ("content-length", "host")
    return {k: v for k, v in row.headers.items() if k.lower() not in dropped}


# ---------------------------------------------------------------- the verdict table
@pytest.mark.parametrize("instance", ["teemopay_kr", "diamondpay_kr", "paypro_kr"])
def test_a_payout_notify_with_a_bad_signature_answers_401_like_a_pay_in(
    live_app: LiveApp, instance: str
) -> None:
    """README's verdict table: bad_signature is 401. On main the payout path answered 400."""
    forged = json.dumps(
        {
            "merchantOrderNo": KR_PAYOUT_NO,
            "payout_cl_id": KR_PAYOUT_NO,
            "tradeNo": KR_PAYOUT_NO,
            "status": 2,
            "amount": "10000",
            "platform_id": "PF0002",
            "sign": "0" * 32,
        }
    ).encode()
    resp = requests.post(
        f"{live_app.url}/notify/{instance}/payout",
        data=forged,
        headers={"Content-Type": "application/json", "appCode": "x"},
        timeout=10,
    )
    assert (resp.status_code, resp.text) == (401, "bad signature")
    [row] = _notify_rows(live_app)
    assert (row.provider, row.verdict, row.response_status) == (instance, "bad_signature", 401)
    assert row.response_body == "bad signature"


# ---------------------------------------------------------------- read once
@pytest.mark.parametrize(
    ("kind", "forged", "status"),
    [
        ("payin", False, 404),  # genuine, for no attempt of ours: unknown_trade
        ("payout", False, 404),  # genuine payout result on the pay-in URL: unknown_trade
        ("payin", True, 401),
        ("payout", True, 401),
    ],
)
def test_a_paypro_notify_body_is_parsed_once(
    live_app: LiveApp, monkeypatch: pytest.MonkeyPatch, kind: str, forged: bool, status: int
) -> None:
    """Route, verify, map and store with one parse of the body (on main: up to four, the
    router's unverified read, the parser, the inbox's claimed number, the re-verify)."""
    trade_no = KR_PAYOUT_NO if kind == "payout" else "26120701020300001"
    body = _paypro_body(live_app, trade_no, forged=forged)
    parses: list[object] = []
    real_loads = jsonsafe.loads

    def counting_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if text in (body, body.decode()):
            parses.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(jsonsafe, "loads", counting_loads)
    resp = live_app.app.test_client().post(
        "/notify/paypro_kr", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == status, resp.text
    assert len(parses) == 1
    [row] = _notify_rows(live_app)
    assert row.claimed_trade_no == trade_no  # the inbox still shows what it names


@pytest.mark.parametrize(
    ("instance", "key"), [("teemopay_kr", "merchantOrderNo"), ("diamondpay_kr", "payment_cl_id")]
)
def test_a_forged_notify_is_parsed_once_and_shows_what_it_claims(
    live_app: LiveApp, monkeypatch: pytest.MonkeyPatch, instance: str, key: str
) -> None:
    body = json.dumps({key: "26120701020300002", "status": 2, "sign": "0" * 64}).encode()
    parses: list[object] = []
    real_loads = jsonsafe.loads

    def counting_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        parses.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(jsonsafe, "loads", counting_loads)
    resp = live_app.app.test_client().post(f"/notify/{instance}", data=body)
    assert resp.status_code == 401 and len(parses) == 1
    [row] = _notify_rows(live_app)
    assert (row.verdict, row.claimed_trade_no) == ("bad_signature", "26120701020300002")


@pytest.mark.app_config(rate_limits={"notify": "1/minute"})
def test_an_unverified_notify_over_the_limit_is_parsed_once_too(
    live_app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _paypro_body(live_app, KR_PAYOUT_NO, forged=True)
    client = live_app.app.test_client()
    first = client.post("/notify/paypro_kr", data=body)
    assert first.status_code == 401
    parses: list[object] = []
    real_loads = jsonsafe.loads

    def counting_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        parses.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(jsonsafe, "loads", counting_loads)
    refused = client.post("/notify/paypro_kr", data=body)
    assert refused.status_code == 429 and len(parses) == 1
    assert len(_notify_rows(live_app)) == 1  # a 429 stores nothing


# ---------------------------------------------------------------- same verdicts, metrics, inbox
@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
@pytest.mark.app_config(
    rate_limits={"notify": "2/minute"}, refunds={"approval_thresholds": {"KRW": 100_000}}
)
def test_payout_notifies_share_the_verdicts_metrics_inbox_and_limit(live_app: LiveApp) -> None:
    """A payout notify's verdict is a `Verdict`, counted in checkout_notifies_total like a
    pay-in's, stored with the same columns (trade and claimed number, our answer), and a
    forged one counts against its source like a pay-in's (on main: no metric, no claimed
    number, 400 for a bad signature)."""
    public_id = new_refund(live_app)
    run_round(live_app)
    refund = wait_status(live_app, public_id, "sent")  # its payout notify, accepted
    payout_rows = [r for r in _notify_rows(live_app) if r.trade_no == refund.payout_no]
    assert [r.verdict for r in payout_rows] == ["accepted"]
    accepted = payout_rows[0]
    assert accepted.claimed_trade_no == refund.payout_no
    assert (accepted.response_status, accepted.response_body) == (200, "SUCCESS")
    metrics = _metrics(live_app)
    assert 'checkout_notifies_total{provider="teemopay_kr",verdict="accepted"}' in metrics

    # The same payout notify again: a duplicate, acknowledged exactly as TeemoPay expects.
    again = requests.post(
        f"{live_app.url}/notify/teemopay_kr/payout",
        data=accepted.body.encode(),
        headers=_headers(accepted),
        timeout=10,
    )
    assert (again.status_code, again.text) == (200, "SUCCESS")
    assert _notify_rows(live_app)[-1].verdict == "duplicate"

    # The service answers the one enum, whichever the URL.
    payouts = payouts_of(live_app.app, "teemopay_kr")
    assert payouts is not None
    with live_app.session() as session:
        answer = receive_notify(
            session,
            payout_inbound("teemopay_kr", payouts),
            _headers(accepted),
            accepted.body.encode(),
            "127.0.0.1",
        )
    assert answer.verdict is Verdict.DUPLICATE

    # Forged payout notifies count against their source: 2 a minute, then 429.
    forged = accepted.body.replace('"status":', '"forged":1,"status":', 1).encode()
    answers = [
        requests.post(
            f"{live_app.url}/notify/teemopay_kr/payout",
            data=forged,
            headers=_headers(accepted),
            timeout=10,
        ).status_code
        for _ in range(3)
    ]
    assert answers == [401, 401, 429]
    metrics = _metrics(live_app)
    assert 'checkout_notifies_total{provider="teemopay_kr",verdict="bad_signature"} 2.0' in metrics
    assert 'checkout_notifies_total{provider="teemopay_kr",verdict="rate_limited"} 1.0' in metrics
    assert wait_status(live_app, public_id, "sent").status == "sent"


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
@pytest.mark.app_config(refunds={"approval_thresholds": {"KRW": 100_000}})
def test_a_payout_notify_is_one_transaction(live_app: LiveApp) -> None:
    """Stored, decided and written in one commit, like a pay-in (on main: four commits,
    the raw message first, then its lookup, the refund's write and the verdict)."""
    public_id = new_refund(live_app)
    run_round(live_app)
    refund = wait_status(live_app, public_id, "sent")
    [accepted] = [r for r in _notify_rows(live_app) if r.trade_no == refund.payout_no]
    commits: list[object] = []

    def count(session: Any) -> None:
        commits.append(session)

    event.listen(OrmSession, "after_commit", count)
    try:
        resp = live_app.app.test_client().post(
            "/notify/teemopay_kr/payout", data=accepted.body.encode(), headers=_headers(accepted)
        )
    finally:
        event.remove(OrmSession, "after_commit", count)
    assert (resp.status_code, resp.text) == (200, "SUCCESS")
    assert len(commits) == 1
    assert _notify_rows(live_app)[-1].verdict == "duplicate"


# ---------------------------------------------------------------- stale running totals
DIAMOND = next(f for f in FLOWS if f.name == "diamondpay_kr")


def test_a_part_payment_notify_replayed_after_the_rest_was_paid_is_stale(
    live_app: LiveApp,
) -> None:
    """Diamond Pay reports the order's running total (`real_amount`). Its part-payment
    notify, replayed after the rest was paid, is old news (issue 25: on main a `conflict`
    that flagged the checkout for review): answered as Diamond Pay expects, stored `stale`,
    applied to nothing, no event, no review flag."""
    checkout, shopper, resp = start(live_app, DIAMOND)
    deposit = cashier_url(live_app, DIAMOND, resp, shopper)
    settle(live_app, deposit, "part")
    assert get_checkout(live_app.url, checkout["id"])["status"] == "partially_paid"
    settle(live_app, deposit, "rest")
    paid = get_checkout(live_app.url, checkout["id"])
    assert paid["status"] == "paid" and paid["amount_paid"] == DIAMOND.amount
    part, rest = _notify_rows(live_app)
    assert (part.verdict, rest.verdict) == ("accepted", "accepted")
    with live_app.session() as session:
        events_before = session.scalars(select(WebhookEvent.type)).all()

    replay = requests.post(
        f"{live_app.url}/notify/{DIAMOND.instance}",
        data=part.body.encode(),
        headers=_headers(part),
        timeout=10,
    )
    assert (replay.status_code, replay.text) == (200, '{"error_code": "0000"}')
    assert replay.headers["Content-Type"].startswith("application/json")
    stored = _notify_rows(live_app)[-1]
    assert stored.verdict == "stale" and stored.trade_no == part.trade_no
    assert stored.detail and "in all after" in stored.detail
    after = get_checkout(live_app.url, checkout["id"])
    assert after["status"] == "paid" and after["amount_paid"] == DIAMOND.amount
    assert after.get("review_reason") is None
    with live_app.session() as session:
        assert session.scalars(select(WebhookEvent.type)).all() == events_before
        row = session.get(Checkout, checkout["id"])
        assert row is not None and row.review_reason is None
        attempt = session.scalars(select(PaymentAttempt)).one()
        assert attempt.review_reason is None and attempt.amount_paid == DIAMOND.amount
    assert 'checkout_notifies_total{provider="diamondpay_kr",verdict="stale"} 1.0' in _metrics(
        live_app
    )
