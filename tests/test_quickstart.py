"""The README's run command: the app, the sandboxes, the webhook worker and the demo shop
come up, print checkout URLs, and a webhook reaches the demo shop, verified."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

README = Path(__file__).resolve().parent.parent / "README.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_devserver_prints_working_checkout_urls(tmp_path: Path) -> None:
    app_port, sandbox_port, shop_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "CHECKOUT__STORES__DEMO__WEBHOOK_URL": f"http://127.0.0.1:{shop_port}/webhooks",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CHECKOUT_CONFIG", None)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "checkout.devserver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        # A reader thread, not select(): the text wrapper buffers lines select cannot see.
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any("Mexican checkout" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        output = "".join(lines)
        urls = re.findall(r"checkout \([^)]*\): (\S+)", output)
        assert len(urls) == 2, output
        for _ in range(50):  # the server starts listening right after printing
            try:
                page = requests.get(urls[0], timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert page.status_code == 200
        assert "KakaoPay" in page.text and "KRW 15,000" in page.text
        mx = requests.get(urls[1], timeout=5)
        assert "MXN 250.00" in mx.text
        sandbox = requests.get(f"http://127.0.0.1:{sandbox_port}/cashier/paypro/none", timeout=5)
        assert sandbox.status_code == 404  # the simulators answer on their own port
        printed = re.search(r"Provider sandboxes: +(\S+)", output)
        assert printed and requests.get(printed.group(1), timeout=5).status_code == 200
        # The README's shop API example as a shop runs it: cancel -> a webhook -> the demo
        # shop verifies it and shows it.
        # The printed checkouts are live-mode ones (in sandbox mode, still the simulators).
        api = {"Authorization": "Bearer sk_live_demo"}
        base = f"http://127.0.0.1:{app_port}"
        checkout_id = urls[0].rsplit("/", 1)[1]
        cancel = requests.post(
            f"{base}/api/v1/checkouts/{checkout_id}/cancel", headers=api, timeout=5
        )
        assert cancel.status_code == 200, cancel.text
        shop = f"http://127.0.0.1:{shop_port}/"
        assert shop in output
        deadline = time.monotonic() + 30
        while "checkout.cancelled" not in (page := requests.get(shop, timeout=5).text):
            assert time.monotonic() < deadline, page
            time.sleep(0.3)
        assert "verified" in page and "REJECTED" not in page
        # The README's pay-link usage, with the demo store's link_secret.
        namespace: dict[str, object] = {}
        blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
        exec(next(b for b in blocks if "def pay_link" in b), namespace)  # noqa: S102
        usage = next(b for b in blocks if '"sandbox-demo-link-secret"' in b)
        usage = usage.replace("http://127.0.0.1:5000", base).replace("print(", "link = (")
        exec(usage, namespace)  # noqa: S102 - our own README
        resp = requests.get(str(namespace["link"]), allow_redirects=False, timeout=5)
        assert resp.status_code == 303 and "/c/co_" in resp.headers["Location"], resp.text
    finally:
        proc.terminate()
        proc.wait(10)


def test_devserver_help_and_port() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "checkout.devserver", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "--port" in out.stdout, out.stderr
    from checkout import devserver

    assert devserver.parse_args(["--port", "6100"]).port == 6100
