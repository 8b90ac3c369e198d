"""A PostgreSQL of our own restarted under load (issue 25 item 1): no 500, nothing lost.

The server is this test's own (initdb in a temporary folder, its own port), so the suite's
database is never touched. Shops create checkouts with an Idempotency-Key and retry a 503
as the API asks; shoppers open pages; a provider sends notifies; the webhook worker runs.
Each client's loop is bounded in count.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from checkout import create_app
from checkout.extensions import settings_of
from checkout.services.webhooks import run_worker
from checkout.store.db import db as app_db
from checkout.store.models import Base, Checkout
from checkout.web.unavailable import RETRY_MARK
from tests.conftest import RunningSandbox
from tests.support import app_config
from tests.support.live import LateBoundApp, serve
from tests.support.shopper import api_headers


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class OwnPostgres:
    bindir: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *self.as_user,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "-t",
                "30",
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    root = Path(tempfile.mkdtemp(prefix="checkout-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = OwnPostgres(bindir, root, _free_port(), as_user)
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server.ctl("start")
    try:
        yield server
    finally:
        subprocess.run(
            [
                *as_user,
                str(bindir / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    unanswered_503: list[str] = field(default_factory=list)  # a 503 without Retry-After
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, resp: requests.Response) -> None:
        with self.lock:
            self.statuses[f"{kind} {resp.status_code}"] += 1
            if resp.status_code == 503 and not resp.headers.get("Retry-After"):
                self.unanswered_503.append(kind)

    def fives(self) -> dict[str, int]:
        return {k: v for k, v in self.statuses.items() if k.split()[-1] == "500"}


ORDERS_PER_SHOP = 25
SHOPS = 3


def test_a_database_restart_under_load_costs_no_500_and_loses_nothing(
    own_postgres: OwnPostgres,
    sandbox: RunningSandbox,
    teemopay_keys,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    late = LateBoundApp()
    server = serve(late)
    config = app_config.test_config(
        sandbox_url=sandbox.url,
        public_base_url=server.url,
        database_url=own_postgres.url,
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    config["database_pool_size"] = 4
    app = create_app(config)
    Base.metadata.create_all(app_db.bound(app).engine)
    late.app = app
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(app_db.bound(app).session_factory, settings_of(app).stores),
        kwargs={"interval": 0.05, "stop": stop},
        daemon=True,
    )
    tally = Tally()
    created: dict[str, str] = {}  # order id -> checkout id
    created_lock = threading.Lock()
    caplog.set_level(logging.WARNING)

    def shop(n: int) -> None:
        http = requests.Session()
        for i in range(ORDERS_PER_SHOP):
            order = f"order-{n}-{i}"
            body = {
                "order_id": order,
                "amount": 15000,
                "currency": "KRW",
                "return_url": f"{app_config.SHOP_ORIGIN}/done",
            }
            headers = {**api_headers(app_config.TEST_API_KEY), "Idempotency-Key": f"key-{order}"}
            for _ in range(40):  # a shop retries a 503 as told (bounded)
                resp = http.post(
                    f"{server.url}/api/v1/checkouts", json=body, headers=headers, timeout=30
                )
                tally.count("create", resp)
                if resp.status_code != 503:
                    break
                time.sleep(min(float(resp.headers.get("Retry-After", "1")), 0.3))
            if resp.status_code in (200, 201):
                with created_lock:
                    created[order] = resp.json()["id"]
                page = http.get(f"{server.url}/c/{resp.json()['id']}", timeout=30)
                tally.count("page", page)
            time.sleep(0.02)

    def provider() -> None:
        http = requests.Session()
        for i in range(60):  # unsigned: stored in the inbox as bad_signature (a write)
            resp = http.post(
                f"{server.url}/notify/paypro_kr",
                data=f'{{"orderNo": "x{i}"}}',
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            tally.count("notify", resp)
            time.sleep(0.03)

    clients = [threading.Thread(target=shop, args=(n,)) for n in range(SHOPS)]
    clients.append(threading.Thread(target=provider))
    try:
        worker.start()
        for client in clients:
            client.start()
        time.sleep(0.5)
        own_postgres.ctl("-m", "fast", "restart")  # every connection ended under the load
        time.sleep(0.7)
        own_postgres.ctl("-m", "fast", "restart")
        for client in clients:
            client.join(timeout=240)
        assert not any(c.is_alive() for c in clients)
        time.sleep(0.3)  # a worker round after the restarts
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=15)
        server.shutdown()
        app_db.bound(app).engine.dispose()

    assert tally.fives() == {}, tally.statuses
    assert tally.unanswered_503 == []
    # Nothing lost, nothing twice: every order the shops made exists once, as answered.
    assert len(created) == SHOPS * ORDERS_PER_SHOP, tally.statuses
    with app_db.bound(app).session_factory() as session:
        rows = dict(session.execute(select(Checkout.order_id, Checkout.id)).all())
        assert session.scalar(select(func.count()).select_from(Checkout)) == len(created)
    assert rows == created
    # The worker noticed the restarts in one line a round, never a traceback.
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("checkout")]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]


def test_while_the_database_is_down_every_surface_answers_503_in_its_own_terms(
    own_postgres: OwnPostgres,
    sandbox: RunningSandbox,
    teemopay_keys,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    config = app_config.test_config(
        sandbox_url=sandbox.url,
        public_base_url="http://127.0.0.1:1",
        database_url=own_postgres.url,
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    app = create_app(config)
    Base.metadata.create_all(app_db.bound(app).engine)
    client = app.test_client()
    headers = api_headers(app_config.TEST_API_KEY)
    body = {
        "order_id": "order-down",
        "amount": 15000,
        "currency": "KRW",
        "return_url": f"{app_config.SHOP_ORIGIN}/done",
    }
    made = client.post("/api/v1/checkouts", json=body, headers=headers)
    assert made.status_code == 201
    page_url = f"/c/{made.get_json()['id']}"
    try:
        own_postgres.ctl("-m", "fast", "stop")

        api = client.post("/api/v1/checkouts", json={**body, "order_id": "o2"}, headers=headers)
        assert api.status_code == 503 and api.headers["Retry-After"].isdigit()
        assert api.get_json()["error"]["code"] == "service_unavailable"

        page = client.get(page_url, headers={"Accept-Language": "ko"})
        assert page.status_code == 503 and page.headers["Retry-After"].isdigit()
        assert "결제된 금액은 없습니다" in page.get_data(as_text=True)
        page_es = client.get(page_url, headers={"Accept-Language": "es"})
        assert page_es.status_code == 503
        assert "No se realizó ningún cargo" in page_es.get_data(as_text=True)

        notify = client.post("/notify/paypro_kr", data=b"{}", content_type="application/json")
        assert notify.status_code == 503 and notify.mimetype == "text/plain"
        assert notify.headers["Retry-After"].isdigit()
        # The internal retry mark never leaves the app.
        assert all(RETRY_MARK not in r.headers for r in (api, page, page_es, notify))
    finally:
        own_postgres.ctl("start")
    # Back: the pool drops its dead connections and the same requests work.
    assert client.get(page_url).status_code == 200
    again = client.post("/api/v1/checkouts", json={**body, "order_id": "o2"}, headers=headers)
    assert again.status_code == 201
    app_db.bound(app).engine.dispose()
