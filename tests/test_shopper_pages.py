"""Shopper pages over HTTP (issue 14 and issue 13 section 4): routes that only parse and
render, the IP rule's message, pay-link errors that name their reason, the docs' replay."""

from __future__ import annotations

import ast
import html
from pathlib import Path

import requests

from checkout.domain.states import AttemptStatus
from tests.conftest import LiveApp
from tests.support.app_config import LINK_SECRET
from tests.support.shopper import FLOWS, MX_PAYER, Shopper, api_headers, create_checkout
from tests.test_limits import PAYPRO_KR, add_attempts

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "checkout" / "blueprints" / "pages.py"


def test_routes_parse_and_render_only() -> None:
    tree = ast.parse(PAGES.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    long = {f.name: f.end_lineno - f.lineno + 1 for f in functions if f.end_lineno}
    assert {name: n for name, n in long.items() if n > 25} == {}
    names = {f.name for f in functions}
    assert not {"_load", "_check_ip_limit", "_resolve_unknown"} & names
    source = PAGES.read_text()
    assert "start_payment" not in source and "| Checkout" not in source
    assert "from checkout.models" not in source  # one read model: CheckoutView


def test_ip_rule_names_the_methods_that_remain(live_app: LiveApp) -> None:
    add_attempts(live_app, 10, provider="paypro_kr")
    checkout = create_checkout(live_app.url)
    resp = Shopper(checkout["url"]).submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert resp.status_code == 422
    text = html.unescape(resp.text)
    assert "You can still pay with:" in text
    for name in ("Virtual account (TeemoPay)", "Bank card deposit", "QR code deposit"):
        assert name in text
    assert "KakaoPay," not in text.split("You can still pay with:")[1].split("</p>")[0]


def test_ip_rule_says_when_it_resets_where_every_method_is_paypro(live_app: LiveApp) -> None:
    add_attempts(live_app, 3, status=AttemptStatus.PAID, provider="paypro_mx")
    checkout = create_checkout(live_app.url, amount=25000, currency="MXN", locale="es")
    resp = Shopper(checkout["url"]).submit("mx_spei", MX_PAYER)
    assert resp.status_code == 422
    text = html.unescape(resp.text)
    assert "No se hizo ningún cargo" in text
    assert "a partir del" in text and "00:00" in text and "Ciudad de México" in text


def test_pay_link_errors_name_the_reason(live_app: LiveApp) -> None:
    namespace: dict[str, object] = {}
    from tests.test_docs import snippet

    exec(snippet("shops/pay-links.md", "def pay_link"), namespace)  # noqa: S102 - our docs
    make = namespace["pay_link"]
    foreign = make(
        live_app.url, "shop", LINK_SECRET, "L-1", 15000, "KRW", "https://elsewhere.example/x"
    )  # type: ignore[operator]
    resp = requests.get(foreign, timeout=10)
    assert resp.status_code == 400 and "allowed origins" in html.unescape(resp.text)
    good = make(live_app.url, "shop", LINK_SECRET, "L-2", 15000, "KRW", f"{live_app.url}/done")  # type: ignore[operator]
    tampered = good.replace("amount=15000", "amount=1500")
    resp = requests.get(tampered, timeout=10)
    assert resp.status_code == 400 and "signature does not match" in html.unescape(resp.text)
    resp = requests.get(f"{live_app.url}/pay/shop?order_id=x", timeout=10)
    assert resp.status_code == 400 and "incomplete" in resp.text


def test_create_with_the_same_idempotency_key_replays_201(live_app: LiveApp) -> None:
    """What the Shop API page's create example says, exactly."""
    body = {
        "order_id": "R-1",
        "amount": 15000,
        "currency": "KRW",
        "return_url": f"{live_app.url}/x",
    }
    headers = {**api_headers(), "Idempotency-Key": "R-1-create"}
    first = requests.post(
        f"{live_app.url}/api/v1/checkouts", json=body, headers=headers, timeout=10
    )
    again = requests.post(
        f"{live_app.url}/api/v1/checkouts", json=body, headers=headers, timeout=10
    )
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    plain = requests.post(
        f"{live_app.url}/api/v1/checkouts", json=body, headers=api_headers(), timeout=10
    )
    assert plain.status_code == 200 and plain.json()["id"] == first.json()["id"]


def test_method_switch_posted_without_javascript_keeps_values(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    page = shopper.open("kakaopay")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    data = {
        "csrf_token": token,
        "shown_method": "kakaopay",
        "method": "paypro_kr_va",
        "switch": "1",
        "first_name": "Minsu",
        "last_name": "Kim",
        "email": "minsu@example.com",
    }
    resp = shopper.http.post(checkout["url"], data=data, allow_redirects=False, timeout=10)
    assert resp.status_code == 200
    assert 'id="birth_date"' in resp.text and 'value="minsu@example.com"' in resp.text
    assert 'id="error-summary"' not in resp.text


def test_flows_are_unchanged_for_every_integration(live_app: LiveApp) -> None:
    """Each integration still starts from the form through the new use case."""
    for flow in FLOWS:
        checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
        resp = Shopper(checkout["url"]).submit(flow.method, flow.payer)
        assert resp.status_code == 303, (flow.name, resp.text[:300])
