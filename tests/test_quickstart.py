"""The Quickstart's run command (`python3 dev.py run --port N`): the app, the sandboxes, the
worker and the demo shop come up on N, N+1, N+2 and say so in everything they print; a
webhook reaches the demo shop, verified; the worker is `flask worker`'s (refunds are sent);
the demo store refunds with its refund key under its approval thresholds; its embed page
frames a checkout from an allowed origin."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.devserver import running_devserver

ROOT = Path(__file__).resolve().parent.parent
PAY_LINKS_DOC = ROOT / "docs" / "shops" / "pay-links.md"
REFUND_KEY = "rk_live_demo"  # checkout/sandbox.toml


def pay_in_sandbox(base: str, checkout_url: str) -> None:
    """What a shopper does in the browser: the form (KakaoPay), then the cashier's Pay."""
    page = requests.get(checkout_url, timeout=5).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert csrf, page
    form = {
        "csrf_token": csrf.group(1),
        "method": "kakaopay",
        "first_name": "Jimin",
        "last_name": "Kim",
        "email": "jimin@example.com",
        "mobile": "010-1234-5678",
    }
    submit = requests.post(
        checkout_url,
        data=form,
        headers={"Sec-Fetch-Dest": "document"},
        allow_redirects=False,
        timeout=10,
    )
    assert submit.status_code == 303, submit.text
    cashier = submit.headers["Location"]
    assert requests.post(cashier, data={"action": "pay"}, timeout=10).ok
    checkout_id = checkout_url.rsplit("/", 1)[1]
    api = {"Authorization": f"Bearer {REFUND_KEY}"}
    for _ in range(100):
        status = requests.get(f"{base}/api/v1/checkouts/{checkout_id}", headers=api, timeout=5)
        if status.json()["status"] == "paid":
            return
        time.sleep(0.1)
    raise AssertionError(status.text)


def test_devserver_prints_working_checkout_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_devserver(tmp_path) as server:
        output, port, base = server.output, server.port, server.base
        urls = re.findall(r"checkout \([^)]*\): (\S+)", output)
        assert len(urls) == 2, output
        page = requests.get(urls[0], timeout=5)
        assert page.status_code == 200
        assert "KakaoPay" in page.text and "KRW 15,000" in page.text
        mx = requests.get(urls[1], timeout=5)
        assert "MXN 250.00" in mx.text
        sandbox = requests.get(f"http://127.0.0.1:{port + 1}/cashier/paypro/none", timeout=5)
        assert sandbox.status_code == 404  # the simulators answer on their own port
        printed = re.search(r"Provider sandboxes: +(\S+)", output)
        assert printed and requests.get(printed.group(1), timeout=5).status_code == 200
        # --port reaches every URL printed: only N, N+1 and N+2, never the defaults.
        ports = {int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", output)}
        assert ports == {port, port + 1, port + 2}, output
        # The README's shop API example as a shop runs it: cancel -> a webhook -> the demo
        # shop verifies it and shows it.
        # The printed checkouts are live-mode ones (in sandbox mode, still the simulators).
        api = {"Authorization": "Bearer sk_live_demo"}
        checkout_id = urls[0].rsplit("/", 1)[1]
        cancel = requests.post(
            f"{base}/api/v1/checkouts/{checkout_id}/cancel", headers=api, timeout=5
        )
        assert cancel.status_code == 200, cancel.text
        shop = f"http://127.0.0.1:{port + 2}/"
        assert shop in output
        deadline = time.monotonic() + 30
        while "checkout.cancelled" not in (page := requests.get(shop, timeout=5).text):
            assert time.monotonic() < deadline, page
            time.sleep(0.3)
        assert "verified" in page and "REJECTED" not in page
        # The docs' pay-link usage, with the demo store's link_secret.
        namespace: dict[str, object] = {}
        blocks = re.findall(r"```python\n(.*?)```", PAY_LINKS_DOC.read_text(), flags=re.S)
        exec(next(b for b in blocks if "def pay_link" in b), namespace)  # noqa: S102
        usage = next(b for b in blocks if '"sandbox-demo-link-secret"' in b)
        usage = usage.replace("print(", "link = (")
        monkeypatch.setenv("BASE", base)
        exec(usage, namespace)  # noqa: S102 - our own docs
        link = str(namespace["link"])
        assert link.startswith(f"{base}/pay/demo?"), link
        resp = requests.get(link, allow_redirects=False, timeout=5)
        assert resp.status_code == 303 and "/c/co_" in resp.headers["Location"], resp.text


def test_printed_commands_run_as_printed(tmp_path: Path) -> None:
    """The printed create-checkout and create-operator commands, run in another shell as
    printed, reach the same database and print URLs on the run's port."""
    with running_devserver(tmp_path) as server:
        create = re.search(r"Another checkout: +(.+)", server.output)
        assert create, server.output
        command = create.group(1).replace(".venv/bin/flask", f"{sys.executable} -m flask")
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        url = done.stdout.strip().splitlines()[-1]
        assert url.startswith(f"{server.base}/c/co_"), done.stdout
        assert "KRW 15,000" in requests.get(url, timeout=5).text
        operator = re.search(r"An operator: +(.+)", server.output)
        assert operator, server.output
        command = operator.group(1).replace(".venv/bin/flask", f"{sys.executable} -m flask")
        done = subprocess.run(
            ["bash", "-c", f"{command} --password-stdin"],
            cwd=ROOT,
            env=server.env,
            input="a long enough password\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "operator alice created" in done.stdout, done.stderr


def test_demo_store_refunds_and_embed_page(tmp_path: Path) -> None:
    """The refund key refunds; below the KRW threshold an API refund is approved at once and
    the run's worker (flask worker's) sends it; above, it waits for a second operator. The
    demo shop's embed page frames a checkout its origin is allowed to frame."""
    with running_devserver(tmp_path) as server:
        base = server.base
        key = {"Authorization": f"Bearer {REFUND_KEY}"}
        created = requests.post(
            f"{base}/api/v1/checkouts",
            headers=key,
            json={
                "order_id": "Q-1",
                "amount": 200000,
                "currency": "KRW",
                "return_url": f"{base}/demo/shop-return",
                "methods": ["kakaopay"],
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
        checkout = created.json()
        pay_in_sandbox(base, checkout["url"])
        destination = {"bank_code": "088", "account_number": "110123456789", "holder_name": "Kim"}
        refunds = f"{base}/api/v1/checkouts/{checkout['id']}/refunds"
        above = requests.post(
            refunds,
            headers=key,
            json={"amount": 150000, "reason": "whole order", "destination": destination},
            timeout=10,
        )
        assert above.status_code == 201 and above.json()["status"] == "requested", above.text
        below = requests.post(
            refunds,
            headers=key,
            json={"amount": 5000, "reason": "one mug", "destination": destination},
            timeout=10,
        )
        assert below.status_code == 201 and below.json()["status"] == "approved", below.text
        refund = f"{base}/api/v1/refunds/{below.json()['id']}"
        deadline = time.monotonic() + 30
        while (status := requests.get(refund, headers=key, timeout=5).json()["status"]) != "sent":
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        # The other demo keys read refunds but may not create them.
        plain = requests.post(
            refunds,
            headers={"Authorization": "Bearer sk_live_demo"},
            json={"amount": 1000, "reason": "x", "destination": destination},
            timeout=10,
        )
        assert plain.status_code == 403, plain.text
        # The embed page: a shop page on its own origin that frames a fresh test checkout.
        shop_origin = f"http://127.0.0.1:{server.port + 2}"
        embed = requests.get(f"{shop_origin}/embed", timeout=10)
        assert embed.status_code == 200, embed.text
        assert f'src="{base}/static/embed.js"' in embed.text
        framed = re.search(r'Checkout\.mount\("([^"]+)"', embed.text)
        assert framed and framed.group(1).startswith(f"{base}/c/co_"), embed.text
        checkout_page = requests.get(framed.group(1), timeout=5)
        assert "Test mode" in checkout_page.text
        policy = checkout_page.headers["Content-Security-Policy"]
        assert re.search(rf"frame-ancestors[^;]*{re.escape(shop_origin)}", policy), policy


def test_devserver_help_and_port() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "checkout.devtools.devserver", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "--port" in out.stdout, out.stderr
    from checkout.devtools import devserver

    assert devserver.parse_args(["--port", "6100"]).port == 6100


def test_run_and_flask_worker_share_one_assembly() -> None:
    """`dev.py run` starts cli.run_worker, the loop `flask worker` runs; no second one."""
    import inspect

    from checkout import cli
    from checkout.devtools import devserver

    source = inspect.getsource(devserver)
    assert "run_worker" in source and "reconcile_due" not in source and "deliver(" not in source
    assert "run_worker(app, stop" in inspect.getsource(cli.register)
    assert "send_refunds" in inspect.getsource(cli.run_worker)
