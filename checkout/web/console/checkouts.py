"""The checkout search (the console's home page) and a checkout's page.

The payer search never puts what was typed in a URL: the form POSTs it, and the results'
URLs carry it encrypted (`pt`), so a full e-mail or mobile never reaches browser history,
proxy and access logs or a Referer, nor a page.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import abort, current_app, redirect, render_template, request, url_for

from checkout.domain.payer import mobile_query_digits
from checkout.domain.states import CheckoutStatus
from checkout.extensions import settings_of
from checkout.services.admin import checkouts as search_service
from checkout.services.checkouts import mask_email, mask_mobile
from checkout.store.db import db
from checkout.web.console.common import ActionForm, bp, csrf_or_400, max_ages, page_arg

PAYER_TOKEN_TTL = 3600  # seconds a search's pagination links keep working
SEARCH_FIELDS = (
    "order_id",
    "trade_no",
    "store",
    "provider",
    "status",
    "date_from",
    "date_to",
    "mode",
)


def _fernet() -> Fernet:
    digest = hashlib.sha256(("admin-search:" + current_app.config["SECRET_KEY"]).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def payer_token(payer: str) -> str:
    return _fernet().encrypt(payer.encode()).decode()


def _payer_from_request() -> tuple[str, bool]:
    """(the payer searched for, whether a token was given but is unusable)."""
    token = request.args.get("pt", "")
    if not token:
        return "", False
    try:
        return _fernet().decrypt(token.encode(), ttl=PAYER_TOKEN_TTL).decode(), False
    except InvalidToken:
        return "", True


def _masked_query(value: str) -> str:
    if "@" in value or any(c.isalpha() for c in value):
        return mask_email(value) if "@" in value else "***" + value[-4:]
    return mask_mobile(mobile_query_digits(value)) or ""


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filter(args: Mapping[str, str], payer: str) -> search_service.CheckoutFilter:
    text = {name: args.get(name, "").strip() for name in SEARCH_FIELDS}
    return search_service.CheckoutFilter(
        order_id=text["order_id"],
        trade_no=text["trade_no"],
        store=text["store"],
        provider=text["provider"],
        status=text["status"],
        date_from=_parse_date(args.get("date_from")),
        date_to=_parse_date(args.get("date_to")),
        payer=payer,
        needs_review=args.get("review") == "1",
        mode=text["mode"],
    )


def _kept(args: Mapping[str, str], payer: str) -> dict[str, str]:
    """The search's parameters for its pagination links, the payer encrypted afresh."""
    keep = {k: v for k, v in args.items() if k in (*SEARCH_FIELDS, "review") and v and len(v) < 200}
    if payer:
        keep["pt"] = payer_token(payer)
    return keep


def _choices() -> dict[str, list[str]]:
    """The search form's lists."""
    settings = settings_of(current_app)
    return {
        "statuses": [str(s) for s in CheckoutStatus],
        "stores": sorted(settings.stores),
        "providers": sorted(settings.providers),
    }


@bp.post("/")
def search() -> Any:
    """The search form: checked (CSRF), then redirected to the GET below with the payer
    encrypted, so what was typed never reaches a URL."""
    csrf_or_400(ActionForm())
    form = request.form
    params = {k: form.get(k, "").strip()[:200] for k in SEARCH_FIELDS}
    params = {k: v for k, v in params.items() if v}
    if form.get("review") == "1":
        params["review"] = "1"
    payer = form.get("payer", "").strip()[:320]
    if payer:
        params["pt"] = payer_token(payer)
    return redirect(url_for("admin.checkouts", **params), code=303)


@bp.get("/")
def checkouts() -> Any:
    args, page = request.args, page_arg()
    payer, payer_expired = _payer_from_request()
    if payer_expired:
        # Never widen a payer search silently: an expired link shows nothing, and says so.
        rows, total, counts = [], 0, {}
    else:
        rows, total, counts = search_service.search_checkouts(
            db.session, _filter(args, payer), page
        )
    return render_template(
        "admin/checkouts.html",
        rows=rows,
        total=total,
        counts=counts,
        page=page,
        pages=search_service.page_count(total),
        keep=_kept(args, payer),
        args=args,
        payer_masked=_masked_query(payer) if payer else "",
        payer_expired=payer_expired,
        **_choices(),
    )


@bp.get("/checkouts/<checkout_id>")
def checkout(checkout_id: str) -> Any:
    return render_checkout(checkout_id)


def render_checkout(
    checkout_id: str, refund_form: Mapping[str, str] | None = None, status: int = 200
) -> Any:
    """A checkout's page; `refund_form` (what was typed, and the error) shows the refund
    form again as it was sent, with what was wrong next to it."""
    page = search_service.checkout_page(db.session, checkout_id, max_ages())
    if page is None:
        abort(404)
    return render_template(
        "admin/checkout.html",
        refund_form=refund_form or {},
        c=page.checkout,
        events=page.events,
        actions=page.actions,
        notifies=page.notifies,
        freshness=page.freshness,
        webhook_events=page.webhook_events,
        deliveries=page.deliveries,
        exchanges=page.exchanges,
        form=ActionForm(),
        live=page.checkout.live_attempt(),
        can_cancel=page.can_cancel,
    ), status
