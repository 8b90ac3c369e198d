"""Two app processes and two webhook workers on one PostgreSQL and Redis, under concurrent
traffic (payments, part payments, second transfers, repeated cashier clicks, cancels), and
then the ledger's invariants over everything they wrote (tests/test_ledger_invariants.py
checks the same ones over random histories in one process)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from checkout.store.models import Checkout, PaymentAttempt, PaymentReceipt, StateEvent, WebhookEvent
from tests.conftest import _database_url
from tests.support.live import free_port
from tests.support.shopper import CSRF_RE
from tests.test_gunicorn import wait_for

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + base64.b64encode(b"ledger-processes-secret-0123456").decode()
PAYER = {"first_name": "민수", "last_name": "김", "email": "", "mobile": "01012345678"}

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="several processes on one database: PostgreSQL (TEST_DATABASE_URL) only",
)


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except Exception:
        return False


class _Shop(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.received.append(self.headers.get("webhook-id") or "")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_two_processes_and_two_workers_keep_the_invariants(tmp_path: Path) -> None:
    shop = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    ports = [free_port(), free_port()]
    sandbox_port = free_port()
    url = _database_url(tmp_path)
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports[0]}",
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "DATABASE_URL": url,
        "CHECKOUT__STORES__DEMO__WEBHOOK_URL": f"http://127.0.0.1:{shop.server_port}/hook",
        "CHECKOUT__STORES__DEMO__WEBHOOK_SECRET": SECRET,
        "CHECKOUT__RECONCILE_AFTER_SECONDS": "1",
        "CHECKOUT__PROVIDERS__TEEMOPAY_KR__IP_DAILY_ATTEMPTS": "1000",
        "CHECKOUT__RATE_LIMITS__CHECKOUT_FORM": "10000/minute",
        "CHECKOUT__RATE_LIMITS__API": "10000/minute",
    }
    if _redis_up():
        env["CHECKOUT__RATE_LIMIT_STORAGE_URI"] = "redis://127.0.0.1:6379"
        env["CHECKOUT__RATE_LIMIT_KEY_PREFIX"] = f"ledger-test-{os.getpid()}"
    env.pop("CHECKOUT_CONFIG", None)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=120)
    log = (tmp_path / "processes.log").open("w")
    procs = [subprocess.Popen([*flask, "sandbox"], env=env, cwd=ROOT, stdout=log, stderr=log)]
    for port in ports:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "wsgi:app", "--workers", "1",
                 "--worker-class", "gthread", "--threads", "16",
                 "--bind", f"127.0.0.1:{port}", "--timeout", "60"],
                env=env, cwd=ROOT, stdout=log, stderr=log,
            )
        )  # fmt: skip
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [*flask, "worker", "--interval", "0.2"], env=env, cwd=ROOT, stdout=log, stderr=log
            )
        )
    try:
        wait_for(f"http://127.0.0.1:{sandbox_port}/")
        for port in ports:
            wait_for(f"http://127.0.0.1:{port}/healthz")
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: _one_history(bases[n % 2], bases[(n + 1) % 2], n, bases[0]),
                    range(16),
                )
            )
        _wait_for_outbox(url, 60)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
        log.close()
        shop.shutdown()
    _check_invariants(url, set(_Shop.received))


def _one_history(base: str, other: str, n: int, public: str) -> None:
    """One shopper's checkout, its requests spread over both processes."""
    headers = {"Authorization": "Bearer sk_test_demo"}
    made = requests.post(
        f"{base}/api/v1/checkouts",
        # The return URL on the store's own origin ("self": public_base_url).
        json={"order_id": f"P-{n}", "amount": 30000, "currency": "KRW", "return_url": f"{public}/"},
        headers=headers,
        timeout=30,
    ).json()
    http = requests.Session()
    http.headers["Sec-Fetch-Dest"] = "document"
    page = http.get(f"{base}/c/{made['id']}", params={"method": "teemopay_va"}, timeout=30)
    token = CSRF_RE.search(page.text)
    assert token, page.text[:500]
    form = {"csrf_token": token.group(1), "method": "teemopay_va", **PAYER}
    # A double submit, one to each process: one attempt.
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda b: http.post(
                    f"{b}/c/{made['id']}", data=form, allow_redirects=False, timeout=60
                ),
                (base, other),
            )
        )
    assert all(a.status_code in (303, 200) for a in answers), [a.status_code for a in answers]
    details = http.get(f"{base}/c/{made['id']}/pay", timeout=30).text
    marker = 'id="sandbox-deposit" href="'
    start = details.index(marker) + len(marker)
    cashier = details[start : details.index('"', start)]
    if n % 4 == 3:
        requests.post(f"{other}/api/v1/checkouts/{made['id']}/cancel", headers=headers, timeout=30)
    action = ("part", "pay")[n % 2]
    # The same click twice at once: one of them settles the order.
    with ThreadPoolExecutor(2) as pool:
        list(
            pool.map(lambda _: requests.post(cashier, data={"action": action}, timeout=30), (0, 1))
        )
    if action == "part":
        requests.post(cashier, data={"action": "rest"}, timeout=30)  # a second transfer


def _wait_for_outbox(url: str, seconds: float) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                pending = session.scalars(
                    select(WebhookEvent).where(WebhookEvent.status == "pending")
                ).all()
                paid = session.scalars(
                    select(Checkout).where(Checkout.status.in_(["pending", "open"]))
                ).all()
            if not pending and not paid:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()


def _check_invariants(url: str, delivered: set[str]) -> None:
    engine = create_engine(url)
    with Session(engine) as session:
        receipts = session.scalars(select(PaymentReceipt)).all()
        checkouts = session.scalars(select(Checkout)).all()
        assert len(checkouts) == 16
        for checkout in checkouts:
            attempts = session.scalars(
                select(PaymentAttempt).where(PaymentAttempt.checkout_id == checkout.id)
            ).all()
            assert len(attempts) == 1, "a double submit made two attempts"
            own = [r for r in receipts if r.checkout_id == checkout.id]
            assert checkout.amount_paid == sum(r.amount for r in own) == 30000
            assert len({r.transfer_key for r in own}) == len(own)
            assert checkout.status in ("paid", "cancelled")
            events = session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.checkout_id == checkout.id)
                .order_by(WebhookEvent.seq)
            ).all()
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            last = next(
                e for e in reversed(events) if e.type != "checkout.payment_instructions_issued"
            )
            data = last.payload["data"]
            assert (data["status"], data["amount_paid"]) == (checkout.status, checkout.amount_paid)
            assert all(e.status == "delivered" and e.public_id in delivered for e in events)
            timeline = session.scalars(
                select(StateEvent)
                .where(StateEvent.checkout_id == checkout.id, StateEvent.kind == "checkout")
                .order_by(StateEvent.id)
            ).all()
            previous = "open"
            for entry in timeline:
                assert entry.from_status == previous
                previous = entry.to_status
            assert previous == checkout.status
    engine.dispose()
