"""Providers misbehaving on the wire, end to end: the checkout page over real HTTP.

Each test tells the sandbox to misbehave on the next create call (checkout/sandbox/faults.py),
submits the checkout form, and checks what the shopper reads, what was recorded, that the
checkout can still be paid, and that nothing is charged twice. Provider timeouts are short
(see `pytestmark`) so timeouts cost about a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from checkout.domain.states import AttemptStatus
from checkout.sandbox.core import OrderStatus, SandboxState
from checkout.sandbox.faults import FaultError, UnansweredListener
from tests.conftest import LiveApp, RunningSandbox
from tests.support.shopper import FLOWS, Flow, Shopper, create_checkout, get_checkout

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 1.0
INSTANCES = ("paypro_kr", "paypro_mx", "paypro_mx_api", "teemopay_kr", "diamondpay_kr")
pytestmark = pytest.mark.provider_config(
    **{
        name: {"connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
        for name in INSTANCES
    }
)

# One flow per simulator: every fault is tried against each provider's client.
BY_PROVIDER = [
    next(f for f in FLOWS if f.name == name)
    for name in ("paypro_kr_link", "teemopay_kr", "diamondpay_kr")
]
NOT_ANSWERING = (
    "The payment provider did not answer, so this payment did not start. Nothing was charged."
)
CHECKING = "We are checking your earlier payment with the payment provider."

# kind -> (does the simulator act before the answer is spoilt, failure codes per provider type)
FAULTS: dict[str, tuple[bool, dict[str, str]]] = {
    "http_500": (False, {"paypro": "http_500", "teemopay": "http_500", "diamondpay": "http_500"}),
    "html_error": (
        False,
        {"paypro": "http_502", "teemopay": "http_502", "diamondpay": "http_502"},
    ),
    "malformed_json": (
        False,
        {"paypro": "invalid_response", "teemopay": "bad_response", "diamondpay": "bad_response"},
    ),
    "truncated_json": (
        True,
        {"paypro": "invalid_response", "teemopay": "bad_response", "diamondpay": "bad_response"},
    ),
    "connection_reset": (
        True,
        {
            "paypro": "connection_error",
            "teemopay": "connection_error",
            "diamondpay": "connection_error",
        },
    ),
}


def submit(live_app: LiveApp, flow: Flow) -> tuple[dict, Shopper, requests.Response]:
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    shopper = Shopper(checkout["url"])
    return checkout, shopper, shopper.submit(flow.method, flow.payer)


def orders_of(state: SandboxState, flow: Flow) -> list:
    with state.lock:
        return [o for o in state.orders.values() if o.provider == flow.provider_type]


def retry_and_pay_once(live_app: LiveApp, flow: Flow, checkout: dict, shopper: Shopper) -> None:
    """The shopper tries again and pays: exactly one attempt paid, the amount once."""
    retry = shopper.submit(flow.method, flow.payer)
    assert retry.status_code == 303, retry.text
    data = get_checkout(live_app.url, checkout["id"])
    live = [a for a in data["payment_attempts"] if a["status"] == "pending"]
    assert len(live) == 1
    state = live_app.sandbox.state
    order = next(o for o in orders_of(state, flow) if o.trade_no == live[0]["trade_no"])
    resp = requests.post(
        f"{live_app.sandbox.url}/cashier/{flow.provider_type}/{order.id}",
        data={"action": "pay"},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code in (200, 303), resp.text
    assert state.notifier.wait_idle(10)
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == flow.amount
    assert [a["status"] for a in data["payment_attempts"]].count("paid") == 1


@pytest.mark.parametrize("kind", list(FAULTS))
@pytest.mark.parametrize("flow", BY_PROVIDER, ids=lambda f: f.provider_type)
def test_broken_answer_on_create(live_app: LiveApp, flow: Flow, kind: str) -> None:
    acts, codes = FAULTS[kind]
    state = live_app.sandbox.state
    state.inject_fault(flow.provider_type, kind)
    checkout, shopper, resp = submit(live_app, flow)

    assert resp.status_code == 422, resp.text
    assert 'id="form-error"' in resp.text and NOT_ANSWERING in resp.text
    data = get_checkout(live_app.url, checkout["id"])
    [attempt] = data["payment_attempts"]
    assert attempt["status"] == "failed"
    assert attempt["failure_code"] == codes[flow.provider_type]
    assert attempt["platform_trade_no"] is None  # we never read the provider's answer
    assert data["status"] == "open"  # usable again
    # The simulator acted (an order exists that we never heard of) only for these faults.
    assert len(orders_of(state, flow)) == (1 if acts else 0)
    retry_and_pay_once(live_app, flow, checkout, shopper)


def assert_checking(live_app: LiveApp, flow: Flow, checkout: dict, shopper: Shopper) -> None:
    """An attempt whose create timed out: "unknown", blocked, and a resubmit sends nothing."""
    data = get_checkout(live_app.url, checkout["id"])
    [attempt] = data["payment_attempts"]
    assert attempt["status"] == AttemptStatus.UNKNOWN
    assert attempt["failure_code"] == "timeout"
    assert data["status"] == "pending"  # not open: a second attempt could charge twice
    page = shopper.http.get(checkout["url"], allow_redirects=False)
    assert page.status_code == 200 and CHECKING in page.text
    orders = len(orders_of(live_app.sandbox.state, flow))
    again = shopper.submit(flow.method, flow.payer, csrf=shopper.csrf)  # the same form again
    assert again.status_code == 200 and CHECKING in again.text
    assert len(get_checkout(live_app.url, checkout["id"])["payment_attempts"]) == 1
    assert len(orders_of(live_app.sandbox.state, flow)) == orders


@pytest.mark.parametrize("flow", BY_PROVIDER, ids=lambda f: f.provider_type)
def test_read_timeout_on_create(live_app: LiveApp, flow: Flow) -> None:
    state = live_app.sandbox.state
    state.inject_fault(flow.provider_type, "read_timeout", delay=READ_TIMEOUT + 1.0)
    started = time.monotonic()
    checkout, shopper, resp = submit(live_app, flow)
    assert time.monotonic() - started < READ_TIMEOUT + 5  # the configured timeout applied
    assert len(orders_of(state, flow)) == 1  # the provider acted; its answer never came
    # We cannot know whether the provider took it: the shopper is told we are checking.
    assert resp.status_code == 303 and resp.headers["Location"].endswith(checkout["id"])
    assert_checking(live_app, flow, checkout, shopper)

    # Once the page may ask again, the provider's query finds the order: the shopper goes on
    # with that same attempt and pays it, once.
    deadline = time.monotonic() + 10
    page = shopper.http.get(checkout["url"], allow_redirects=False)
    while page.status_code == 200 and CHECKING in page.text and time.monotonic() < deadline:
        time.sleep(0.5)
        page = shopper.http.get(checkout["url"], allow_redirects=False)
    # On to the same attempt: its details page (303), or the choice to continue at the
    # cashier (issue 23: the link opened again never sends the shopper there by itself).
    resumed = page.status_code == 200 and 'id="continue-to-cashier"' in page.text
    assert page.status_code == 303 or resumed, page.text
    assert CHECKING not in page.text
    data = get_checkout(live_app.url, checkout["id"])
    [attempt] = data["payment_attempts"]
    assert attempt["status"] == "pending" and attempt["platform_trade_no"]
    [order] = orders_of(state, flow)
    state.settle(order, OrderStatus.PAID, order.amount)
    assert state.notifier.wait_idle(10)
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == flow.amount
    assert len(data["payment_attempts"]) == 1


@pytest.mark.parametrize("flow", BY_PROVIDER, ids=lambda f: f.provider_type)
def test_slow_answer_within_the_timeout_goes_through(live_app: LiveApp, flow: Flow) -> None:
    live_app.sandbox.state.inject_fault(flow.provider_type, "slow", delay=READ_TIMEOUT / 3)
    checkout, _shopper, resp = submit(live_app, flow)
    assert resp.status_code == 303, resp.text
    [attempt] = get_checkout(live_app.url, checkout["id"])["payment_attempts"]
    assert attempt["status"] == "pending"


@pytest.fixture
def unanswered() -> Iterator[UnansweredListener]:
    with UnansweredListener() as listener:
        yield listener


def _unanswered_base_url(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"base_url": request.getfixturevalue("unanswered").url}


@pytest.mark.provider_config(**{name: _unanswered_base_url for name in INSTANCES})
@pytest.mark.parametrize("flow", BY_PROVIDER, ids=lambda f: f.provider_type)
def test_connect_timeout_on_create(
    unanswered: UnansweredListener, live_app: LiveApp, flow: Flow
) -> None:
    started = time.monotonic()
    checkout, _shopper, resp = submit(live_app, flow)
    assert time.monotonic() - started < CONNECT_TIMEOUT + 5
    # No connection means no request reached the provider: a plain, retryable failure.
    assert resp.status_code == 422, resp.text
    assert 'id="form-error"' in resp.text and NOT_ANSWERING in resp.text
    data = get_checkout(live_app.url, checkout["id"])
    [attempt] = data["payment_attempts"]
    assert attempt["status"] == "failed" and attempt["failure_code"] == "connection_error"
    assert data["status"] == "open"  # the shopper may try again at once


# ---------------------------------------------------------------- the sandbox mechanism
def test_connection_reset_is_a_connection_error(sandbox: RunningSandbox) -> None:
    sandbox.state.inject_fault("diamondpay", "connection_reset")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/diamondpay/gateway/api/v2/payments", json={}, timeout=5)
    # Used up: the next call is answered (here with Diamond Pay's parameter error).
    resp = requests.post(f"{sandbox.url}/diamondpay/gateway/api/v2/payments", json={}, timeout=5)
    assert resp.status_code == 200 and resp.json()["error_code"] == "0001"


def test_faults_count_and_endpoint(sandbox: RunningSandbox) -> None:
    state = sandbox.state
    state.inject_fault("paypro", "http_500", endpoint="query", count=2)
    url = f"{sandbox.url}/paypro/v1/paypro"
    assert requests.post(f"{url}/paymentLink", json={}, timeout=5).status_code == 200
    assert requests.post(f"{url}/queryPayInResult", json={}, timeout=5).status_code == 500
    assert requests.post(f"{url}/queryPayInResult", json={}, timeout=5).status_code == 500
    assert requests.post(f"{url}/queryPayInResult", json={}, timeout=5).status_code == 200
    state.inject_fault("teemopay", "html_error", count=None, status=200)
    for _ in range(3):  # until cleared
        resp = requests.post(f"{sandbox.url}/teemopay/api/pay/payment/create/v1", timeout=5)
        assert resp.status_code == 200 and resp.text.startswith("<html>")
    state.faults.clear()
    resp = requests.post(f"{sandbox.url}/teemopay/api/pay/payment/create/v1", timeout=5)
    assert resp.headers["Content-Type"].startswith("application/json")


def test_bad_injections_are_refused(sandbox: RunningSandbox) -> None:
    state = sandbox.state
    for kwargs in (
        {"provider": "paypal", "kind": "http_500"},
        {"provider": "paypro", "kind": "explode"},
        {"provider": "paypro", "kind": "connect_timeout"},
        {"provider": "paypro", "kind": "slow", "delay": 10_000},
        {"provider": "paypro", "kind": "http_500", "endpoint": "refund"},
        {"provider": "paypro", "kind": "http_500", "count": 0},
    ):
        with pytest.raises(FaultError):
            state.inject_fault(**kwargs)
    assert state.faults.pending() == []


def test_faults_control_endpoint(sandbox: RunningSandbox) -> None:
    control = f"{sandbox.url}/_sandbox/faults"
    resp = requests.post(
        control,
        json={"provider": "teemopay", "kind": "malformed_json", "endpoint": "create", "count": 1},
        timeout=5,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["kind"] == "malformed_json"
    assert [f["provider"] for f in requests.get(control, timeout=5).json()["faults"]] == [
        "teemopay"
    ]
    bad = requests.post(
        control, json={"provider": "teemopay", "kind": "connect_timeout"}, timeout=5
    )
    assert bad.status_code == 400 and "UnansweredListener" in bad.json()["error"]
    assert requests.post(control, data="x", timeout=5).status_code == 400
    created = requests.post(f"{sandbox.url}/teemopay/api/pay/payment/create/v1", timeout=5)
    assert created.status_code == 200
    with pytest.raises(ValueError):
        created.json()
    requests.post(
        control, json={"provider": "paypro", "kind": "http_500", "count": None}, timeout=5
    )
    assert requests.delete(control, timeout=5).status_code == 204
    assert requests.get(control, timeout=5).json() == {"faults": []}


def test_unanswered_listener_times_out_connecting() -> None:
    with UnansweredListener() as listener:
        started = time.monotonic()
        with pytest.raises(requests.ConnectTimeout):
            requests.get(listener.url, timeout=(0.3, 1))
        assert time.monotonic() - started < 3
