"""Browser fixtures for tests/browser: Debian's Chromium driven by Playwright (sync API).

We never run `playwright install`: the tests use the system Chromium at /usr/bin/chromium
(`.ci/run` installs it with apt-get). Without it, or without playwright, every browser test
is skipped with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 20_000  # the bound of every wait in a browser test


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chromium_path():
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(
        reason=f"browser tests need Chromium at {CHROMIUM} (.ci/run installs it with apt-get)"
    )
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
    executable = chromium_path()
    if executable is None:
        pytest.skip(f"browser tests need Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--test-third-party-cookie-phaseout",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context (no cookies, no cache), every wait bounded by WAIT_MS."""
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
