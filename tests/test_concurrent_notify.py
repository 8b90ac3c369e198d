"""The same notify arriving several times at once: one transition, one webhook event.

Providers retry, and a retry can overlap the first delivery; behind a load balancer the
copies land on different threads or worker processes. The attempt row lock (PostgreSQL
`SELECT ... FOR UPDATE`, SQLite `BEGIN IMMEDIATE`) must let exactly one of them apply.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from checkout.domain.money import Money
from checkout.sandbox import paypro as paypro_sandbox
from checkout.sandbox.core import OrderStatus, SandboxOrder
from checkout.store.models import NotifyMessage, PaymentAttempt, WebhookEvent
from tests.conftest import LiveApp, _database_url
from tests.support import creds
from tests.support.live import free_port
from tests.support.shopper import KR_PAYER, Shopper, create_checkout, get_checkout
from tests.test_gunicorn import wait_for

ROOT = Path(__file__).resolve().parent.parent
COPIES = 8
AMOUNT = 15000


def paid_notify(trade_no: str, platform_trade_no: str, secret: str) -> tuple[bytes, dict]:
    """PayPro Korea's signed "paid in full" notify, built by the sandbox's own builder."""
    order = SandboxOrder(
        provider="paypro",
        id=platform_trade_no,
        merchant=creds.PAYPRO_MERCHANT_NO,
        trade_no=trade_no,
        amount=Money(AMOUNT, "KRW"),
        notify_url=None,
        return_url=None,
        status=OrderStatus.PAID,
        paid=Money(AMOUNT, "KRW"),
        extra={
            "completed_at": datetime.now(UTC),
            "country": "KR",
            "channel_code": "EWALLET",
            "way_code": "KAKAOPAY",
        },
    )
    body = paypro_sandbox.notify_body(order, secret)
    return json.dumps(body, ensure_ascii=False).encode(), {"Content-Type": "application/json"}


def fire_at_once(url: str, body: bytes, headers: dict) -> list[requests.Response]:
    """POST the same notify COPIES times, released together by a barrier."""
    barrier = threading.Barrier(COPIES)

    def post(_: int) -> requests.Response:
        barrier.wait(10)
        return requests.post(url, data=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(COPIES) as pool:
        return list(pool.map(post, range(COPIES)))


@dataclass
class Outcome:
    attempt_status: str
    attempt_paid: int | None
    verdicts: list[str]
    paid_events: int


def outcome(session: Session, checkout_id: str) -> Outcome:
    attempt = session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.checkout_id == checkout_id)
    ).one()
    verdicts = session.scalars(
        select(NotifyMessage.verdict).where(NotifyMessage.trade_no == attempt.trade_no)
    ).all()
    events = session.scalars(
        select(WebhookEvent).where(
            WebhookEvent.checkout_id == checkout_id, WebhookEvent.type == "checkout.paid"
        )
    ).all()
    return Outcome(attempt.status, attempt.amount_paid, sorted(verdicts), len(events))


def assert_applied_once(result: Outcome, responses: list[requests.Response]) -> None:
    assert [(r.status_code, r.text) for r in responses] == [(200, "OK")] * COPIES
    assert result.attempt_status == "paid" and result.attempt_paid == AMOUNT
    assert result.verdicts == ["accepted"] + ["duplicate"] * (COPIES - 1)
    assert result.paid_events == 1


def test_parallel_duplicate_notifies_apply_once_threaded(live_app: LiveApp) -> None:
    """The threaded app (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""
    checkout = create_checkout(live_app.url, amount=AMOUNT, currency="KRW")
    resp = Shopper(checkout["url"]).submit("kakaopay", KR_PAYER)
    assert resp.status_code == 303, resp.text
    [order] = live_app.sandbox.state.orders.values()
    body, headers = paid_notify(order.trade_no, order.id, creds.PAYPRO_APP_SECRET)

    responses = fire_at_once(f"{live_app.url}/notify/paypro_kr", body, headers)

    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == AMOUNT  # not doubled
    with live_app.session() as session:
        assert_applied_once(outcome(session, checkout["id"]), responses)


# ---------------------------------------------------------------- gunicorn, 4 workers
GUNICORN_SECRET = "paypro-concurrency-secret-0001"


@dataclass
class GunicornApp:
    url: str
    database_url: str


@pytest.fixture
def gunicorn_workers(tmp_path: Path) -> Iterator[GunicornApp]:
    """gunicorn with 4 sync workers and the sandbox as its own process (production shape)."""
    app_port, sandbox_port = free_port(), free_port()
    database_url = _database_url(tmp_path)
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "DATABASE_URL": database_url,
        # A secret the test knows, so it can sign the notify the sandbox would send.
        "CHECKOUT__PROVIDERS__PAYPRO_KR__APP_SECRET": GUNICORN_SECRET,
    }
    env.pop("CHECKOUT_CONFIG", None)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=60)
    logs = (tmp_path / "sandbox.log").open("w"), (tmp_path / "gunicorn.log").open("w")
    procs = [
        subprocess.Popen([*flask, "sandbox"], env=env, cwd=ROOT, stdout=logs[0], stderr=logs[0]),
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--workers", "4",
             "--worker-class", "sync", "--bind", f"127.0.0.1:{app_port}", "--timeout", "30"],
            env=env, cwd=ROOT, stdout=logs[1], stderr=logs[1],
        ),
    ]  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{sandbox_port}/")
        wait_for(f"http://127.0.0.1:{app_port}/")
        yield GunicornApp(f"http://127.0.0.1:{app_port}", database_url)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        for log in logs:
            log.close()


def test_parallel_duplicate_notifies_apply_once_across_gunicorn_workers(
    gunicorn_workers: GunicornApp,
) -> None:
    """Eight copies over four worker processes: PostgreSQL with TEST_DATABASE_URL."""
    base = gunicorn_workers.url
    auth = {"Authorization": "Bearer sk_test_demo"}
    created = requests.post(
        f"{base}/api/v1/checkouts",
        headers=auth,
        json={
            "order_id": "concurrent-1",
            "amount": AMOUNT,
            "currency": "KRW",
            "return_url": f"{base}/demo/shop-return",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    checkout = created.json()
    resp = Shopper(checkout["url"]).submit("kakaopay", KR_PAYER)
    assert resp.status_code == 303, resp.text
    [attempt] = requests.get(
        f"{base}/api/v1/checkouts/{checkout['id']}", headers=auth, timeout=10
    ).json()["payment_attempts"]
    assert attempt["status"] == "pending"
    body, headers = paid_notify(attempt["trade_no"], "PPCONCURRENT0001", GUNICORN_SECRET)

    responses = fire_at_once(f"{base}/notify/paypro_kr", body, headers)

    data = requests.get(f"{base}/api/v1/checkouts/{checkout['id']}", headers=auth, timeout=10)
    assert data.json()["status"] == "paid" and data.json()["amount_paid"] == AMOUNT
    engine = create_engine(gunicorn_workers.database_url)
    try:
        with Session(engine) as session:
            assert_applied_once(outcome(session, checkout["id"]), responses)
    finally:
        engine.dispose()
