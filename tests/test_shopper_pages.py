"""Shopper pages over HTTP (issue 14 and issue 13 section 4): routes that only parse and
render, the IP rule's message, pay-link errors that name their reason, the docs' replay."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path
from typing import Any

import requests

from checkout.domain.states import AttemptStatus
from tests.conftest import LiveApp
from tests.support.app_config import LINK_SECRET
from tests.support.shopper import (
    FLOWS,
    MX_PAYER,
    Shopper,
    api_headers,
    create_checkout,
    get_checkout,
)
from tests.test_limits import PAYPRO_KR, add_attempts

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "checkout" / "web" / "shopper" / "pages.py"


def test_routes_parse_and_render_only() -> None:
    tree = ast.parse(PAGES.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    long = {f.name: f.end_lineno - f.lineno + 1 for f in functions if f.end_lineno}
    assert {name: n for name, n in long.items() if n > 25} == {}
    names = {f.name for f in functions}
    assert not {"_load", "_check_ip_limit", "_resolve_unknown"} & names
    source = PAGES.read_text()
    assert "start_payment" not in source and "| Checkout" not in source
    assert "from checkout.store.models" not in source  # one read model: CheckoutView


def test_ip_rule_names_the_methods_that_remain(live_app: LiveApp) -> None:
    add_attempts(live_app, 10, provider="paypro_kr")
    checkout = create_checkout(live_app.url)
    resp = Shopper(checkout["url"]).submit(PAYPRO_KR.method, PAYPRO_KR.payer)
    assert resp.status_code == 422
    text = html.unescape(resp.text)
    assert "You can still pay with:" in text
    for name in ("Virtual account (in parts)", "Bank card deposit", "QR code deposit"):
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


# ---------------------------------------------------------------- issue 23: changing course
def _flow(name: str) -> Any:
    return next(f for f in FLOWS if f.name == name)


def test_the_link_opened_again_offers_the_cashier_or_another_way(live_app: LiveApp) -> None:
    from tests.test_flows import settle

    flow = _flow("paypro_kr_link")
    checkout = create_checkout(live_app.url, amount=flow.amount, locale="ko")
    shopper = Shopper(checkout["url"])
    paid = shopper.submit(flow.method, flow.payer)
    cashier = paid.headers["Location"]  # right after Pay: straight to the cashier
    assert paid.status_code == 303 and cashier.startswith(live_app.sandbox.url)
    # Opened again (or Back from the cashier): a choice, not a redirect.
    again = shopper.http.get(checkout["url"], allow_redirects=False, timeout=10)
    assert again.status_code == 200, again.headers
    text = html.unescape(again.text)
    assert f'href="{cashier}"' in text and 'data-resume="true"' in text
    assert "PayPro에서 계속하기" in text and 'id="another-way"' in text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', again.text)
    assert token is not None
    other = shopper.http.post(
        f"{checkout['url']}/another-way",
        data={"csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=10,
    )
    assert other.status_code == 303
    form = shopper.http.get(checkout["url"], allow_redirects=False, timeout=10)
    assert form.status_code == 200 and 'id="payment-form"' in form.text
    assert len(live_app.sandbox.state.orders) == 1  # nothing charged twice

    # Money paid after a cancel: the page says how it comes back.
    cancel = requests.post(
        f"{live_app.url}/api/v1/checkouts/{checkout['id']}/cancel",
        headers=api_headers(),
        timeout=10,
    )
    assert cancel.status_code == 200, cancel.text
    settle(live_app, cashier, "pay")
    assert get_checkout(live_app.url, checkout["id"])["amount_paid"] == flow.amount
    page = shopper.http.get(f"{checkout['url']}/return", timeout=10)
    assert 'data-status="cancelled"' in page.text and 'id="money-back"' in page.text
    assert "15,000원 전액을 돌려드립니다" in page.text


def test_a_part_paid_account_says_what_is_still_owed(live_app: LiveApp) -> None:
    from tests.test_flows import cashier_url, settle, start

    flow = _flow("teemopay_kr")
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "part")
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "partially_paid"
    owed = flow.amount - data["amount_paid"]
    details = shopper.http.get(f"{checkout['url']}/pay", timeout=10).text
    assert "This payment is finished" not in details and 'id="payment-finished"' not in details
    assert "Send the rest to the same account" in details and 'id="still-owed"' in details
    assert f'data-copy="{owed}"' in details  # the amount to send is what is owed
    assert 'id="account-number"' in details  # the same account, still shown
    back = shopper.http.get(f"{checkout['url']}/return", timeout=10).text
    assert "will contact you about the rest" not in back
    assert 'id="still-owed"' in back and f"KRW {owed:,}" in back and 'id="pay-the-rest"' in back


def test_diamond_pays_qr_page_says_to_scan(live_app: LiveApp) -> None:
    flow = _flow("diamondpay_kr")
    checkout = create_checkout(live_app.url, amount=flow.amount, locale="es")
    shopper = Shopper(checkout["url"])
    assert shopper.submit("diamond_qr", flow.payer).status_code == 303
    page = html.unescape(shopper.http.get(f"{checkout['url']}/pay", timeout=10).text)
    assert 'data-kind="qr"' in page and 'id="scan-qr"' in page and "<svg" in page
    assert "Escanee este código QR con la app de su banco" in page
    assert "envíe una transferencia a este número de tarjeta" not in page
    assert "Transfiera a esta tarjeta bancaria" not in page


def test_method_hints_are_whole_and_in_the_shoppers_words(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url, locale="ko")
    page = requests.get(checkout["url"], timeout=10).text
    assert "대행사" not in page and "어느 은행에서나 안내된 계좌로 이체" in page
    css = (ROOT / "static" / "checkout.css").read_text()
    hint_rule = re.search(r"\.mhint\{[^}]*\}", css)
    assert hint_rule is not None and "ellipsis" not in hint_rule.group(0)
    assert "nowrap" not in hint_rule.group(0)
    assert re.search(r":lang\(ko\)\{[^}]*word-break:keep-all", css)
    # The birth date is typed (year first, as the hint says), never the browser's date widget.
    va = requests.get(checkout["url"], params={"method": "paypro_kr_va"}, timeout=10).text
    field = re.search(r'<input id="birth_date"[^>]*>', va)
    assert field is not None and 'type="text"' in field.group(0), va
    assert 'inputmode="numeric"' in field.group(0) and "예: 1990-05-17" in va
