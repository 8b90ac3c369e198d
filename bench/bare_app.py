"""The bare baselines: Flask views with nothing but a template render, a read, an insert,
or one provider call.

Served by gunicorn with the same settings as the checkout (`gunicorn bench.bare_app:app`).
BENCH_PAGE_BYTES: how big the rendered page is (the checkout page's size, measured first);
DATABASE_URL: where `POST /notify` inserts one row per request and `GET /page-read` reads
one by primary key before rendering (the floor of a page that must read its record).

`POST /create/<checkout_id>` is the floor of creating a payment: it takes the checkout form
(the payer's fields), signs the same PayPro Korea create request the checkout's client sends
(KakaoPay, with the checkout's own pure mapping and signing: checkout/providers/paypro/),
posts it to the provider (the sandbox, CHECKOUT_SANDBOX_URL) with one pooled
requests.Session per process and the same timeouts, inserts one row and answers 303 to the
cashier URL from the answer. What it leaves out is everything the checkout adds around
that call: reading the checkout, the form token, validation, the claim, the per-IP rule,
the ledger, the exchanges kept for the operator console, the rate limit.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from flask import Flask, redirect, render_template, request
from jinja2 import DictLoader
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, event, insert, select

PAGE_BYTES = int(os.environ.get("BENCH_PAGE_BYTES", "20000"))
ROW = '<div class="row"><span>{{ name }}</span> <em>{{ i }}</em> lorem ipsum dolor sit</div>\n'
TEMPLATE = (
    "<!doctype html><html><head><title>{{ title }}</title></head><body>\n"
    "{% for i in range(rows) %}" + ROW + "{% endfor %}</body></html>\n"
)
ROW_BYTES = 80

app = Flask(__name__)
# A template the app loads once and keeps compiled, as a Flask app's templates/ are (a
# template string would be compiled again on every request).
app.jinja_loader = DictLoader({"page.html": TEMPLATE})  # type: ignore[assignment]
url = os.environ.get("DATABASE_URL", "sqlite:///bare.db")
if url.startswith("sqlite"):
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _wal(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # As the checkout's engine (checkout/store/db.py).
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
else:
    from checkout.store.db import ping_when_idle

    engine = create_engine(url, pool_size=20, max_overflow=0)  # as the app's pool
    ping_when_idle(engine)  # as the app's: a connection idle over a second is pinged
# Reads as the checkout's pages read (checkout/store/db.py reading()): PostgreSQL in autocommit.
READ_OPTIONS = {} if url.startswith("sqlite") else {"isolation_level": "AUTOCOMMIT"}
metadata = MetaData()
notes = Table(
    "bench_bare_notify",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", Text),
)
creates = Table(  # one row per payment created by /create
    "bench_bare_create",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("checkout_id", Text),
    Column("trade_no", Text),
    Column("redirect_url", Text),
)
shops = Table(  # one row, read by primary key for /page-read
    "bench_bare_page",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text),
)


@app.get("/page")
def page() -> str:
    return render_template(
        "page.html", title="Checkout", name="Demo Shop", rows=max(1, PAGE_BYTES // ROW_BYTES)
    )


@app.get("/page-read")
def page_read() -> str:
    """The page after one read by primary key (what a page of a stored record needs)."""
    with engine.connect().execution_options(**READ_OPTIONS) as conn:
        name = conn.execute(select(shops.c.name).where(shops.c.id == 1)).scalar_one()
    return render_template(
        "page.html", title="Checkout", name=name, rows=max(1, PAGE_BYTES // ROW_BYTES)
    )


@app.post("/notify")
def notify() -> tuple[str, int]:
    with engine.begin() as conn:
        conn.execute(insert(notes).values(body=request.get_data(as_text=True)))
    return "OK", 200


class _PayPro:
    """The checkout's PayPro Korea instance and KakaoPay method as configured (read once, as
    the checkout reads its configuration at start), and a pooled session."""

    def __init__(self) -> None:
        from pathlib import Path

        from checkout.config import build_settings, load_raw
        from checkout.providers.http import POOL_MAXSIZE
        from checkout.providers.paypro import mapping

        instance = Path(os.environ.get("CHECKOUT_INSTANCE_PATH") or "instance")
        settings = build_settings(load_raw(os.environ), instance)
        config = settings.providers["paypro_kr"]
        self.settings = mapping.settings_from_config(config)
        self.method = settings.methods["kakaopay"].via(settings.methods["kakaopay"].candidates()[0])
        self.url = config.base_url.rstrip("/") + mapping.PATHS[self.settings.api]
        self.timeout = (config.connect_timeout, config.read_timeout)
        self.public = settings.public_base_url
        # As checkout/providers/http.py: one session, as many connections as threads, the
        # environment read once.
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_MAXSIZE)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False


_paypro: _PayPro | None = None


def _provider() -> _PayPro:
    global _paypro  # built on first use, in the worker
    if _paypro is None:
        _paypro = _PayPro()
    return _paypro


@app.post("/create/<checkout_id>")
def create(checkout_id: str) -> Any:
    from checkout.domain.money import Money
    from checkout.providers.base import Payer, PaymentRequest
    from checkout.providers.http import compact_json, parse_json
    from checkout.providers.paypro import mapping, signing

    paypro = _provider()
    form = request.form
    trade_no = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(9)
    payment = PaymentRequest(
        trade_no=trade_no,
        amount=Money(int(os.environ.get("BENCH_AMOUNT", "15000")), "KRW"),
        method=paypro.method,
        payer=Payer(
            first_name=form.get("first_name", ""),
            last_name=form.get("last_name", ""),
            email=form.get("email", ""),
            mobile=form.get("mobile", ""),
            birth_date=None,
            # The shopper's address as the checkout takes it behind one proxy (ProxyFix x_for=1).
            ip_address=request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
            or request.remote_addr
            or "",
        ),
        notify_url=f"{paypro.public}/notify/paypro_kr",
        return_url=f"{paypro.public}/c/{checkout_id}/return",
        description=None,
        expires_at=datetime.now(UTC) + timedelta(hours=6),
    )
    body = mapping.create_body(paypro.settings, payment, int(time.time() * 1000))
    body[signing.SIGN_FIELD] = signing.sign(body, paypro.settings.app_secret)
    resp = paypro.session.post(
        paypro.url,
        data=compact_json(body),
        headers={
            "Accept": "application/json",
            "Content-Type": "application/json",
            "merchantNo": paypro.settings.merchant_no,
        },
        timeout=paypro.timeout,
    )
    result = mapping.create_result(paypro.settings, payment, parse_json(resp.content))
    with engine.begin() as conn:
        conn.execute(
            insert(creates).values(
                checkout_id=checkout_id, trade_no=trade_no, redirect_url=result.redirect_url
            )
        )
    return redirect(result.redirect_url or "/", 303)
