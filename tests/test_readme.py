"""The README's snippets work as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from tests.conftest import LiveApp
from tests.support.app_config import LINK_SECRET, SHOP_ORIGIN

README = Path(__file__).resolve().parent.parent / "README.md"


def snippet(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in blocks if containing in b]
    return block


def test_pay_link_snippet_builds_a_working_link(live_app: LiveApp) -> None:
    namespace: dict[str, Any] = {}
    exec(snippet("def pay_link"), namespace)  # noqa: S102 - our own README
    url = namespace["pay_link"](
        live_app.url, "shop", LINK_SECRET, "README-1", 15000, "KRW", f"{SHOP_ORIGIN}/done"
    )
    resp = requests.get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and "/c/co_" in resp.headers["Location"]


def test_curl_examples_run_as_written(live_app: LiveApp) -> None:
    import json
    import os
    import subprocess

    from tests.support.app_config import TEST_API_KEY

    script = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in script if "/api/v1/checkouts" in b and "ID=$(curl" in b]
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env={**os.environ, "CHECKOUT": live_app.url, "API_KEY": TEST_API_KEY},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    read, found, cancelled = outputs
    assert read["order_id"] == "A-1001" and read["status"] == "open"
    assert found["data"][0]["id"] == read["id"]
    assert cancelled["status"] == "cancelled"


def test_webhook_snippet_verifies_and_orders_events() -> None:
    import base64
    import json
    from datetime import UTC, datetime

    from checkout.services.webhooks import signed_headers

    namespace: dict[str, Any] = {}
    exec(snippet("def handle_checkout_webhook"), namespace)  # noqa: S102 - our own README
    handle = namespace["handle_checkout_webhook"]
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    last_seq: dict[str, int] = {}

    def send(seq: int, status: str, key: str = secret) -> int:
        data = {"id": "co_1", "order_id": "A-1", "status": status}
        body = json.dumps(
            {"id": f"evt_{seq}", "type": f"checkout.{status}", "seq": seq, "data": data}
        )
        headers = signed_headers(key, f"evt_{seq}", body, datetime.now(UTC))
        return handle(body.encode(), headers, secret, last_seq)

    assert send(2, "paid") == 200 and last_seq == {"co_1": 2}
    assert send(1, "pending") == 200 and last_seq == {"co_1": 2}  # older: ignored
    forged = "whsec_" + base64.b64encode(b"x" * 24).decode()
    assert send(3, "cancelled", key=forged) == 400 and last_seq == {"co_1": 2}
