"""Production shape: gunicorn with one sync worker, the sandbox as its own process.

One sync worker is the worst case for a server that calls a provider living in its own
process; the sandbox runs beside it, so a payment goes through without a deadlock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import _database_url
from tests.support.shopper import KR_PAYER, Shopper
from tests.test_quickstart import free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def gunicorn_app(tmp_path: Path) -> Iterator[str]:
    app_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "DATABASE_URL": _database_url(tmp_path),
    }
    env.pop("CHECKOUT_CONFIG", None)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=60)
    logs = (tmp_path / "sandbox.log").open("w"), (tmp_path / "gunicorn.log").open("w")
    procs = [
        subprocess.Popen([*flask, "sandbox"], env=env, cwd=ROOT, stdout=logs[0], stderr=logs[0]),
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--workers", "1",
             "--worker-class", "sync", "--bind", f"127.0.0.1:{app_port}", "--timeout", "30"],
            env=env, cwd=ROOT, stdout=logs[1], stderr=logs[1],
        ),
    ]  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{sandbox_port}/")
        wait_for(f"http://127.0.0.1:{app_port}/")
        yield f"http://127.0.0.1:{app_port}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        for log in logs:
            log.close()


def test_pay_through_gunicorn_sync_worker_and_separate_sandbox(gunicorn_app: str) -> None:
    created = requests.post(
        f"{gunicorn_app}/api/v1/checkouts",
        headers={"Authorization": "Bearer sk_test_demo"},
        json={
            "order_id": "gunicorn-1",
            "amount": 15000,
            "currency": "KRW",
            "return_url": f"{gunicorn_app}/demo/shop-return",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    checkout = created.json()
    shopper = Shopper(checkout["url"])
    resp = shopper.submit("kakaopay", KR_PAYER)
    assert resp.status_code == 303, resp.text
    paid = requests.post(resp.headers["Location"], data={"action": "pay"}, timeout=10)
    assert paid.status_code == 200  # followed the cashier's redirect to our return page
    assert "Payment received" in paid.text or "Waiting" in paid.text
    status = None
    for _ in range(100):  # the notify comes from the sandbox process
        status = requests.get(
            f"{gunicorn_app}/api/v1/checkouts/{checkout['id']}",
            headers={"Authorization": "Bearer sk_test_demo"},
            timeout=10,
        ).json()["status"]
        if status == "paid":
            break
        time.sleep(0.1)
    assert status == "paid"
