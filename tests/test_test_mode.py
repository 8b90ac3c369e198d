"""Test and live mode per store: keys, livemode, 404 across modes, the sandbox twins of a live
deployment, the shopper's banner, idempotency per mode and by parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from checkout import create_app
from checkout.config import ConfigError, build_settings, hash_api_key, sandbox_twin_name
from checkout.extensions import settings_of
from checkout.sandbox.core import create_sandbox_app, sandbox_state
from checkout.sandbox.from_settings import sandbox_config_from_settings
from checkout.sandbox.keys import TeemoPayKeyFiles
from checkout.store.db import db as app_db
from checkout.store.models import Base, PaymentAttempt, WebhookEvent
from tests.conftest import LiveApp, RunningSandbox, _database_url
from tests.support import app_config, creds
from tests.support.app_config import SHOP_ORIGIN, TEST_API_KEY
from tests.support.live import LateBoundApp, serve
from tests.support.shopper import FLOWS, KR_PAYER, Shopper, api_headers

SHOP_TEST_KEY = "sk_test_shop_mode_0001"
LIVE_KEY = "sk_live_shop_mode_0001"
with_test_key = pytest.mark.store_config(shop={"test_api_keys": [SHOP_TEST_KEY]})


def create(base: str, key: str, **overrides: object) -> requests.Response:
    body = {"order_id": "M-1", "amount": 15000, "currency": "KRW"}
    body["return_url"] = f"{SHOP_ORIGIN}/done"
    body.update(overrides)
    return requests.post(
        f"{base}/api/v1/checkouts", json=body, headers=api_headers(key), timeout=10
    )


def get(base: str, path: str, key: str) -> requests.Response:
    return requests.get(f"{base}/api/v1{path}", headers=api_headers(key), timeout=10)


@with_test_key
def test_a_test_key_and_a_live_key_never_see_each_others_objects(live_app: LiveApp) -> None:
    base = live_app.url
    test = create(base, SHOP_TEST_KEY)
    live = create(base, TEST_API_KEY)  # api_keys are live keys, as they always were
    # One order id per store *and mode*: the test checkout does not block the live one.
    assert (test.status_code, live.status_code) == (201, 201)
    test_co, live_co = test.json(), live.json()
    assert (test_co["livemode"], live_co["livemode"]) == (False, True)
    assert get(base, f"/checkouts/{test_co['id']}", SHOP_TEST_KEY).json()["livemode"] is False
    assert get(base, f"/checkouts/{test_co['id']}", TEST_API_KEY).status_code == 404
    assert get(base, f"/checkouts/{live_co['id']}", SHOP_TEST_KEY).status_code == 404
    found = get(base, "/checkouts?order_id=M-1", SHOP_TEST_KEY).json()["data"]
    assert [c["id"] for c in found] == [test_co["id"]]
    cancel = requests.post(
        f"{base}/api/v1/checkouts/{live_co['id']}/cancel",
        headers=api_headers(SHOP_TEST_KEY),
        timeout=10,
    )
    assert cancel.status_code == 404
    assert get(base, f"/checkouts/{live_co['id']}", TEST_API_KEY).json()["status"] == "open"
    # The same Idempotency-Key in the other mode is another request, not a replay.
    headers = {**api_headers(SHOP_TEST_KEY), "Idempotency-Key": "same-key"}
    body = {"order_id": "M-2", "amount": 100, "currency": "KRW", "return_url": f"{SHOP_ORIGIN}/d"}
    first = requests.post(f"{base}/api/v1/checkouts", json=body, headers=headers, timeout=10)
    headers["Authorization"] = f"Bearer {TEST_API_KEY}"
    other = requests.post(f"{base}/api/v1/checkouts", json=body, headers=headers, timeout=10)
    assert (first.status_code, other.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in other.headers
    assert other.json()["livemode"] is True and first.json()["livemode"] is False


@with_test_key
def test_a_test_checkouts_pages_show_the_banner_and_its_webhooks_say_livemode_false(
    live_app: LiveApp,
) -> None:
    test_co = create(live_app.url, SHOP_TEST_KEY).json()
    live_co = create(live_app.url, TEST_API_KEY).json()
    banner = "Test mode: no real payment is made."
    assert banner in requests.get(test_co["url"], timeout=10).text
    assert banner not in requests.get(live_co["url"], timeout=10).text
    korean = requests.get(test_co["url"], headers={"Accept-Language": "ko"}, timeout=10)
    assert "테스트 모드" in korean.text
    flow = FLOWS[0]
    resp = Shopper(test_co["url"]).submit(flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    with live_app.session() as session:
        events = list(session.scalars(select(WebhookEvent)))
    assert events and all(e.payload["livemode"] is False for e in events)
    assert all(e.payload["data"]["livemode"] is False for e in events)
    shown = get(live_app.url, "/events", SHOP_TEST_KEY).json()["data"]
    assert shown and all(e["livemode"] is False and not e["data"]["livemode"] for e in shown)


def test_config_refuses_a_key_listed_in_both_modes(tmp_path: Path) -> None:
    raw = {
        "sandbox": True,
        "stores": {
            "s": {
                "api_keys": ["sk_x"],
                "test_api_keys": ["sk_x"],
                "allowed_origins": ["https://a.example"],
            }
        },
    }
    with pytest.raises(ConfigError, match="live and as test"):
        build_settings(raw, tmp_path)
    raw["stores"]["s"]["test_api_keys"] = ["sk_test_only"]
    raw["stores"]["s"]["webhook_url"] = "https://a.example/hook"
    raw["stores"]["s"]["webhook_secret"] = "whsec_" + "A" * 32
    raw["stores"]["s"]["webhook_secret_next"] = "not a secret"
    with pytest.raises(ConfigError, match="webhook_secret_next"):
        build_settings(raw, tmp_path)


# ---------------------------------------------------------------- idempotency by parameters
def _raw_post(base: str, raw: str, key: str) -> requests.Response:
    headers = {
        **api_headers(TEST_API_KEY),
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
    return requests.post(f"{base}/api/v1/checkouts", data=raw.encode(), headers=headers, timeout=10)


def test_the_same_json_in_another_key_order_or_spacing_is_a_replay(live_app: LiveApp) -> None:
    ret = f"{SHOP_ORIGIN}/done"
    first = _raw_post(
        live_app.url,
        json.dumps({"order_id": "I-1", "amount": 500, "currency": "KRW", "return_url": ret}),
        "idem-1",
    )
    assert first.status_code == 201
    reordered = f'{{ "return_url" : "{ret}",\n  "currency":"KRW","amount":500, "order_id":"I-1" }}'
    again = _raw_post(live_app.url, reordered, "idem-1")
    assert again.status_code == 201  # the first answer, status and body, replayed
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    changed = _raw_post(live_app.url, reordered.replace("500", "501"), "idem-1")
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    # A body that is not JSON is compared as bytes, and still answered 400 invalid_json.
    junk = _raw_post(live_app.url, "[" * 100_000, "idem-2")
    assert junk.status_code == 400 and junk.json()["error"]["code"] == "invalid_json"


# ---------------------------------------------------------------- a live deployment
@pytest.fixture
def live_deployment(
    sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles, tmp_path: Path
) -> Iterator[LiveApp]:
    """sandbox = false: the providers at `sandbox` (standing for the real ones), the test
    twins at a second simulator built from the app's settings, as `flask sandbox` builds it."""
    late_app, late_twins = LateBoundApp(), LateBoundApp()
    app_server, twin_server = serve(late_app), serve(late_twins)
    config = app_config.test_config(
        sandbox_url=twin_server.url,
        public_base_url=app_server.url,
        database_url=_database_url(tmp_path),
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    config["sandbox"] = False
    # Outside sandbox mode refund account data needs its encryption key (issue 16).
    config["refund_account_keys"] = [Fernet.generate_key().decode()]
    for provider in config["providers"].values():
        provider["base_url"] = sandbox.provider_url(provider["type"])
    # One attempt per payer IP a day: a test attempt must not use up the live allowance.
    config["providers"]["paypro_kr"]["ip_daily_attempts"] = 1
    config["stores"] = {
        "shop": {
            "name": "Live Shop",
            "live_api_key_sha256": [hash_api_key(LIVE_KEY)],
            "test_api_key_sha256": [hash_api_key(SHOP_TEST_KEY)],
            "allowed_origins": [SHOP_ORIGIN],
        }
    }
    app = create_app(config)
    Base.metadata.create_all(app_db.bound(app).engine)
    late_app.app = app
    twin_config = sandbox_config_from_settings(settings_of(app))
    twin_config.notify_schedule = creds.TEST_NOTIFY_SCHEDULE
    twins = create_sandbox_app(twin_config)
    late_twins.app = twins
    twin_state = sandbox_state(twins)
    try:
        yield LiveApp(app_server.url, app, RunningSandbox(twin_server.url, twin_state, twin_server))
    finally:
        twin_state.notifier.stop()
        twin_server.shutdown()
        app_server.shutdown()
        app_db.bound(app).engine.dispose()


def test_a_live_deployment_pays_test_checkouts_through_the_sandbox_twins_only(
    live_deployment: LiveApp, sandbox: RunningSandbox
) -> None:
    base, twins = live_deployment.url, live_deployment.sandbox
    settings = settings_of(live_deployment.app)
    twin = settings.providers[sandbox_twin_name("paypro_kr")]
    live = settings.providers["paypro_kr"]
    assert twin.base_url == f"{twins.url}/paypro" and twin.sandbox and not live.sandbox
    # The twin has credentials of its own: no live secret reaches the simulators.
    assert twin.settings["app_secret"] != live.settings["app_secret"]

    test_co = create(base, SHOP_TEST_KEY, order_id="T-1").json()
    live_co = create(base, LIVE_KEY, order_id="L-1").json()
    flow = FLOWS[0]  # kakaopay on paypro_kr: a redirect to the provider's cashier
    to_twin = Shopper(test_co["url"]).submit(flow.method, flow.payer)
    to_live = Shopper(live_co["url"]).submit(flow.method, flow.payer)
    assert to_twin.headers["Location"].startswith(twins.url), to_twin.headers["Location"]
    assert to_live.headers["Location"].startswith(sandbox.url), to_live.headers["Location"]
    with live_deployment.session() as session:
        providers = {a.checkout_id: a.provider for a in session.scalars(select(PaymentAttempt))}
    assert providers == {test_co["id"]: "paypro_kr__test", live_co["id"]: "paypro_kr"}
    assert {o.trade_no for o in sandbox.state.orders.values()}.isdisjoint(
        {o.trade_no for o in twins.state.orders.values()}
    )
    assert len(sandbox.state.orders) == 1 and len(twins.state.orders) == 1

    # The twin's notify comes back to /notify/paypro_kr__test and settles the test checkout.
    pay = requests.post(to_twin.headers["Location"], data={"action": "pay"}, timeout=10)
    assert pay.status_code in (200, 303)
    assert twins.state.notifier.wait_idle(10)
    paid = get(base, f"/checkouts/{test_co['id']}", SHOP_TEST_KEY).json()
    assert (paid["status"], paid["livemode"]) == ("paid", False)
    assert get(base, f"/checkouts/{live_co['id']}", LIVE_KEY).json()["status"] == "pending"


def test_a_va_payment_gives_its_instructions_to_the_shop(live_app: LiveApp) -> None:
    flow = next(f for f in FLOWS if f.name == "teemopay_kr")
    body = {"order_id": "VA-1", "amount": flow.amount, "currency": flow.currency}
    created = create(live_app.url, TEST_API_KEY, **body).json()
    resp = Shopper(created["url"]).submit(flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    attempt = get(live_app.url, f"/checkouts/{created['id']}", TEST_API_KEY).json()[
        "payment_attempts"
    ][0]
    instructions = attempt["payment_instructions"]
    assert instructions["kind"] == "bank_transfer"
    assert instructions["account_number"] and instructions["bank_name"]
    assert (instructions["amount"], instructions["currency"]) == (flow.amount, flow.currency)
    assert instructions["expires_at"]
    events = get(live_app.url, "/events?type=checkout.payment_instructions_issued", TEST_API_KEY)
    [event] = events.json()["data"]
    assert event["data"]["id"] == created["id"]
    assert event["data"]["payment_attempt"]["payment_instructions"] == instructions
    # Nothing of the payer's beyond the masked details the API shows.
    text = json.dumps(event)
    for value in (*flow.payer.values(), KR_PAYER["email"]):
        if value:
            assert value not in text, value


@with_test_key
def test_the_console_and_the_daily_summary_keep_test_checkouts_apart(live_app: LiveApp) -> None:
    from checkout.store.models import utcnow
    from tests.test_admin import add_operator, login, search

    test_co = create(live_app.url, SHOP_TEST_KEY, order_id="C-1").json()
    live_co = create(live_app.url, TEST_API_KEY, order_id="C-1").json()
    for checkout in (test_co, live_co):
        flow = FLOWS[0]
        assert Shopper(checkout["url"]).submit(flow.method, flow.payer).status_code == 303
    add_operator(live_app)
    http = login(live_app)
    tested = search(http, live_app, mode="test").text
    assert test_co["id"] in tested and live_co["id"] not in tested
    assert 'class="badge-test"' in tested
    lived = search(http, live_app, mode="live").text
    assert live_co["id"] in lived and test_co["id"] not in lived
    assert 'class="badge-test"' not in lived
    detail = http.get(f"{live_app.url}/admin/checkouts/{test_co['id']}", timeout=10)
    assert 'id="test-mode"' in detail.text, detail.status_code

    runner = live_app.app.test_cli_runner()
    result = runner.invoke(args=["daily-summary", "--date", utcnow().date().isoformat()])
    assert result.exit_code == 0, result.output
    assert "\nshop\t1\t0\t0\t0\t0\t1\tKRW 15000\t-" in result.output
    assert "\nshop [test]\t1\t0\t0\t0\t0\t1\tKRW 15000\t-" in result.output
    assert "\nshop\tpaypro_kr\t1\t" in result.output
    assert "\nshop [test]\tpaypro_kr\t1\t" in result.output
