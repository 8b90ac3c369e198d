"""The notify inbox: every provider notify received, by verdict or trade number."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from checkout.services.admin.notifies import notify_inbox
from checkout.store.db import db
from checkout.web.console.common import bp, max_ages, page_arg

VERDICTS = (
    "received",
    "accepted",
    "no_change",
    "duplicate",
    "stale",
    "conflict",
    "amount_mismatch",
    "bad_signature",
    "malformed",
    "unknown_trade",
)


@bp.get("/notifies")
def notifies() -> Any:
    verdict = request.args.get("verdict", "")
    verdict = verdict if verdict in VERDICTS else ""
    trade_no = request.args.get("trade_no", "").strip()[:64]
    page = page_arg()
    inbox = notify_inbox(db.session, verdict, page, trade_no, max_ages())
    return render_template(
        "admin/notifies.html",
        rows=inbox.rows,
        total=inbox.total,
        verdict=verdict,
        trade_no=trade_no,
        verdicts=VERDICTS,
        page=page,
        pages=inbox.pages,
        attempts=inbox.attempts,
        claimed=inbox.claimed,
        freshness=inbox.freshness,
    )
