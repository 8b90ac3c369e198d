"""The events API (list, read with delivery attempts, resend), the signed ping, and webhook
secret rotation (two secrets sign every webhook)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import update
from standardwebhooks import Webhook, WebhookVerificationError

from checkout.services.webhooks import signed_headers
from checkout.store.models import WebhookEvent
from tests.conftest import LiveApp
from tests.support.app_config import OTHER_STORE_API_KEY, TEST_API_KEY
from tests.support.shopper import FLOWS, Shopper, api_headers, create_checkout
from tests.test_webhooks import SECRET, Receiver, deliver
from tests.test_webhooks import receiver as receiver  # a fixture

NEXT_SECRET = "whsec_" + base64.b64encode(b"the-next-webhook-secret-0123456").decode()
SHOP_TEST_KEY = "sk_test_shop_events_0001"


def api(live_app: LiveApp, method: str, path: str, key: str = TEST_API_KEY) -> requests.Response:
    return requests.request(
        method, f"{live_app.url}/api/v1{path}", headers=api_headers(key), timeout=20
    )


def start_payments(live_app: LiveApp, count: int) -> list[str]:
    """`count` checkouts with a started redirect payment: one event each (checkout.pending)."""
    ids = []
    flow = FLOWS[0]
    for _ in range(count):
        checkout = create_checkout(live_app.url)
        assert Shopper(checkout["url"]).submit(flow.method, flow.payer).status_code == 303
        ids.append(checkout["id"])
    return ids


def test_events_page_by_cursor_filter_and_stay_in_their_store_and_window(
    live_app: LiveApp,
) -> None:
    ids = start_payments(live_app, 3)
    listed = api(live_app, "GET", "/events").json()
    assert [e["data"]["id"] for e in listed["data"]] == ids[::-1]  # newest first
    assert all(e["type"] == "checkout.pending" and e["livemode"] for e in listed["data"])
    assert listed["has_more"] is False and listed["next_starting_after"] is None

    pages, cursor = [], None
    while True:
        query = "/events?limit=2" + (f"&starting_after={cursor}" if cursor else "")
        page = api(live_app, "GET", query).json()
        pages.append([e["id"] for e in page["data"]])
        cursor = page["next_starting_after"]
        if not page["has_more"]:
            break
    assert pages == [[e["id"] for e in listed["data"][:2]], [listed["data"][2]["id"]]]

    only = api(live_app, "GET", f"/events?checkout={ids[1]}").json()["data"]
    assert [e["data"]["id"] for e in only] == [ids[1]]
    assert api(live_app, "GET", "/events?type=checkout.paid").json()["data"] == []
    # Another store sees none of them, and cannot use them as a cursor.
    assert api(live_app, "GET", "/events", OTHER_STORE_API_KEY).json()["data"] == []
    foreign = api(
        live_app, "GET", f"/events?starting_after={cursor or pages[0][0]}", OTHER_STORE_API_KEY
    )
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "event_not_found"
    event_id = listed["data"][0]["id"]
    assert api(live_app, "GET", f"/events/{event_id}", OTHER_STORE_API_KEY).status_code == 404
    resend = api(live_app, "POST", f"/events/{event_id}/resend", OTHER_STORE_API_KEY)
    assert resend.status_code == 404
    for bad in ("limit=0", "limit=101", "limit=x", "type=", "checkout=" + "c" * 65):
        refused = api(live_app, "GET", f"/events?{bad}")
        assert refused.status_code == 400, bad

    # Past 30 days an event is gone from the API.
    with live_app.session() as session:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.public_id == event_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=31))
        )
        session.commit()
    assert event_id not in [e["id"] for e in api(live_app, "GET", "/events").json()["data"]]
    assert api(live_app, "GET", f"/events/{event_id}").status_code == 404


@pytest.mark.store_config(shop={"test_api_keys": [SHOP_TEST_KEY]})
def test_a_test_key_lists_only_test_events(live_app: LiveApp) -> None:
    start_payments(live_app, 1)
    assert len(api(live_app, "GET", "/events").json()["data"]) == 1
    assert api(live_app, "GET", "/events", SHOP_TEST_KEY).json()["data"] == []


def _to_receiver(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "webhook_url": request.getfixturevalue("receiver").url,
        "webhook_secret": SECRET,
        "webhook_secret_next": NEXT_SECRET,
    }


@pytest.mark.store_config(shop=_to_receiver)
def test_an_event_shows_its_deliveries_and_is_resent_under_its_own_id(
    live_app: LiveApp, receiver: Receiver
) -> None:
    [checkout_id] = start_payments(live_app, 1)
    receiver.answers = [500]
    assert deliver(live_app) == 1
    [event] = api(live_app, "GET", "/events").json()["data"]
    shown = api(live_app, "GET", f"/events/{event['id']}").json()
    assert shown["delivery"]["status"] == "pending" and shown["delivery"]["attempts"] == 1
    [tried] = shown["delivery_attempts"]
    assert tried["status_code"] == 500 and tried["duration_ms"] is not None
    resent = api(live_app, "POST", f"/events/{event['id']}/resend")
    assert resent.status_code == 202
    assert resent.json()["delivery"] == {
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": resent.json()["delivery"]["next_attempt_at"],
        "delivered_at": None,
    }
    assert deliver(live_app) == 1
    assert receiver.ids() == [event["id"], event["id"]]
    after = api(live_app, "GET", f"/events/{event['id']}").json()
    assert after["delivery"]["status"] == "delivered"
    assert [d["status_code"] for d in after["delivery_attempts"]] == [500, 200]
    assert after["data"]["id"] == checkout_id


@pytest.mark.store_config(shop=_to_receiver)
def test_during_a_rotation_every_webhook_verifies_with_either_secret(
    live_app: LiveApp, receiver: Receiver
) -> None:
    start_payments(live_app, 1)
    assert deliver(live_app) == 1
    [hit] = receiver.hits
    assert hit.verified
    signatures = hit.headers["Webhook-Signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    ping = api(live_app, "POST", "/webhook_endpoint/ping")
    assert ping.status_code == 200
    assert ping.json()["delivered"] is True and ping.json()["status_code"] == 200
    hit = receiver.hits[-1]
    assert hit.payload["type"] == "webhook.ping" and hit.payload["livemode"] is True
    assert hit.webhook_id == ping.json()["id"]


def test_two_secrets_give_two_signatures_each_verifiable_alone() -> None:
    body = '{"a":1}'
    now = datetime.now(UTC)
    headers = signed_headers((SECRET, NEXT_SECRET), "evt_x", body, now)
    for secret in (SECRET, NEXT_SECRET):
        assert Webhook(secret).verify(body, headers) == {"a": 1}
    other = "whsec_" + base64.b64encode(b"someone-else-entirely-012345678").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    assert signed_headers(SECRET, "evt_x", body, now)["webhook-signature"].count("v1,") == 1


def test_a_ping_without_an_endpoint_is_a_conflict_and_a_dead_endpoint_is_reported(
    live_app: LiveApp,
) -> None:
    refused = api(live_app, "POST", "/webhook_endpoint/ping")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_webhook_endpoint"


@pytest.mark.store_config(
    shop={"webhook_url": "http://127.0.0.1:9/hooks", "webhook_secret": SECRET}
)
def test_a_ping_to_a_closed_port_says_why(live_app: LiveApp) -> None:
    ping = api(live_app, "POST", "/webhook_endpoint/ping").json()
    assert ping["delivered"] is False and ping["status_code"] is None
    assert ping["error"] == "ConnectionError"
