"""The shop's refund API over real HTTP against the sandboxes (web/shop_api/refunds.py)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select

from checkout.domain.account_crypto import AccountCipher
from checkout.store.models import Refund, StateEvent, WebhookEvent
from tests.conftest import LiveApp
from tests.support.app_config import OTHER_STORE_API_KEY, TEST_API_KEY
from tests.support.shopper import FLOWS, api_headers
from tests.test_flows import cashier_url, settle, start

REFUND_KEY = "sk_test_shop_refunds"
TEEMOPAY = next(f for f in FLOWS if f.name == "teemopay_kr")
DESTINATION = {"bank_code": "088", "account_number": "110123456789", "holder_name": "김민수"}


def paid_checkout(live_app: LiveApp) -> dict[str, Any]:
    checkout, shopper, resp = start(live_app, TEEMOPAY)
    settle(live_app, cashier_url(live_app, TEEMOPAY, resp, shopper), "pay")
    return checkout


def post_refund(
    live_app: LiveApp, checkout_id: str, body: dict[str, Any], key: str = REFUND_KEY, **headers: str
) -> requests.Response:
    return requests.post(
        f"{live_app.url}/api/v1/checkouts/{checkout_id}/refunds",
        json=body,
        headers={**api_headers(key), **headers},
        timeout=10,
    )


def body(amount: int = 10_000, **more: Any) -> dict[str, Any]:
    return {"amount": amount, "reason": "returned goods", "destination": DESTINATION, **more}


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
@pytest.mark.app_config(refunds={"approval_thresholds": {"KRW": 100_000}})
def test_a_partial_refund_is_created_masked_and_told_to_the_shop(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)
    resp = post_refund(live_app, checkout["id"], body())
    assert resp.status_code == 201, resp.text
    refund = resp.json()
    assert refund["id"].startswith("re_") and refund["status"] == "approved"
    assert refund["destination"] == "088 ****6789"
    assert "110123456789" not in resp.text and "김민수" not in resp.text
    listed = requests.get(
        f"{live_app.url}/api/v1/checkouts/{checkout['id']}/refunds",
        headers=api_headers(),
        timeout=10,
    ).json()
    assert [r["id"] for r in listed["data"]] == [refund["id"]]
    one = requests.get(
        f"{live_app.url}/api/v1/refunds/{refund['id']}", headers=api_headers(), timeout=10
    )
    assert one.status_code == 200 and one.json()["amount"] == 10_000
    with live_app.session() as session:
        row = session.scalars(select(Refund)).one()
        assert "110123456789" not in (row.destination_token or "")
        keys = live_app.app.extensions["settings"].refund_account_keys
        sealed = AccountCipher(list(keys)).decrypt_json(row.destination_token)
        assert sealed["account_number"] == "110123456789"
        events = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.checkout_id == checkout["id"])
            .order_by(WebhookEvent.seq)
        ).all()
        assert events[-1].type == "refund.created"
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[-1].payload["data"]["refund"]["id"] == refund["id"]
        timeline = session.scalars(select(StateEvent).where(StateEvent.kind == "refund")).all()
        assert [(t.from_status, t.to_status, t.refund_id) for t in timeline] == [
            (None, "approved", row.id)
        ]
    # What is left: 30,000 paid - 10,000 under way.
    too_much = post_refund(live_app, checkout["id"], body(20_001))
    assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "exceeds_refundable"
    assert post_refund(live_app, checkout["id"], body(20_000)).status_code == 201


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
def test_who_may_refund(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)
    plain = post_refund(live_app, checkout["id"], body(), key=TEST_API_KEY)
    assert plain.status_code == 403 and plain.json()["error"]["code"] == "refund_not_allowed"
    assert post_refund(live_app, checkout["id"], body(), key="sk_nope").status_code == 401
    other = requests.get(
        f"{live_app.url}/api/v1/checkouts/{checkout['id']}/refunds",
        headers=api_headers(OTHER_STORE_API_KEY),
        timeout=10,
    )
    assert other.status_code == 404
    assert post_refund(live_app, "co_nope", body()).status_code == 404
    # The refund key works for the rest of the API too.
    read = requests.get(
        f"{live_app.url}/api/v1/checkouts/{checkout['id']}",
        headers=api_headers(REFUND_KEY),
        timeout=10,
    )
    assert read.status_code == 200


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"amount": 0}, 400, "amount"),
        ({"amount": "10"}, 400, "amount"),
        ({"amount": 10**30}, 400, "amount"),
        ({"currency": "MXN"}, 400, "currency"),
        ({"reason": ""}, 400, "reason"),
        ({"reason": "x" * 501}, 400, "reason"),
        (
            {"destination": {**DESTINATION, "account_number": "12"}},
            400,
            "destination.account_number",
        ),
        ({"destination": {**DESTINATION, "bank_code": "999"}}, 400, "destination.bank_code"),
        ({"destination": {**DESTINATION, "holder_name": "x"}}, 400, "destination.holder_name"),
        ({"destination": "088-110123456789"}, 400, "destination"),
        ({"destination": {**DESTINATION, "holder_name": ["a"]}}, 400, "destination.holder_name"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    live_app: LiveApp, change: dict[str, Any], status: int, field: str
) -> None:
    checkout = paid_checkout(live_app)
    resp = post_refund(live_app, checkout["id"], {**body(), **change})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["field"] == field
    with live_app.session() as session:
        assert session.scalars(select(Refund)).all() == []


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,  # deeper than any parser's stack: was a 500
        '{"amount": ' + "9" * 5_000 + "}",  # a number longer than the parser takes
        "{not json",
    ],
)
def test_a_body_that_is_not_safe_json_is_a_400_and_changes_nothing(
    live_app: LiveApp, raw: str
) -> None:
    checkout = paid_checkout(live_app)
    resp = requests.post(
        f"{live_app.url}/api/v1/checkouts/{checkout['id']}/refunds",
        data=raw,
        headers={**api_headers(REFUND_KEY), "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "invalid_json"
    with live_app.session() as session:
        assert session.scalars(select(Refund)).all() == []


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
def test_nothing_paid_is_a_conflict(live_app: LiveApp) -> None:
    checkout, _shopper, _resp = start(live_app, TEEMOPAY)
    resp = post_refund(live_app, checkout["id"], body())
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "nothing_paid"


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
def test_idempotency_key(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)
    first = post_refund(live_app, checkout["id"], body(), **{"Idempotency-Key": "r-1"})
    again = post_refund(live_app, checkout["id"], body(), **{"Idempotency-Key": "r-1"})
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    other = post_refund(live_app, checkout["id"], body(5_000), **{"Idempotency-Key": "r-1"})
    assert other.status_code == 409
    with live_app.session() as session:
        assert len(session.scalars(select(Refund)).all()) == 1


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
def test_parallel_twins_with_one_key_make_one_refund(live_app: LiveApp) -> None:
    import concurrent.futures

    checkout = paid_checkout(live_app)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda _i: post_refund(
                    live_app, checkout["id"], body(), **{"Idempotency-Key": "twin"}
                ),
                range(6),
            )
        )
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    with live_app.session() as session:
        assert len(session.scalars(select(Refund)).all()) == 1


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
def test_parallel_refunds_never_exceed_what_was_paid(live_app: LiveApp) -> None:
    import concurrent.futures

    checkout = paid_checkout(live_app)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda _i: post_refund(live_app, checkout["id"], body(10_000)), range(6))
        )
    assert sorted(a.status_code for a in answers) == [201, 201, 201, 409, 409, 409]
