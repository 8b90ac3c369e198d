"""GET/POST /refund-account/<refund id>?t=...: the shopper gives the bank account a refund
goes to, through a signed, expiring link (services/refund_links.py); ko, es, en."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _

from checkout.config import Settings
from checkout.db import db
from checkout.domain.accounts import KOREA_BANKS, MEXICO_BANK_CODES
from checkout.domain.locales import SUPPORTED_LOCALES
from checkout.extensions import catalog_of, settings_of
from checkout.forms import check_form_token, form_token
from checkout.models import Checkout, Refund
from checkout.services.errors import ServiceError
from checkout.services.refund_links import check_account_link_token
from checkout.services.refunds import get_refund, give_destination

bp = Blueprint("refund_account", __name__)
ACCOUNT_FIELDS = ("bank_code", "account_number", "holder_name")
FIELD_ERRORS = {
    "bank_code": "Choose your bank from the list.",
    "account_number": "Check the account number.",
    "holder_name": "Write the account holder's name as the bank has it.",
}


def _message(text: str, status: int) -> Any:
    return render_template("message.html", message=text), status


def _invalid_link() -> Any:
    return _message(_("This link has expired or is not valid. Ask the shop for a new one."), 404)


def _linked_refund(settings: Settings, refund_id: str, token: str | None) -> Refund | None:
    """The refund a valid link names; None for a bad or expired link or an unknown refund."""
    if len(refund_id) > 40 or not check_account_link_token(settings.secret_key, refund_id, token):
        return None
    try:
        return get_refund(db.session, refund_id)
    except ServiceError:
        return None


def _give_account(settings: Settings, refund_id: str, values: dict[str, str]) -> dict[str, str]:
    """Give the refund the account posted; the errors to show (none: it has it now)."""
    if not check_form_token(settings.secret_key, f"refund:{refund_id}", request.form.get("ft")):
        return {"form": _("This link has expired or is not valid. Ask the shop for a new one.")}
    try:
        give_destination(
            db.session,
            settings,
            refund_id,
            values,
            "shopper",
            payouts=catalog_of(current_app).payouts,
        )
    except ServiceError as exc:
        db.session.rollback()
        field = (exc.field or "").removeprefix("destination.")
        return {field or "form": _(FIELD_ERRORS.get(field, FIELD_ERRORS["account_number"]))}
    return {}


def _account_given(refund_id: str) -> Any:
    account = get_refund(db.session, refund_id).destination_masked
    return render_template(
        "message.html",
        message=_("Thank you. The refund will be sent to %(account)s.", account=account),
    )


def _account_form(
    settings: Settings, refund: Refund, values: dict[str, str], errors: dict[str, str]
) -> Any:
    checkout = db.session.get(Checkout, refund.checkout_id)
    assert checkout is not None
    banks = MEXICO_BANK_CODES if refund.currency == "MXN" else KOREA_BANKS
    return render_template(
        "refund_account.html",
        refund=refund,
        store=settings.stores[checkout.store_id].name
        if checkout.store_id in settings.stores
        else "",
        banks=sorted(banks.items(), key=lambda item: item[1]),
        values=values,
        errors=errors,
        form_token=form_token(settings.secret_key, f"refund:{refund.public_id}"),
    ), (400 if errors else 200)


@bp.route("/refund-account/<refund_id>", methods=["GET", "POST"])
def refund_account(refund_id: str) -> Any:
    lang = request.args.get("lang")
    if lang in SUPPORTED_LOCALES:
        g.checkout_locale = lang
    settings = settings_of(current_app)
    refund = _linked_refund(settings, refund_id, request.args.get("t"))
    if refund is None:
        return _invalid_link()
    if refund.destination_token is not None or refund.status not in ("requested", "approved"):
        return _message(_("This refund already has an account."), 409)
    values = {k: "" for k in ACCOUNT_FIELDS}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {k: (request.form.get(k) or "")[:200] for k in ACCOUNT_FIELDS}
        errors = _give_account(settings, refund_id, values)
        if not errors:
            return _account_given(refund_id)
    return _account_form(settings, refund, values, errors)
