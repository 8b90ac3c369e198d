"""URLs read as a browser reads them (checkout/urls.py): the API, pay links, pages, config.

(checkout.urls is imported where used, so the HTTP tests also run against older code.)
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import func, select, update

from checkout.config import ConfigError, build_settings
from checkout.services.shop_links import link_signature
from checkout.store.models import Checkout
from tests.conftest import LiveApp
from tests.support.app_config import LINK_SECRET, SHOP_ORIGIN
from tests.support.shopper import api_headers, create_checkout

# What urlsplit and a browser read differently, and what a browser silently repairs.
TRICKS = [
    "https://evil.example\\@shop.example/",  # urlsplit: shop.example; a browser: evil.example
    "https://evil.example\\\\@shop.example/",
    "https://evil.example/\\@shop.example/",
    "https://shop.example@evil.example/",  # user-info dressing one host as another
    "https://user:pw@shop.example/",
    "https://@shop.example/",
    "https://sh\top.example/",  # browsers drop tabs and newlines: sh<TAB>op -> shop
    "https://shop.example/\n",
    " https://shop.example/",
    "https://shop.example/\x00",
    "https://shop.example/\u200b",  # zero-width space
    "https://shop.example/\u202e",  # right-to-left override
    "https://shop.example\u3000/",  # ideographic space
    "javascript:alert(1)",
    "data:text/html,hi",
    "//shop.example/x",
    "ftp://shop.example/",
    "https:",
    "https://",
    "",
]
MALFORMED = [
    ("https://shop.example:abc/", "port"),
    ("https://[::1/", "IPv6"),
    ("https://shop.example:99999/", "port"),
    ("https://exa%00mple/", "host"),
    ("https://a<b/", "host"),
]


@pytest.mark.parametrize("text", TRICKS)
def test_tricks_are_refused(text: str) -> None:
    from checkout.urls import UrlRefused, parse_web_url

    with pytest.raises(UrlRefused):
        parse_web_url(text)


@pytest.mark.parametrize(("text", "why"), MALFORMED)
def test_malformed_urls_are_refused_saying_why(text: str, why: str) -> None:
    from checkout.urls import UrlRefused, parse_web_url

    with pytest.raises(UrlRefused, match=why):
        parse_web_url(text)


@pytest.mark.parametrize(
    ("text", "href", "origin"),
    [
        ("HTTPS://Shop.Example:443/a/../done?x=1#f", "https://shop.example/done?x=1#f", None),
        ("https://%73hop.example/", "https://shop.example/", "https://shop.example"),
        ("https://%65vil.example/", "https://evil.example/", "https://evil.example"),
        ("https://münchen.example/", "https://xn--mnchen-3ya.example/", None),
        ("https://shop.example:8443/x", None, "https://shop.example:8443"),
        ("http://0x7f.1/", "http://127.0.0.1/", "http://127.0.0.1"),
        ("https:shop.example/x", "https://shop.example/x", "https://shop.example"),
        ("https://[::1]:8443/", None, "https://[::1]:8443"),
    ],
)
def test_urls_are_normalised_as_browsers_do(
    text: str, href: str | None, origin: str | None
) -> None:
    from checkout.urls import parse_web_url

    url = parse_web_url(text)
    if href is not None:
        assert url.href == href
    if origin is not None:
        assert url.origin == origin
    assert parse_web_url(url.href) == url  # the serialisation reads back the same


def post(live_app: LiveApp, **fields: object) -> requests.Response:
    body = {
        "order_id": f"u-{time.time_ns()}",
        "amount": 15000,
        "currency": "KRW",
        "return_url": f"{SHOP_ORIGIN}/done",
        **fields,
    }
    return requests.post(
        f"{live_app.url}/api/v1/checkouts", json=body, headers=api_headers(), timeout=10
    )


def count_checkouts(live_app: LiveApp) -> int:
    with live_app.session() as session:
        return session.scalar(select(func.count(Checkout.id))) or 0


@pytest.mark.parametrize("field", ["return_url", "cancel_url"])
@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example\\@shop.example/",
        f"{SHOP_ORIGIN}@evil.example/",
        "https://evil.example\t/",
        "https://%65vil.example/",  # decodes to evil.example: off-origin
        "https://shop.example:abc/",
        "https://[::1/",
        "https://shop.example.evil.example/",
        12345,
    ],
)
def test_api_refuses_every_trick_with_a_400_naming_the_field(
    live_app: LiveApp, field: str, value: object
) -> None:
    """The origin-check bypass (a link browsers resolve to evil.example) and malformed URLs
    (a 500 on main) are 400s naming the field, and create nothing."""
    resp = post(live_app, **{field: value})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["field"] == field
    assert error["code"] in (f"invalid_{field}", f"{field}_not_allowed")
    assert error["message"].startswith(field)
    assert count_checkouts(live_app) == 0


def test_api_stores_and_renders_the_normalised_url(live_app: LiveApp) -> None:
    created = create_checkout(
        live_app.url,
        return_url="HTTPS://SHOP.example:443/a/../done",
        cancel_url="https://%73hop.example/cart?x=1",
    )
    assert created["return_url"] == f"{SHOP_ORIGIN}/done"
    assert created["cancel_url"] == f"{SHOP_ORIGIN}/cart?x=1"
    page = requests.get(created["url"], timeout=10)
    assert f'href="{SHOP_ORIGIN}/cart?x=1"' in page.text


def test_a_stored_trick_is_never_rendered(live_app: LiveApp) -> None:
    """A row written before these rules: the page leaves the link out rather than render
    what a browser would resolve elsewhere."""
    created = create_checkout(live_app.url, cancel_url=f"{SHOP_ORIGIN}/cart")
    with live_app.session() as session:
        session.execute(
            update(Checkout)
            .where(Checkout.id == created["id"])
            .values(cancel_url="https://evil.example\\@shop.example/")
        )
        session.commit()
    page = requests.get(created["url"], timeout=10)
    assert page.status_code == 200
    assert "evil.example" not in page.text and 'id="cancel-link"' not in page.text


def pay_link(live_app: LiveApp, return_url: str) -> str:
    values = {
        "order_id": f"L-{time.time_ns()}",
        "amount": "15000",
        "currency": "KRW",
        "return_url": return_url,
        "expires": str(int(time.time()) + 600),
    }
    values["sig"] = link_signature("shop", LINK_SECRET, values)
    return f"{live_app.url}/pay/shop?{urlencode(values)}"


@pytest.mark.parametrize(
    ("return_url", "says"),
    [
        ("https://shop.example:abc/", "not a valid web address"),
        ("https://[::1/", "not a valid web address"),
        ("https://evil.example\\@shop.example/", "not a valid web address"),
        ("https://%65vil.example/", "not on the shop"),
    ],
)
def test_signed_pay_link_with_a_bad_return_url_is_an_error_page(
    live_app: LiveApp, return_url: str, says: str
) -> None:
    resp = requests.get(pay_link(live_app, return_url), allow_redirects=False, timeout=10)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"].startswith("text/html")
    assert says in resp.text
    assert count_checkouts(live_app) == 0


def test_pay_link_return_url_is_stored_normalised(live_app: LiveApp) -> None:
    resp = requests.get(
        pay_link(live_app, "HTTPS://shop.EXAMPLE/x/../done"), allow_redirects=False, timeout=10
    )
    assert resp.status_code == 303
    with live_app.session() as session:
        assert session.scalars(select(Checkout.return_url)).one() == f"{SHOP_ORIGIN}/done"


def _store_raw(**store: object) -> dict[str, object]:
    return {
        "sandbox": True,
        "stores": {"s": {"api_keys": ["k"], "allowed_origins": [SHOP_ORIGIN], **store}},
    }


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example\\@shop.example",
        "https://shop.example@evil.example",
        "https://shop.example:abc",
        "https://[::1",
        "https://sh\top.example",
    ],
)
def test_configured_origins_are_read_as_a_browser_reads_them(tmp_path: Path, origin: str) -> None:
    with pytest.raises(ConfigError, match="allowed_origins"):
        build_settings(_store_raw(allowed_origins=[origin]), tmp_path)


def test_configured_origins_and_webhook_url_are_normalised(tmp_path: Path) -> None:
    settings = build_settings(
        _store_raw(
            allowed_origins=["HTTPS://Shop.Example:443/"],
            webhook_url="https://HOOKS.example:443/a/../in",
            webhook_secret="whsec_" + "A" * 32,
        ),
        tmp_path,
    )
    store = settings.stores["s"]
    assert store.allowed_origins == (SHOP_ORIGIN,)
    assert store.webhook_url == "https://hooks.example/in"
    with pytest.raises(ConfigError, match="webhook_url"):
        build_settings(
            _store_raw(
                webhook_url="https://hooks.example\\@shop.example/",
                webhook_secret="whsec_" + "A" * 32,
            ),
            tmp_path,
        )
