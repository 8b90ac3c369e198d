"""Shop integration: idempotent creation, Idempotency-Key, cancel, signed links and returns."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from checkout.services.shop_links import link_signature, return_signature
from checkout.store.models import Checkout, StateEvent
from tests.conftest import LiveApp
from tests.support.app_config import (
    LINK_SECRET,
    OTHER_STORE_API_KEY,
    SHOP_ORIGIN,
    TEST_API_KEY,
    TEST_API_KEY_NEXT,
)
from tests.support.shopper import FLOWS, Shopper, api_headers, get_checkout


def post(
    live_app: LiveApp, body: dict, key: str = TEST_API_KEY, **headers: str
) -> requests.Response:
    return requests.post(
        f"{live_app.url}/api/v1/checkouts",
        json=body,
        headers={**api_headers(key), **headers},
        timeout=10,
    )


def body(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "order_id": "A-1",
        "amount": 15000,
        "currency": "KRW",
        "return_url": f"{SHOP_ORIGIN}/done",
    }
    data.update(overrides)
    return data


def count_checkouts(live_app: LiveApp) -> int:
    with live_app.session() as session:
        return session.scalar(select(func.count()).select_from(Checkout)) or 0


def test_same_order_returns_the_same_checkout(live_app: LiveApp) -> None:
    first = post(live_app, body())
    again = post(live_app, body())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    for change in ({"amount": 16000}, {"currency": "MXN", "amount": 15000}):
        conflict = post(live_app, body(**change))
        assert conflict.status_code == 409
        assert conflict.json()["error"]["code"] == "order_id_conflict"
    assert count_checkouts(live_app) == 1


def test_idempotency_key_replays_the_first_answer(live_app: LiveApp) -> None:
    first = post(live_app, body(order_id="K-1"), **{"Idempotency-Key": "key-1"})
    replay = post(live_app, body(order_id="K-1"), **{"Idempotency-Key": "key-1"})
    assert first.status_code == replay.status_code == 201  # the first answer, replayed
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    reused = post(live_app, body(order_id="K-2"), **{"Idempotency-Key": "key-1"})
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert count_checkouts(live_app) == 1
    # Keys belong to a store: another store may use the same key.
    other = post(
        live_app, body(order_id="K-1"), key=OTHER_STORE_API_KEY, **{"Idempotency-Key": "key-1"}
    )
    assert other.status_code == 201


def test_key_rotation_both_keys_work(live_app: LiveApp) -> None:
    a = post(live_app, body(order_id="R-1"), key=TEST_API_KEY)
    b = requests.get(
        f"{live_app.url}/api/v1/checkouts/{a.json()['id']}",
        headers=api_headers(TEST_API_KEY_NEXT),
        timeout=10,
    )
    assert a.status_code == 201 and b.status_code == 200


def test_find_by_order_id(live_app: LiveApp) -> None:
    created = post(live_app, body(order_id="F-1")).json()
    url = f"{live_app.url}/api/v1/checkouts"
    found = requests.get(url, params={"order_id": "F-1"}, headers=api_headers(), timeout=10).json()
    assert [c["id"] for c in found["data"]] == [created["id"]]
    none = requests.get(
        url, params={"order_id": "F-1"}, headers=api_headers(OTHER_STORE_API_KEY), timeout=10
    )
    assert none.json()["data"] == []
    assert requests.get(url, headers=api_headers(), timeout=10).status_code == 400


def test_cancel_only_while_nothing_is_paid_or_live(live_app: LiveApp) -> None:
    created = post(live_app, body(order_id="C-1")).json()
    cancel_url = f"{live_app.url}/api/v1/checkouts/{created['id']}/cancel"
    resp = requests.post(cancel_url, headers=api_headers(), timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    # The timeline says who: the shop, through the API (an operator's cancel names them).
    with live_app.session() as session:
        event = session.scalars(
            select(StateEvent).where(
                StateEvent.checkout_id == created["id"], StateEvent.to_status == "cancelled"
            )
        ).one()
        assert (event.source, event.detail) == ("api", "by shop API")  # issue 23: not "operator"
    # The shopper can no longer pay it.
    page = Shopper(created["url"]).open("kakaopay")
    assert "cancelled" in page.text
    # A checkout with a live payment attempt cannot be cancelled.
    flow = FLOWS[0]
    live = post(live_app, body(order_id="C-2")).json()
    assert Shopper(live["url"]).submit(flow.method, flow.payer).status_code == 303
    resp = requests.post(
        f"{live_app.url}/api/v1/checkouts/{live['id']}/cancel", headers=api_headers(), timeout=10
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "checkout_not_cancellable"
    assert get_checkout(live_app.url, live["id"])["status"] == "pending"


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"cancel_url": "https://evil.example/x"}, "cancel_url_not_allowed"),
        ({"prefill": {"first_name": 5}}, "invalid_prefill"),
        ({"prefill": {"password": "x"}}, "invalid_prefill"),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, "invalid_expires_at"),
        ({"expires_at": "2099-01-01T00:00:00"}, "invalid_expires_at"),
    ],
)
def test_bad_options_are_400(live_app: LiveApp, extra: dict, code: str) -> None:
    resp = post(live_app, body(order_id="O-1", **extra))
    assert resp.status_code == 400 and resp.json()["error"]["code"] == code
    assert count_checkouts(live_app) == 0


def test_prefill_fills_the_form_and_cancel_url_is_offered(live_app: LiveApp) -> None:
    created = post(
        live_app,
        body(
            order_id="PF-1",
            cancel_url=f"{SHOP_ORIGIN}/cart",
            prefill={"first_name": "Minsu", "email": "minsu@example.com", "mobile": "01012345678"},
        ),
    ).json()
    page = Shopper(created["url"]).open("kakaopay")
    assert 'value="Minsu"' in page.text and 'value="minsu@example.com"' in page.text
    assert f'id="cancel-link" href="{SHOP_ORIGIN}/cart"' in page.text


def test_options_are_kept(live_app: LiveApp) -> None:
    expires = int(time.time()) + 3600
    created = post(
        live_app,
        body(
            order_id="P-1",
            cancel_url=f"{SHOP_ORIGIN}/cart",
            prefill={"first_name": "Minsu", "email": "minsu@example.com"},
            expires_at=expires,
        ),
    ).json()
    assert created["cancel_url"] == f"{SHOP_ORIGIN}/cart"
    assert created["expires_at"].startswith(time.strftime("%Y-%m-%dT%H", time.gmtime(expires)))


# ---------------------------------------------------------------- signed links
def link(
    live_app: LiveApp, store: str = "shop", secret: str = LINK_SECRET, **overrides: object
) -> str:
    values = {
        "order_id": "L-1",
        "amount": "15000",
        "currency": "KRW",
        "return_url": f"{SHOP_ORIGIN}/done",
        "expires": str(int(time.time()) + 600),
    }
    values.update({k: str(v) for k, v in overrides.items()})
    values["sig"] = link_signature(store, secret, values)
    return f"{live_app.url}/pay/{store}?{urlencode(values)}"


def test_signed_link_opens_the_same_checkout_twice(live_app: LiveApp) -> None:
    url = link(live_app)
    first = requests.get(url, allow_redirects=False, timeout=10)
    second = requests.get(url, allow_redirects=False, timeout=10)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert "/c/co_" in first.headers["Location"]
    assert count_checkouts(live_app) == 1


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [
        (lambda app: link(app).replace("amount=15000", "amount=1500"), 400, "does not match"),
        (lambda app: link(app, secret="wrong"), 400, "does not match"),
        (lambda app: link(app, expires=int(time.time()) - 1), 400, "expired"),
        (lambda app: link(app, store="other"), 400, "no link secret"),
        (lambda app: link(app).split("&sig=")[0], 400, "incomplete"),
    ],
)
def test_bad_links_get_a_clear_page_and_create_nothing(
    live_app: LiveApp, make, status: int, message: str
) -> None:
    resp = requests.get(make(live_app), allow_redirects=False, timeout=10)
    assert resp.status_code == status and message in resp.text
    assert count_checkouts(live_app) == 0


def test_link_for_an_order_with_another_amount_is_refused(live_app: LiveApp) -> None:
    assert requests.get(link(live_app), allow_redirects=False, timeout=10).status_code == 303
    other = requests.get(link(live_app, amount=99000), allow_redirects=False, timeout=10)
    assert other.status_code == 409 and "does not match" in other.text
    assert count_checkouts(live_app) == 1


def test_back_to_shop_carries_a_verifiable_signature(live_app: LiveApp) -> None:
    flow = FLOWS[0]
    created = post(live_app, body(order_id="B-1", return_url=f"{SHOP_ORIGIN}/done?cart=9")).json()
    shopper = Shopper(created["url"])
    cashier = shopper.submit(flow.method, flow.payer).headers["Location"]
    requests.post(cashier, data={"action": "pay"}, allow_redirects=False, timeout=10)
    assert live_app.sandbox.state.notifier.wait_idle(10)
    back = shopper.http.get(f"{live_app.url}/c/{created['id']}/back", allow_redirects=False)
    assert back.status_code == 303
    target = urlsplit(back.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{SHOP_ORIGIN}/done"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["cart"] == "9" and query["status"] == "paid"
    assert query["sig"] == return_signature(LINK_SECRET, query["checkout_id"], "B-1", "paid")
