"""The checkout framed by a shop on another site, in a real Chromium, third-party cookies blocked.

The shop's page is served on http://127.0.0.1:<port>, the checkout on http://localhost:<port>:
two sites, so the checkout's frame is a third party and gets no cookies. The checkout's store
lists the shop's origin in `allowed_origins` (frame-ancestors, postMessage targets).

Third-party cookies: Chromium 156 already blocks them in Playwright's contexts (incognito-like
profiles); `--test-third-party-cookie-phaseout` asks for the phase-out explicitly, and
`test_third_party_cookies_are_blocked_in_the_frame` checks it rather than trusting a flag.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask, request

from tests.conftest import LiveApp
from tests.support.app_config import SHOP_ORIGIN
from tests.support.live import LiveServer, serve
from tests.support.shopper import FLOWS, Flow, create_checkout

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not shutil.which("chromium"),
        reason=f"browser tests need Chromium at {CHROMIUM} (.ci/run installs it with apt-get)",
    ),
    # The checkout on http://localhost:<port>; the shop page on http://127.0.0.1:<port>.
    pytest.mark.live_host("localhost"),
    pytest.mark.store_config(
        shop=lambda req: {"allowed_origins": [SHOP_ORIGIN, req.getfixturevalue("shop_site").url]}
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")

WAIT_MS = 20_000
EMBEDDING_DOC = Path(__file__).resolve().parents[2] / "docs" / "shops" / "embedding.md"

SHOP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title></head>
<body>
<h1>Shop</h1>
<div id="slot"></div>
<script>window.events = [];</script>
<script src="%(origin)s/static/embed.js"></script>
<script>
  Checkout.onEvent(function (event) { window.events.push(event); });
  window.handle = Checkout[%(how)s](%(url)s, "#slot");
</script>
</body></html>
"""


def shop_app() -> Flask:
    """The shop: one page that includes embed.js from the checkout and mounts a checkout."""
    app = Flask("shop")

    @app.get("/readme-shop.html")
    def readme_shop_page() -> str:
        """The docs' embed snippet as written, with our checkout host in it."""
        url = request.args["checkout"]
        blocks = re.findall(r"```html\n(.*?)```", EMBEDDING_DOC.read_text(), flags=re.S)
        [snippet] = [b for b in blocks if "embed.js" in b]
        embed = snippet.replace("https://pay.example.com", url.split("/c/", 1)[0])
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Shop</title></head><body>"
            f"<script>window.events = []; var checkoutUrl = {json.dumps(url)};"
            " function showThanks() { document.title = 'Thanks'; }</script>"
            f"{embed}<script>Checkout.onEvent(function (e) {{ window.events.push(e); }});</script>"
            "</body></html>"
        )

    @app.get("/shop.html")
    def shop_page() -> str:
        url = request.args["checkout"]
        how = "open" if request.args.get("how") == "open" else "mount"
        origin = url.split("/c/", 1)[0]
        return SHOP_PAGE % {
            "origin": origin,
            "how": json.dumps(how),
            "url": json.dumps(url),
        }

    return app


@pytest.fixture
def shop_site() -> Iterator[LiveServer]:
    server = serve(shop_app())  # http://127.0.0.1:<port>
    try:
        yield server
    finally:
        server.shutdown()


def open_shop(page, shop_site: LiveServer, checkout_url: str, how: str = "mount"):  # type: ignore[no-untyped-def]
    page.goto(f"{shop_site.url}/shop.html?" + urlencode({"checkout": checkout_url, "how": how}))
    return page.frame_locator("#slot iframe, iframe")


def checkout_frame(page):  # type: ignore[no-untyped-def]
    return page.locator("iframe").element_handle().content_frame()


def fill_and_submit(frame, flow: Flow) -> None:  # type: ignore[no-untyped-def]
    frame.locator("form button[type=submit]").wait_for()
    for name, value in flow.payer.items():
        field = frame.locator(f'form [name="{name}"]')
        if value and field.count():
            field.fill(value)
    frame.locator("form button[type=submit]").click()


def wait_for_event(page, kind: str, status: str | None = None) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "([kind, status]) => window.events.some("
        "  e => e.type === kind && (status === null || e.status === status))",
        arg=[kind, status],
        timeout=WAIT_MS,
    )


def test_third_party_cookies_are_blocked_in_the_frame(
    live_app: LiveApp, shop_site: LiveServer, page
) -> None:  # type: ignore[no-untyped-def]
    assert live_app.url.startswith("http://localhost:")
    checkout = create_checkout(live_app.url)
    frame_locator = open_shop(page, shop_site, checkout["url"])
    frame_locator.locator("form").wait_for()
    frame = checkout_frame(page)
    set_cookie = (
        "() => { document.cookie = 'probe=1; SameSite=None; Secure'; return document.cookie; }"
    )
    assert "probe=1" not in frame.evaluate(set_cookie)  # a third party: blocked
    # The same cookie on the checkout's own site, as the top page, is kept: the probe works.
    top = page.context.new_page()
    top.goto(checkout["url"])
    assert "probe=1" in top.evaluate(set_cookie)


def test_va_in_frame_tells_the_shop_it_is_paid(
    live_app: LiveApp, shop_site: LiveServer, page
) -> None:  # type: ignore[no-untyped-def]
    flow = next(f for f in FLOWS if f.method == "teemopay_va")
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    frame_locator = open_shop(page, shop_site, f"{checkout['url']}?method={flow.method}")
    wait_for_event(page, "checkout.ready")

    fill_and_submit(frame_locator, flow)
    # The bank details show inside the frame; the form needed no cookie (none was set).
    frame_locator.locator("#account-number").wait_for()
    assert page.url.startswith(shop_site.url)
    assert checkout_frame(page).url.endswith(f"/c/{checkout['id']}/pay")
    assert page.context.cookies([live_app.url]) == []
    wait_for_event(page, "checkout.status", "pending")

    deposit = frame_locator.locator("#sandbox-deposit").get_attribute("href")
    assert deposit
    resp = requests.post(deposit, data={"action": "pay"}, allow_redirects=False, timeout=10)
    assert resp.status_code in (200, 303), resp.text
    assert live_app.sandbox.state.notifier.wait_idle(10)

    wait_for_event(page, "checkout.status", "paid")
    events = page.evaluate("window.events")
    assert {e["checkout_id"] for e in events} == {checkout["id"]}
    assert {e["type"] for e in events} >= {"checkout.ready", "checkout.status"}


def test_readme_embed_snippet_works_as_written(
    live_app: LiveApp, shop_site: LiveServer, page
) -> None:  # type: ignore[no-untyped-def]
    flow = next(f for f in FLOWS if f.method == "diamond_card")
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    url = f"{checkout['url']}?method={flow.method}"
    page.goto(f"{shop_site.url}/readme-shop.html?" + urlencode({"checkout": url}))
    frame_locator = page.frame_locator("#pay iframe")
    fill_and_submit(frame_locator, flow)
    deposit = frame_locator.locator("#sandbox-deposit").get_attribute("href")
    assert deposit
    requests.post(deposit, data={"action": "pay"}, allow_redirects=False, timeout=10)
    assert live_app.sandbox.state.notifier.wait_idle(10)
    page.wait_for_function("document.title === 'Thanks'", timeout=WAIT_MS)


@pytest.mark.parametrize("how", ["mount", "open"])
def test_redirect_flow_leaves_the_frame_for_the_cashier(
    live_app: LiveApp, shop_site: LiveServer, page, how: str
) -> None:  # type: ignore[no-untyped-def]
    flow = next(f for f in FLOWS if f.method == "kakaopay")
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    frame_locator = open_shop(page, shop_site, f"{checkout['url']}?method={flow.method}", how)
    fill_and_submit(frame_locator, flow)
    # The cashier refuses framing: the whole tab goes there, not the frame.
    page.wait_for_url(f"{live_app.sandbox.url}/cashier/**", timeout=WAIT_MS)
    page.locator("button.pay").wait_for()  # the URL changes before the page has loaded
    assert page.locator("button.pay").count() == 1


def test_overlay_closes(live_app: LiveApp, shop_site: LiveServer, page) -> None:  # type: ignore[no-untyped-def]
    checkout = create_checkout(live_app.url)
    frame_locator = open_shop(page, shop_site, checkout["url"], "open")
    frame_locator.locator("form").wait_for()
    wait_for_event(page, "checkout.ready")
    page.locator("button[aria-label=Close]").click()
    assert page.locator("iframe").count() == 0
    wait_for_event(page, "checkout.closed")
    assert page.evaluate("window.events.at(-1)") == {
        "type": "checkout.closed",
        "checkout_id": checkout["id"],
    }


def test_mounted_frame_takes_the_height_of_its_page(
    live_app: LiveApp, page, shop_site: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    """embed.js sizes the frame from the page's checkout.resize message: no form cut off."""
    checkout = create_checkout(live_app.url)
    open_shop(page, shop_site, checkout["url"])
    frame = page.frame_locator("#slot iframe")
    frame.locator("#pay").wait_for()
    page.wait_for_function(
        "() => document.querySelector('#slot iframe').style.height !== '640px'", timeout=WAIT_MS
    )
    inner = checkout_frame(page).evaluate(
        "() => Math.ceil(document.documentElement.getBoundingClientRect().height)"
    )
    height = page.evaluate("() => parseFloat(document.querySelector('#slot iframe').style.height)")
    assert abs(height - inner) <= 2 and height > 640  # the whole form, its Pay button included
    pay = checkout_frame(page).locator("#pay").bounding_box()
    box = page.locator("#slot iframe").bounding_box()
    assert pay is not None and box is not None and pay["y"] + pay["height"] <= box["y"] + height
