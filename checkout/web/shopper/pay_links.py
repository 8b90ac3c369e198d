"""Signed pay links (/pay/<store>) and the signed way back to the shop."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from checkout.extensions import catalog_of, settings_of
from checkout.services.checkouts import create_checkout, get_checkout, parse_new_checkout
from checkout.services.errors import Conflict, InvalidRequest, NotFound
from checkout.services.shop_links import signed_return_url, verify_pay_link
from checkout.store.db import db
from checkout.urls import UrlRefused

bp = Blueprint("links", __name__)

# Each refusal names its reason (the shop's developer reads these pages too).
_MESSAGES = {
    "link_expired": _l("This payment link has expired. Please ask the shop for a new one."),
    "order_id_conflict": _l("This payment link does not match the order it names."),
    "links_disabled": _l("This shop does not accept payment links (it has no link secret)."),
    "link_incomplete": _l(
        "This payment link is incomplete: it needs order_id, amount, currency, return_url, "
        "expires and sig."
    ),
    "link_bad_signature": _l("This payment link's signature does not match: it was changed."),
    "return_url_not_allowed": _l(
        "This payment link's return address is not on the shop's allowed origins."
    ),
    "invalid_return_url": _l("This payment link's return address is not a valid web address."),
    "invalid_amount": _l("This payment link's amount is not valid."),
    "invalid_currency": _l("This payment link's currency is not supported."),
    "invalid_order_id": _l("This payment link's order id is not valid."),
    "no_method_available": _l("No payment method accepts this payment link's amount."),
}
_INVALID_LINK = _l("This payment link is not valid.")


@bp.get("/pay/<store_id>")
def pay_link(store_id: str) -> Any:
    """Open (or reopen) the checkout a signed link describes; a bad link creates nothing."""
    store = settings_of(current_app).stores.get(store_id)
    if store is None:
        abort(404)
    try:
        link = verify_pay_link(store, request.args, time.time())
        new = parse_new_checkout(
            {
                "order_id": link.order_id,
                "amount": link.amount,
                "currency": link.currency,
                "return_url": link.return_url,
            },
            store,
            catalog_of(current_app),
        )
        ttl = timedelta(minutes=settings_of(current_app).checkout_ttl_minutes)
        checkout, _created = create_checkout(db.session, store, new, ttl)
    except (InvalidRequest, Conflict) as error:
        status = 409 if isinstance(error, Conflict) else 400
        message = _MESSAGES.get(error.code, _INVALID_LINK)
        return render_template("message.html", message=str(message)), status
    return redirect(url_for("pages.checkout_page", checkout_id=checkout.id), 303)


@bp.get("/c/<checkout_id>/back")
def back_to_shop(checkout_id: str) -> Any:
    """The shopper's way back: the shop's return_url with the signed current status."""
    try:
        checkout = get_checkout(db.session, checkout_id)
    except NotFound:
        abort(404)
    # Any status may be told (a failed try leaves the checkout open); the shop confirms
    # it through the API or the webhook, never through this redirect alone.
    store = settings_of(current_app).stores[checkout.store_id]
    try:
        target = signed_return_url(
            checkout.return_url, store, checkout.id, checkout.order_id, checkout.status
        )
    except UrlRefused:  # a row stored before URLs were read as browsers read them
        abort(404)
    return redirect(target, 303)
