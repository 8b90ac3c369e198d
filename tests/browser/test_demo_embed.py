"""The Quickstart's embed page (`python3 dev.py run`, demo shop /embed): a shop page on an
origin of its own frames a checkout, which loads in the frame and posts its events to it;
on a phone and a laptop."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import WAIT_MS
from tests.support.devserver import running_devserver


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_demo_shop_embed_page_frames_a_checkout(
    tmp_path: Path, browser, width: int, height: int
) -> None:  # type: ignore[no-untyped-def]
    with running_devserver(tmp_path) as server:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(WAIT_MS)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{server.port + 2}/embed")
            frame = page.frame_locator("#pay iframe")
            frame.locator("#payment-form").wait_for()  # the checkout form, in the frame
            page.locator("#events li", has_text="checkout.ready").first.wait_for()
            src = page.locator("#pay iframe").get_attribute("src") or ""
            assert src.startswith(f"{server.base}/c/co_"), src
            assert not [e for e in errors if "frame-ancestors" in e or "Refused" in e], errors
            # The frame is as wide as the shop's page: no sideways scroll on a phone.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        finally:
            context.close()
