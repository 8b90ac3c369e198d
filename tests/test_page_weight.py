"""The checkout page stays light and self-contained: under 100 KB with its CSS and JS, no CDN."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, Shopper, create_checkout

MAX_BYTES = 100_000


class _Resources(HTMLParser):
    """Every URL the page would load (stylesheets, scripts, images, icons, fonts, frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "link" and values.get("href"):
            rel = values.get("rel", "").lower().split()
            (self.styles if "stylesheet" in rel else self.other).append(values["href"])
        elif tag == "script" and values.get("src"):
            self.scripts.append(values["src"])
        elif tag in ("img", "iframe", "source", "audio", "video", "embed") and values.get("src"):
            self.other.append(values["src"])


@pytest.mark.parametrize("method", ["kakaopay", "teemopay_va"])
def test_checkout_page_is_under_100_kb_and_self_contained(live_app: LiveApp, method: str) -> None:
    checkout = create_checkout(live_app.url, locale="ko")
    page = Shopper(checkout["url"]).open(method)
    assert page.status_code == 200
    _assert_light(live_app, page)
    # Not even a link elsewhere: every absolute link, source or form action is ours (this
    # checkout has no cancel_url; the shop's origin may appear only as a postMessage target).
    origin = urlsplit(live_app.url).netloc
    for url in re.findall(r'(?:href|src|action)="(https?://[^"]+)"', page.text):
        assert urlsplit(url).netloc == origin, url


def test_payment_details_page_is_light_too(live_app: LiveApp) -> None:
    flow = next(f for f in FLOWS if f.name == "teemopay_kr")
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    page = shopper.http.get(live_app.url + resp.headers["Location"])
    assert page.status_code == 200 and "<svg" in page.text
    _assert_light(live_app, page)


def _assert_light(live_app: LiveApp, page: requests.Response) -> None:
    parser = _Resources()
    parser.feed(page.text)
    assert parser.styles and parser.scripts, "the page loads our CSS and JS"
    origin = urlsplit(live_app.url).netloc
    total = len(page.content)
    for ref in parser.styles + parser.scripts + parser.other:
        if ref.startswith("data:"):
            continue  # inline by definition (the empty icon that spares a /favicon.ico 404)
        url = urljoin(page.url, ref)
        assert urlsplit(url).scheme in ("http", "https"), url
        assert urlsplit(url).netloc == origin, f"external resource: {url}"
        resource = requests.get(url, timeout=10)
        assert resource.status_code == 200, url
        total += len(resource.content)
        if url.endswith(".css"):
            # No web fonts or remote images from the stylesheet either.
            css = resource.text.lower()
            assert "@import" not in css and "@font-face" not in css, url
            assert "url(http" not in css and "url(//" not in css, url
    assert "fonts.googleapis" not in page.text and "fonts.gstatic" not in page.text
    assert total < MAX_BYTES, f"{total} bytes"
