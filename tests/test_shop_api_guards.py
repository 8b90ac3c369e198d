"""The one shop API (checkout/web/shop_api/): every endpoint scoped to the key's mode,
refund scope for test keys, idempotency under concurrency, hostile JSON, and the answers'
polish. Each test here failed on the two-blueprint API it replaced."""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select, update

from checkout.services import idempotency
from checkout.services.idempotency import IN_FLIGHT, request_hash
from checkout.store.models import IdempotencyKey, Refund, StateEvent
from tests.conftest import LiveApp
from tests.support.app_config import SHOP_ORIGIN
from tests.support.shopper import Shopper, api_headers
from tests.test_flows import cashier_url, settle
from tests.test_refunds_api import REFUND_KEY, TEEMOPAY, body, paid_checkout, post_refund

TEST_KEY = "sk_test_guards_0001"
TEST_REFUND_KEY = "sk_test_guards_refunds"
both_modes = pytest.mark.store_config(
    shop={
        "refund_api_keys": [REFUND_KEY],
        "test_api_keys": [TEST_KEY],
        "test_refund_api_keys": [TEST_REFUND_KEY],
    }
)


def paid_test_checkout(live_app: LiveApp) -> dict[str, Any]:
    """A test-mode checkout paid in full through the sandbox (TeemoPay's virtual account)."""
    resp = requests.post(
        f"{live_app.url}/api/v1/checkouts",
        json={
            "order_id": "T-paid",
            "amount": TEEMOPAY.amount,
            "currency": TEEMOPAY.currency,
            "return_url": f"{SHOP_ORIGIN}/done",
        },
        headers=api_headers(TEST_KEY),
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    checkout = resp.json()
    assert checkout["livemode"] is False
    shopper = Shopper(checkout["url"])
    started = shopper.submit(TEEMOPAY.method, TEEMOPAY.payer)
    assert started.status_code == 303, started.text
    settle(live_app, cashier_url(live_app, TEEMOPAY, started, shopper), "pay")
    return checkout


CHECKOUT = '{"amount": 1000, "currency": "KRW", "return_url": "' + SHOP_ORIGIN + '/done", %s}'


def get(live_app: LiveApp, path: str, key: str) -> requests.Response:
    return requests.get(f"{live_app.url}/api/v1{path}", headers=api_headers(key), timeout=10)


@both_modes
def test_a_test_key_never_sees_or_changes_a_live_refund(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)  # live
    created = post_refund(live_app, checkout["id"], {**body(), "destination": None})
    assert created.status_code == 201, created.text
    refund = created.json()
    assert refund["account_url"]
    for key in (TEST_KEY, TEST_REFUND_KEY):
        listed = get(live_app, f"/checkouts/{checkout['id']}/refunds", key)
        assert listed.status_code == 404, listed.text
        assert listed.json()["error"]["code"] == "checkout_not_found"
        read = get(live_app, f"/refunds/{refund['id']}", key)
        assert read.status_code == 404 and "account_url" not in read.text
        assert read.json()["error"]["code"] == "refund_not_found"
    more = post_refund(live_app, checkout["id"], body(1_000), key=TEST_REFUND_KEY)
    assert more.status_code == 404, more.text
    with live_app.session() as session:
        assert len(session.scalars(select(Refund)).all()) == 1
    assert get(live_app, f"/refunds/{refund['id']}", REFUND_KEY).json()["livemode"] is True


@both_modes
def test_a_live_refund_key_gets_404_for_a_test_checkout_and_a_test_one_refunds_it(
    live_app: LiveApp,
) -> None:
    checkout = paid_test_checkout(live_app)
    live = post_refund(live_app, checkout["id"], body())  # was 201 (or 409 nothing_paid)
    assert live.status_code == 404, live.text
    assert live.json()["error"]["code"] == "checkout_not_found"
    assert get(live_app, f"/checkouts/{checkout['id']}/refunds", REFUND_KEY).status_code == 404
    with live_app.session() as session:
        assert session.scalars(select(Refund)).all() == []
    # A test key with the refund scope refunds its own mode's checkout (the sandbox pays).
    plain = post_refund(live_app, checkout["id"], body(), key=TEST_KEY)
    assert plain.status_code == 403 and plain.json()["error"]["code"] == "refund_not_allowed"
    test = post_refund(live_app, checkout["id"], body(), key=TEST_REFUND_KEY)
    assert test.status_code == 201, test.text
    assert test.json()["livemode"] is False
    assert get(live_app, f"/refunds/{test.json()['id']}", REFUND_KEY).status_code == 404
    read = get(live_app, f"/refunds/{test.json()['id']}", TEST_KEY)
    assert read.status_code == 200 and read.json()["amount"] == 10_000


@both_modes
def test_an_account_link_is_only_handed_to_its_own_mode(live_app: LiveApp) -> None:
    """The link in `account_url` sets the account a refund pays out to: a key of the other
    mode must never get one (it got the live refund's link from the list)."""
    checkout = paid_checkout(live_app)
    created = post_refund(live_app, checkout["id"], {**body(), "destination": None})
    link = created.json()["account_url"]
    assert urlsplit(link).path == f"/refund-account/{created.json()['id']}"
    for path in (f"/checkouts/{checkout['id']}/refunds", f"/refunds/{created.json()['id']}"):
        assert "refund-account" not in get(live_app, path, TEST_KEY).text


def _parallel(live_app: LiveApp, checkout_id: str, amounts: list[int]) -> list[requests.Response]:
    def one(amount: int) -> requests.Response:
        return post_refund(live_app, checkout_id, body(amount), **{"Idempotency-Key": "k-1"})

    with concurrent.futures.ThreadPoolExecutor(len(amounts)) as pool:
        return list(pool.map(one, amounts))


@both_modes
def test_one_key_with_twenty_amounts_in_parallel_makes_one_refund_and_409s(
    live_app: LiveApp,
) -> None:
    checkout = paid_checkout(live_app)
    amounts = [1_000 + i for i in range(20)]
    answers = _parallel(live_app, checkout["id"], amounts)
    created = [
        a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers
    ]
    assert len(created) == 1, [(a.status_code, a.text[:80]) for a in answers]
    for answer in answers:
        if answer is created[0]:
            continue
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "idempotency_key_reused"
    with live_app.session() as session:
        [refund] = session.scalars(select(Refund)).all()
        assert refund.amount == created[0].json()["amount"]


@both_modes
def test_twins_with_one_key_and_body_all_get_the_first_answer_exactly(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)
    for round_ in range(3):
        answers = _parallel(live_app, checkout["id"], [1_000] * 4)
        assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
        assert len({a.text for a in answers}) == 1
        assert sum("Idempotent-Replayed" not in a.headers for a in answers) == (round_ == 0)
        assert {a.headers["Content-Type"] for a in answers} == {"application/json"}
    with live_app.session() as session:
        assert len(session.scalars(select(Refund)).all()) == 1


@both_modes
def test_twins_that_take_all_that_is_left_never_see_exceeds_refundable(
    live_app: LiveApp,
) -> None:
    """The key is looked up before the refundable check: the twin of a refund of all that
    is left is its replay, never a 409 exceeds_refundable for the refund its own key made."""
    checkout = paid_checkout(live_app)
    for round_ in range(3):
        answers = []

        def one(_i: int, n: int = round_) -> requests.Response:
            return post_refund(
                live_app, checkout["id"], body(10_000), **{"Idempotency-Key": f"all-{n}"}
            )

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(one, range(4)))
        assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1


@both_modes
@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        ("refunds", '{"amount": 1000, "reason": "\\ud800 broken"}', "reason"),
        ("refunds", '{"amount": 1000, "reason": "nul \\u0000 here"}', "reason"),
        ("checkouts", CHECKOUT % '"order_id": "\\udfff"', "order_id"),
        ("checkouts", CHECKOUT % '"order_id": "A-1", "description": "\\ud83d"', "description"),
        ("checkouts", CHECKOUT % '"order_id": "A\\u0000"', "order_id"),
        ("checkouts", CHECKOUT % f'"order_id": "A-2", "x": "{"y" * 150_000}"', "x"),
        (
            "checkouts",
            CHECKOUT % '"order_id": "A-3", "metadata": {"a": [[[[[[[[[[1]]]]]]]]]]}',
            "metadata.a",
        ),
    ],
)
def test_hostile_json_is_a_400_naming_the_field_and_changes_nothing(
    live_app: LiveApp, path: str, raw: str, field: str
) -> None:
    checkout = paid_checkout(live_app)
    url = (
        f"{live_app.url}/api/v1/checkouts/{checkout['id']}/refunds"
        if path == "refunds"
        else f"{live_app.url}/api/v1/checkouts"
    )
    resp = requests.post(
        url,
        data=raw.encode(),
        headers={**api_headers(REFUND_KEY), "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["field"] == field, resp.text
    with live_app.session() as session:
        assert session.scalars(select(Refund)).all() == []
        assert not session.scalars(select(StateEvent).where(StateEvent.kind == "refund")).all()


@both_modes
def test_refund_answers_are_compact_and_say_amounts_in_major_units(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)  # 30,000 KRW
    created = post_refund(live_app, checkout["id"], body(18_000))
    assert created.status_code == 201
    # One line, no spacing: as every other answer (it was json.dumps' ", " and ": ").
    assert "\n" not in created.text.strip() and ": " not in created.text, created.text
    too_much = post_refund(live_app, checkout["id"], body(12_001))
    assert too_much.status_code == 409
    assert "at most 12,000 KRW" in too_much.json()["error"]["message"], too_much.text
    short = post_refund(
        live_app,
        checkout["id"],
        body(1_000, destination={"bank_code": "088", "account_number": "12", "holder_name": "김"}),
    )
    assert short.status_code == 400
    assert short.json()["error"]["code"] == "invalid_account_number_length", short.text


@both_modes
def test_a_cancel_through_the_shop_api_is_recorded_as_the_shops(live_app: LiveApp) -> None:
    resp = requests.post(
        f"{live_app.url}/api/v1/checkouts",
        json={
            "order_id": "C-1",
            "amount": 1000,
            "currency": "KRW",
            "return_url": f"{SHOP_ORIGIN}/done",
        },
        headers=api_headers(REFUND_KEY),
        timeout=10,
    )
    cancelled = requests.post(
        f"{live_app.url}/api/v1/checkouts/{resp.json()['id']}/cancel",
        headers=api_headers(REFUND_KEY),
        timeout=10,
    )
    assert cancelled.status_code == 200
    [event] = [e for e in cancelled.json()["events"] if e["to"] == "cancelled"]
    assert event["source"] == "api", event


@both_modes
def test_checkout_creates_with_one_key_in_parallel_make_one_checkout(live_app: LiveApp) -> None:
    """20 creates at once with one Idempotency-Key, each another order and amount: one 201,
    the rest 409, and no other checkout made."""

    def one(n: int, key: str = "c-1") -> requests.Response:
        return requests.post(
            f"{live_app.url}/api/v1/checkouts",
            json={
                "order_id": f"P-{n}",
                "amount": 1_000 + n,
                "currency": "KRW",
                "return_url": f"{SHOP_ORIGIN}/done",
            },
            headers={**api_headers(TEST_KEY), "Idempotency-Key": key},
            timeout=30,
        )

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 19, [a.text[:100] for a in answers]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
        "idempotency_key_reused"
    }
    listed = [get(live_app, f"/checkouts?order_id=P-{n}", TEST_KEY).json() for n in range(20)]
    assert sum(len(page["data"]) for page in listed) == 1
    # Twins with one body: the first answer, byte for byte, to each.
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        twins = list(pool.map(lambda _i: one(99, "c-2"), range(5)))
    assert {(a.status_code, a.text) for a in twins} == {(201, twins[0].text)}
    assert sum("Idempotent-Replayed" not in a.headers for a in twins) == 1


@both_modes
def test_refund_events_are_seen_and_resent_by_their_own_mode_only(live_app: LiveApp) -> None:
    checkout = paid_checkout(live_app)  # live
    assert post_refund(live_app, checkout["id"], body()).status_code == 201
    listed = get(live_app, f"/events?type=refund.created&checkout={checkout['id']}", REFUND_KEY)
    [event] = listed.json()["data"]
    assert event["data"]["refund"]["amount"] == 10_000 and event["livemode"] is True
    assert get(live_app, f"/events?checkout={checkout['id']}", TEST_KEY).json()["data"] == []
    assert get(live_app, f"/events/{event['id']}", TEST_REFUND_KEY).status_code == 404
    resend = requests.post(
        f"{live_app.url}/api/v1/events/{event['id']}/resend",
        headers=api_headers(TEST_REFUND_KEY),
        timeout=10,
    )
    assert resend.status_code == 404


@both_modes
def test_one_idempotency_key_in_each_mode_makes_a_refund_in_each(live_app: LiveApp) -> None:
    live = paid_checkout(live_app)
    test = paid_test_checkout(live_app)
    key = {"Idempotency-Key": "same-in-both"}
    first = post_refund(live_app, test["id"], body(), key=TEST_REFUND_KEY, **key)
    second = post_refund(live_app, live["id"], body(), **key)
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert (first.json()["livemode"], second.json()["livemode"]) == (False, True)
    with live_app.session() as session:
        assert len(session.scalars(select(Refund)).all()) == 2


def _claim_row(live_app: LiveApp, fingerprint: str, age: timedelta) -> None:
    """A claimed key whose request has not answered, claimed `age` ago."""
    with live_app.session() as session:
        session.add(
            IdempotencyKey(
                store_id="shop",
                livemode=False,
                key="held",
                request_hash=fingerprint,
                response_status=IN_FLIGHT,
                response_body="",
                created_at=datetime.now(UTC) - age,
            )
        )
        session.commit()


@both_modes
def test_a_key_still_running_is_waited_for_and_an_abandoned_one_taken_over(
    live_app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = CHECKOUT % '"order_id": "H-1"'
    fingerprint = request_hash("POST", "/api/v1/checkouts", raw.encode())

    def send(body: str = raw) -> requests.Response:
        return requests.post(
            f"{live_app.url}/api/v1/checkouts",
            data=body.encode(),
            headers={
                **api_headers(TEST_KEY),
                "Content-Type": "application/json",
                "Idempotency-Key": "held",
            },
            timeout=30,
        )

    _claim_row(live_app, fingerprint, timedelta(seconds=1))
    monkeypatch.setattr(idempotency, "MAX_WAIT_STEPS", 3)  # the wait, bounded: not 10 s here
    busy = send()
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_key_in_use"
    other = send(CHECKOUT % '"order_id": "H-2"')
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    with live_app.session() as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "held")
            .values(created_at=datetime.now(UTC) - idempotency.ABANDONED_AFTER * 2)
        )
        session.commit()
    taken = send()  # its holder died: this request runs and its answer is kept
    assert taken.status_code == 201 and "Idempotent-Replayed" not in taken.headers
    again = send()
    assert (again.status_code, again.text) == (201, taken.text)
    assert again.headers["Idempotent-Replayed"] == "true"
