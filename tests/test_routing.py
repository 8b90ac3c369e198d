"""Korean bank transfer routed over PayPro KR VA, TeemoPay 801 and Diamond Pay SVC0016
(checkout/sandbox.toml), against sandboxes told to misbehave."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from checkout.sandbox.faults import UnansweredListener
from checkout.store.models import PaymentAttempt, ProviderExchange, StateEvent, WebhookEvent
from tests.conftest import LiveApp
from tests.support.shopper import KR_PAYER, Shopper, create_checkout, get_checkout
from tests.test_limits import add_attempts

METHOD = "kr_bank_transfer"
PAYER = {**KR_PAYER, "birth_date": "1990-05-17"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unanswered() -> Iterator[UnansweredListener]:
    with UnansweredListener() as listener:
        yield listener


def pay(live_app: LiveApp, fields: dict[str, str] | None = None) -> tuple[str, requests.Response]:
    checkout = create_checkout(live_app.url, amount=20000)
    resp = Shopper(checkout["url"]).submit(METHOD, fields or PAYER)
    return checkout["id"], resp


def attempts(live_app: LiveApp, checkout_id: str) -> list[tuple[str, str]]:
    data = get_checkout(live_app.url, checkout_id)
    return [(a["provider"], a["status"]) for a in data["payment_attempts"]]


def refuse(live_app: LiveApp, provider: str, code: str, **options: Any) -> None:
    """Through the control endpoint, as a person running the sandbox would."""
    resp = requests.post(
        f"{live_app.sandbox.url}/_sandbox/faults",
        json={"provider": provider, "kind": "refuse", "code": code, **options},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text


def sandbox_orders(live_app: LiveApp) -> list[str]:
    return sorted(provider for provider, _id in live_app.sandbox.state.orders)


def checkout_moves(live_app: LiveApp, checkout_id: str) -> list[tuple[str | None, str]]:
    with live_app.session() as session:
        rows = session.execute(
            select(StateEvent.from_status, StateEvent.to_status)
            .where(StateEvent.checkout_id == checkout_id, StateEvent.kind == "checkout")
            .order_by(StateEvent.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def timeline(live_app: LiveApp, checkout_id: str) -> list[str]:
    with live_app.session() as session:
        return list(
            session.scalars(
                select(StateEvent.detail)
                .where(StateEvent.checkout_id == checkout_id, StateEvent.kind == "attempt")
                .order_by(StateEvent.id)
            )
        )


def calls_to(live_app: LiveApp, provider: str) -> int:
    with live_app.session() as session:
        return session.scalar(
            select(func.count(ProviderExchange.id)).where(ProviderExchange.provider == provider)
        )


# ---------------------------------------------------------------- each refusal kind fails over
@pytest.mark.parametrize("code", ["0100019", "00029", "5000"])
def test_paypro_refusals_fail_over_to_teemopay(live_app: LiveApp, code: str) -> None:
    refuse(live_app, "paypro", code)
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 303, resp.text
    assert attempts(live_app, checkout_id) == [("paypro_kr", "failed"), ("teemopay_kr", "pending")]
    assert sandbox_orders(live_app) == ["teemopay"]
    # The shop heard one checkout.pending, no bounce through open.
    assert checkout_moves(live_app, checkout_id) == [("open", "pending")]
    with live_app.session() as session:
        types = session.scalars(
            select(WebhookEvent.type).where(WebhookEvent.checkout_id == checkout_id)
        ).all()
    # (and the bank details the route issued, which is no status change)
    assert list(types) == ["checkout.pending", "checkout.payment_instructions_issued"]
    # Every decision is on the attempts' timeline.
    details = timeline(live_app, checkout_id)
    assert details[0] == "kr_bank_transfer via paypro_kr (route 1 of 3)"
    assert details[1] == f"failover provider_refused {code}"
    assert details[2] == (
        "kr_bank_transfer via teemopay_kr "
        f"(route 2 of 3; skipped paypro_kr: provider_refused {code})"
    )
    # The VA page shows TeemoPay's account; TeemoPay was told our notify URL for it.
    order = next(iter(live_app.sandbox.state.orders.values()))
    assert order.notify_url.endswith("/notify/teemopay_kr")


@pytest.mark.parametrize(
    ("code", "message"), [("426", None), ("412", None), ("3", None), ("3", "Unstable network")]
)
def test_teemopay_refusals_fail_over_to_diamond_pay(
    live_app: LiveApp, code: str, message: str | None
) -> None:
    refuse(live_app, "paypro", "0100019")
    refuse(live_app, "teemopay", code, **({"message": message} if message else {}))
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 303, resp.text
    assert attempts(live_app, checkout_id) == [
        ("paypro_kr", "failed"),
        ("teemopay_kr", "failed"),
        ("diamondpay_kr", "pending"),
    ]
    assert sandbox_orders(live_app) == ["diamondpay"]
    assert checkout_moves(live_app, checkout_id) == [("open", "pending")]
    created = [d for d in timeline(live_app, checkout_id) if d and "route 3 of 3" in d]
    assert created and created[0].endswith(f"skipped teemopay_kr: provider_refused {code})")
    page = requests.get(live_app.url + resp.headers["Location"], timeout=10)
    assert page.status_code == 200 and "KB" in page.text  # Diamond Pay's deposit details


@pytest.mark.parametrize("code", ["0004", "0006", "0012", "0018"])
def test_the_last_route_refusing_leaves_the_checkout_open(live_app: LiveApp, code: str) -> None:
    refuse(live_app, "paypro", "00029")
    refuse(live_app, "teemopay", "426")
    refuse(live_app, "diamondpay", code)
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 422
    assert 'id="form-error"' in resp.text and "Nothing was charged" in resp.text
    data = get_checkout(live_app.url, checkout_id)
    assert data["status"] == "open"
    assert [a["status"] for a in data["payment_attempts"]] == ["failed"] * 3
    assert data["payment_attempts"][-1]["failure_code"] == code
    assert checkout_moves(live_app, checkout_id) == [("open", "pending"), ("pending", "open")]
    assert sandbox_orders(live_app) == []


def test_an_unknown_refusal_does_not_fail_over(live_app: LiveApp) -> None:
    """00032 UNKNOWN_ERROR says nothing of what PayPro did: the shopper is asked again."""
    refuse(live_app, "paypro", "00032")
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 422
    assert attempts(live_app, checkout_id) == [("paypro_kr", "failed")]
    assert sandbox_orders(live_app) == []


@pytest.mark.provider_config(paypro_kr={"base_url": f"http://127.0.0.1:{closed_port()}"})
def test_a_refused_connection_fails_over(live_app: LiveApp) -> None:
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 303, resp.text
    assert attempts(live_app, checkout_id) == [("paypro_kr", "failed"), ("teemopay_kr", "pending")]
    assert timeline(live_app, checkout_id)[1] == "failover unreachable connection_error"


@pytest.mark.provider_config(
    paypro_kr=lambda request: {
        "base_url": request.getfixturevalue("unanswered").url,
        "connect_timeout": 0.3,
    }
)
def test_a_connect_timeout_fails_over(live_app: LiveApp) -> None:
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 303, resp.text
    assert attempts(live_app, checkout_id) == [("paypro_kr", "failed"), ("teemopay_kr", "pending")]


@pytest.mark.provider_config(paypro_kr={"read_timeout": 0.5})
def test_a_read_timeout_never_fails_over(live_app: LiveApp) -> None:
    live_app.sandbox.state.inject_fault("paypro", "read_timeout", delay=1.5)
    checkout_id, _resp = pay(live_app)
    assert attempts(live_app, checkout_id) == [("paypro_kr", "unknown")]
    assert get_checkout(live_app.url, checkout_id)["status"] == "pending"
    # PayPro created the order (it answered too late); nobody else was asked.
    assert sandbox_orders(live_app) == ["paypro"]
    assert calls_to(live_app, "teemopay_kr") == 0


def test_a_reset_after_sending_never_fails_over(live_app: LiveApp) -> None:
    """The connection dropped after PayPro acted: the answer was lost, not the request."""
    live_app.sandbox.state.inject_fault("paypro", "connection_reset")
    checkout_id, _resp = pay(live_app)
    assert [p for p, _s in attempts(live_app, checkout_id)] == ["paypro_kr"]
    assert calls_to(live_app, "teemopay_kr") == 0


def test_our_ip_rule_skips_paypro_before_anything_is_written(live_app: LiveApp) -> None:
    add_attempts(live_app, 10, provider="paypro_kr")
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 303, resp.text
    assert attempts(live_app, checkout_id) == [("teemopay_kr", "pending")]
    assert timeline(live_app, checkout_id)[0] == (
        "kr_bank_transfer via teemopay_kr (route 2 of 3; skipped paypro_kr: ip_limit attempts)"
    )
    assert calls_to(live_app, "paypro_kr") == 0


def test_single_route_method_keeps_the_ip_limit_message(live_app: LiveApp) -> None:
    add_attempts(live_app, 10, provider="paypro_kr")
    checkout = create_checkout(live_app.url)
    resp = Shopper(checkout["url"]).submit("paypro_kr_va", PAYER)
    assert resp.status_code == 422
    assert "at most 10 payment attempts a day" in resp.text


def test_payer_details_choose_among_the_routes(live_app: LiveApp) -> None:
    """No date of birth: PayPro's VA cannot take the shopper; TeemoPay can."""
    page = Shopper(create_checkout(live_app.url)["url"]).open(METHOD)
    assert 'name="birth_date"' in page.text  # asked, since one route uses it
    checkout_id, resp = pay(live_app, {**KR_PAYER, "birth_date": ""})
    assert resp.status_code == 303, resp.text
    assert attempts(live_app, checkout_id) == [("teemopay_kr", "pending")]
    assert "skipped paypro_kr: payer_rules" in timeline(live_app, checkout_id)[0]


def test_details_no_route_takes_get_the_first_routes_messages(live_app: LiveApp) -> None:
    fields = {**KR_PAYER, "first_name": "M1nsu", "email": "", "birth_date": ""}
    checkout_id, resp = pay(live_app, fields)
    assert resp.status_code == 422
    assert "This field is required." in resp.text  # PayPro's e-mail and date of birth
    assert attempts(live_app, checkout_id) == []


# ---------------------------------------------------------------- circuit breaker
@pytest.mark.app_config(circuit_breaker={"failures": 2, "min_calls": 100, "cool_down_seconds": 2})
def test_a_provider_refusing_every_call_trips_its_circuit(live_app: LiveApp) -> None:
    state = live_app.sandbox.state
    state.inject_fault("paypro", "refuse", code="5000", count=None)  # PayPro down
    for _ in range(2):  # two shoppers meet PayPro's refusal and go on to TeemoPay
        checkout_id, resp = pay(live_app)
        assert resp.status_code == 303
        assert attempts(live_app, checkout_id)[-1] == ("teemopay_kr", "pending")
    assert calls_to(live_app, "paypro_kr") == 2
    # Open: the next shoppers go straight to TeemoPay, without a call to PayPro.
    for _ in range(2):
        checkout_id, resp = pay(live_app)
        assert resp.status_code == 303
        assert attempts(live_app, checkout_id) == [("teemopay_kr", "pending")]
        assert "skipped paypro_kr: circuit_open" in timeline(live_app, checkout_id)[0]
    assert calls_to(live_app, "paypro_kr") == 2
    metrics = requests.get(f"{live_app.url}/metrics", timeout=10).text
    assert (
        'checkout_provider_failovers_total{provider="paypro_kr",reason="provider_refused"} 2.0'
        in metrics
    )
    assert (
        'checkout_provider_failovers_total{provider="paypro_kr",reason="circuit_open"} 2.0'
        in metrics
    )
    # PayPro is back; after the cool-down one probe decides, and closes the circuit.
    state.faults.clear()
    time.sleep(2.2)
    checkout_id, resp = pay(live_app)
    assert attempts(live_app, checkout_id) == [("paypro_kr", "pending")]
    checkout_id, resp = pay(live_app)
    assert attempts(live_app, checkout_id) == [("paypro_kr", "pending")]
    assert calls_to(live_app, "paypro_kr") == 4


@pytest.mark.app_config(circuit_breaker={"failures": 1, "cool_down_seconds": 2})
def test_a_failed_probe_opens_it_again(live_app: LiveApp) -> None:
    state = live_app.sandbox.state
    state.inject_fault("paypro", "refuse", code="0100019", count=None)
    pay(live_app)
    assert calls_to(live_app, "paypro_kr") == 1
    time.sleep(2.2)
    checkout_id, _ = pay(live_app)  # the probe: refused again
    assert attempts(live_app, checkout_id)[0] == ("paypro_kr", "failed")
    checkout_id, _ = pay(live_app)  # open for another cool-down
    assert attempts(live_app, checkout_id) == [("teemopay_kr", "pending")]
    assert calls_to(live_app, "paypro_kr") == 2


@pytest.mark.app_config(circuit_breaker={"failures": 1, "cool_down_seconds": 600})
def test_no_route_left_says_so_and_what_remains(live_app: LiveApp) -> None:
    for provider, code in (("paypro", "5000"), ("teemopay", "412"), ("diamondpay", "0018")):
        refuse(live_app, provider, code)
    pay(live_app)  # every route refused once: every circuit is open now
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 422
    assert "Bank transfer cannot take payments right now" in resp.text
    assert "Please try again in about 10 minutes." in resp.text
    assert "You can also pay with: KakaoPay" in resp.text
    assert get_checkout(live_app.url, checkout_id)["payment_attempts"] == []
    assert checkout_moves(live_app, checkout_id) == []  # nothing written, nothing sent
    # In the shopper's language (checkout/translations; tests/test_i18n.py checks them all).
    korean = create_checkout(live_app.url, amount=20000, locale="ko")
    resp = Shopper(korean["url"]).submit(METHOD, PAYER)
    assert resp.status_code == 422
    assert "지금은 계좌이체 결제를 이용할 수 없습니다." in resp.text  # no particle to pick
    assert "약 10분 후에 다시 시도해 주세요." in resp.text


def test_attempts_stay_within_the_checkout_after_fail_over(live_app: LiveApp) -> None:
    """The second submit while the TeemoPay attempt is live resumes it: nothing new."""
    refuse(live_app, "paypro", "00029")
    checkout = create_checkout(live_app.url, amount=20000)
    shopper = Shopper(checkout["url"])
    first = shopper.submit(METHOD, PAYER)
    again = shopper.submit(METHOD, PAYER, csrf=shopper.csrf)
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    with live_app.session() as session:
        count = session.scalar(select(func.count(PaymentAttempt.id)))
    assert count == 2 and sandbox_orders(live_app) == ["teemopay"]


@pytest.mark.app_config(circuit_breaker={"failures": 2, "cool_down_seconds": 600})
def test_providers_page_shows_open_circuits_and_failovers_by_reason(live_app: LiveApp) -> None:
    from tests.test_admin import add_operator, login

    add_operator(live_app)
    live_app.sandbox.state.inject_fault("paypro", "refuse", code="0100019", count=None)
    for _ in range(3):
        pay(live_app)  # two refusals, then skipped while open
    page = login(live_app).get(f"{live_app.url}/admin/providers").text
    row = page[page.index('id="circuit-paypro_kr"') :]
    row = row[: row.index("</tr>")]
    assert 'class="state">open<' in row and "consecutive_failures" in row
    assert "circuit_open 1, provider_refused 2" in row
    teemo = page[page.index('id="circuit-teemopay_kr"') :]
    assert 'class="state">closed<' in teemo[: teemo.index("</tr>")]
