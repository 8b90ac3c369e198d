"""The bare baseline: a Flask app with nothing but a template render and one insert.

Served by gunicorn with the same settings as the checkout (`gunicorn bench.bare_app:app`).
BENCH_PAGE_BYTES: how big the rendered page is (the checkout page's size, measured first);
DATABASE_URL: where `POST /notify` inserts one row per request and `GET /page-read` reads
one by primary key before rendering (a second, informative floor: a page of a stored record).
"""

from __future__ import annotations

import os

from flask import Flask, render_template, request
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
        dbapi_conn.execute("PRAGMA journal_mode=WAL")  # as the checkout's engine (checkout/db.py)
else:
    engine = create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=0)  # as the app
# Reads as the checkout's pages read (checkout/db.py reading()): PostgreSQL in autocommit.
READ_OPTIONS = {} if url.startswith("sqlite") else {"isolation_level": "AUTOCOMMIT"}
metadata = MetaData()
notes = Table(
    "bench_bare_notify",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", Text),
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
