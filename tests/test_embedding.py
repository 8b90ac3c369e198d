"""Embedding in a shop's page: frame headers, the cookie-free form token, postMessage targets."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from checkout.forms import FORM_TOKEN_MAX_AGE, check_form_token, form_token
from checkout.store.models import PaymentAttempt
from tests.conftest import LiveApp
from tests.support.app_config import SHOP_ORIGIN
from tests.support.shopper import CSRF_RE, FLOWS, KR_PAYER, Shopper, api_headers, create_checkout

SECOND_ORIGIN = "https://www.shop.example:8443"
store_origins = pytest.mark.store_config(shop={"allowed_origins": [SHOP_ORIGIN, SECOND_ORIGIN]})
ROOT = Path(__file__).resolve().parent.parent


def csp(resp: requests.Response) -> dict[str, str]:
    policy = resp.headers["Content-Security-Policy"]
    directives = (part.strip().partition(" ") for part in policy.split(";"))
    return {name: value for name, _, value in directives}


def assert_framable_by_shop(resp: requests.Response) -> None:
    directives = csp(resp)
    assert directives["frame-ancestors"] == f"{SHOP_ORIGIN} {SECOND_ORIGIN}"
    assert "X-Frame-Options" not in resp.headers
    # The rest of the policy is unchanged.
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["base-uri"] == "'none'"


def assert_not_framable(resp: requests.Response) -> None:
    assert csp(resp)["frame-ancestors"] == "'none'"
    assert resp.headers["X-Frame-Options"] == "DENY"


def attempts(live_app: LiveApp) -> int:
    with live_app.session() as session:
        return session.scalar(select(func.count()).select_from(PaymentAttempt)) or 0


def framed(shopper: Shopper) -> Shopper:
    """What a browser says for navigations inside an iframe."""
    shopper.http.headers.update({"Sec-Fetch-Dest": "iframe"})
    return shopper


# ---------------------------------------------------------------- frame headers
@store_origins
def test_shopper_pages_may_be_framed_by_the_store_origins(live_app: LiveApp) -> None:
    va = next(f for f in FLOWS if f.method == "teemopay_va")
    checkout = create_checkout(live_app.url, amount=va.amount, currency=va.currency)
    shopper = Shopper(checkout["url"])
    assert_framable_by_shop(shopper.open(va.method))
    resp = shopper.submit(va.method, va.payer)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/pay")
    assert_framable_by_shop(shopper.http.get(live_app.url + resp.headers["Location"]))
    assert_framable_by_shop(shopper.http.get(f"{checkout['url']}/return"))
    # A failed form (422) too: it is shown inside the frame.
    other = create_checkout(live_app.url)
    refused = Shopper(other["url"]).submit("kakaopay", KR_PAYER, csrf="forged")
    assert refused.status_code == 422
    assert_framable_by_shop(refused)


@store_origins
def test_continue_page_may_be_framed(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    shopper = framed(Shopper(checkout["url"]))
    resp = shopper.submit("kakaopay", KR_PAYER)
    assert resp.status_code == 303
    assert_framable_by_shop(shopper.http.get(live_app.url + resp.headers["Location"]))


@store_origins
def test_other_pages_refuse_framing(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    for path in (
        "/",
        "/c/co_does_not_exist",
        f"/c/{checkout['id']}/status",
        "/static/checkout.js",
        "/static/embed.js",
    ):
        assert_not_framable(requests.get(live_app.url + path, timeout=10))
    assert_not_framable(
        requests.get(
            f"{live_app.url}/api/v1/checkouts/{checkout['id']}", headers=api_headers(), timeout=10
        )
    )


def test_security_headers_on_every_response(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    for resp in (
        requests.get(live_app.url + "/", timeout=10),
        requests.get(checkout["url"], timeout=10),
        requests.post(f"{live_app.url}/api/v1/checkouts", json={}, timeout=10),
    ):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "camera=()" in resp.headers["Permissions-Policy"]
        assert "Content-Security-Policy" in resp.headers
        assert "Strict-Transport-Security" not in resp.headers  # served over http here
    # No session or CSRF cookie: nothing the frame would lose when cookies are blocked.
    assert "Set-Cookie" not in requests.get(checkout["url"], timeout=10).headers


@pytest.mark.app_config(public_base_url="https://pay.example")
def test_hsts_when_public_url_is_https(live_app: LiveApp) -> None:
    resp = live_app.app.test_client().get("/")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


# ---------------------------------------------------------------- the form token
def test_form_token_unit() -> None:
    now = 1_800_000_000
    token = form_token("key", "co_a", issued_at=now)
    assert check_form_token("key", "co_a", token, now=now + 10)
    assert check_form_token("key", "co_a", token, now=now + FORM_TOKEN_MAX_AGE)
    assert not check_form_token("key", "co_a", token, now=now + FORM_TOKEN_MAX_AGE + 1)
    assert not check_form_token("key", "co_a", token, now=now - 3600)  # from the future
    assert not check_form_token("other-key", "co_a", token, now=now)
    assert not check_form_token("key", "co_b", token, now=now)  # another checkout
    issued, mac = token.split(".")
    assert not check_form_token("key", "co_a", f"{int(issued) + 1}.{mac}", now=now)
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert not check_form_token("key", "co_a", f"{issued}.{flipped}", now=now)
    for bad in (None, "", ".", "abc", f"{issued}.", f".{mac}", f"-1.{mac}", f"x{issued}.{mac}"):
        assert not check_form_token("key", "co_a", bad, now=now)


def refused(live_app: LiveApp, resp: requests.Response) -> None:
    assert resp.status_code == 422
    assert "Your session expired. Please submit the form again." in resp.text
    assert attempts(live_app) == 0
    assert len(live_app.sandbox.state.orders) == 0


def test_tampered_token_is_refused(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    token = CSRF_RE.search(shopper.open("kakaopay").text).group(1)  # type: ignore[union-attr]
    issued, mac = token.split(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    refused(live_app, shopper.submit("kakaopay", KR_PAYER, csrf=f"{issued}.{flipped}"))
    refused(live_app, shopper.submit("kakaopay", KR_PAYER, csrf=f"{int(issued) - 1}.{mac}"))
    # The refused form carries a fresh token that works.
    again = shopper.http.post(
        checkout["url"], params={"method": "kakaopay"}, data={}, allow_redirects=False
    )
    fresh = CSRF_RE.search(again.text).group(1)  # type: ignore[union-attr]
    assert shopper.submit("kakaopay", KR_PAYER, csrf=fresh).status_code == 303


def test_expired_token_is_refused(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    secret = live_app.app.config["SECRET_KEY"]
    old = form_token(secret, checkout["id"], issued_at=int(time.time()) - FORM_TOKEN_MAX_AGE - 5)
    refused(live_app, Shopper(checkout["url"]).submit("kakaopay", KR_PAYER, csrf=old))


def test_token_of_another_checkout_is_refused(live_app: LiveApp) -> None:
    first = create_checkout(live_app.url)
    second = create_checkout(live_app.url)
    token = CSRF_RE.search(Shopper(first["url"]).open("kakaopay").text).group(1)  # type: ignore[union-attr]
    refused(live_app, Shopper(second["url"]).submit("kakaopay", KR_PAYER, csrf=token))


def test_form_works_without_any_cookie(live_app: LiveApp) -> None:
    """As in a cross-site iframe with third-party cookies blocked: no cookie jar at all."""
    checkout = create_checkout(live_app.url)
    page = requests.get(checkout["url"], params={"method": "kakaopay"}, timeout=10)
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    resp = requests.post(
        checkout["url"],
        params={"method": "kakaopay"},
        data={"csrf_token": token, "method": "kakaopay", **KR_PAYER},
        headers={"Sec-Fetch-Dest": "document"},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith(live_app.sandbox.url)


# ---------------------------------------------------------------- leaving the frame
def test_redirect_from_a_frame_goes_through_the_continue_page(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    shopper = framed(Shopper(checkout["url"]))
    resp = shopper.submit("kakaopay", KR_PAYER)
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/c/{checkout['id']}/continue"
    page = shopper.http.get(live_app.url + resp.headers["Location"])
    assert page.status_code == 200
    link = re.search(r'id="continue-to-cashier" href="([^"]+)" target="_top"', page.text)
    assert link, page.text
    assert link.group(1).startswith(f"{live_app.sandbox.url}/cashier/")
    # Reopening the checkout in the frame offers the same cashier (never a second charge) or
    # another way to pay; it does not send the shopper back by itself (issue 23).
    again = shopper.http.get(checkout["url"], allow_redirects=False)
    assert again.status_code == 200 and 'data-resume="true"' in again.text
    assert link.group(0) in again.text and 'id="another-way"' in again.text
    # A browser that does not say where the page shows gets the same choice.
    plain = requests.get(checkout["url"], allow_redirects=False, timeout=10)
    assert plain.status_code == 200 and link.group(0) in plain.text
    assert len(live_app.sandbox.state.orders) == 1


def test_continue_page_without_a_cashier_goes_to_the_status(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    resp = requests.get(f"{checkout['url']}/continue", allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/return")


# ---------------------------------------------------------------- postMessage targets
@store_origins
def test_pages_name_the_store_origins_as_postmessage_targets(live_app: LiveApp) -> None:
    va = next(f for f in FLOWS if f.method == "teemopay_va")
    checkout = create_checkout(live_app.url, amount=va.amount, currency=va.currency)
    shopper = Shopper(checkout["url"])
    body = (
        f'<body data-checkout-id="{checkout["id"]}" '
        f'data-parent-origins="{SHOP_ORIGIN} {SECOND_ORIGIN}">'
    )
    assert body in shopper.open(va.method).text
    resp = shopper.submit(va.method, va.payer)
    details = shopper.http.get(live_app.url + resp.headers["Location"]).text
    assert body in details and 'data-status="pending"' in details
    assert body in shopper.http.get(f"{checkout['url']}/return").text
    # Pages outside a checkout post nothing.
    assert "data-parent-origins" not in requests.get(live_app.url + "/", timeout=10).text


def test_scripts_never_post_to_any_origin() -> None:
    checkout_js = (ROOT / "static" / "checkout.js").read_text()
    # Every postMessage names one of the page's store origins as its target.
    assert re.findall(r"postMessage\(([^)]*)\)", checkout_js) == ["message, origin"]
    assert "body.dataset.parentOrigins" in checkout_js
    embed_js = (ROOT / "static" / "embed.js").read_text()
    assert "event.origin !== frame.origin" in embed_js
