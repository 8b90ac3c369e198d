"""GET/POST /refund-account/<refund id>?t=...: the shopper gives the bank account a refund
goes to, through a signed, expiring link (services/refund_account_links.py); ko, es, en.

Every field is checked at once (domain/accounts.py) so the page lists every error together;
the service then checks the account again as the provider needs it. In Mexico the bank is
the CLABE's (its first three digits), so only the CLABE and the holder are asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from checkout.config import Settings
from checkout.domain.accounts import (
    MEXICO_BANK_CODES,
    bank_of_clabe,
    validate_bank_code,
    validate_clabe,
    validate_holder_name,
    validate_korean_account_number,
)
from checkout.domain.banks import bank_name, korean_banks
from checkout.domain.errors import AccountError
from checkout.domain.locales import SUPPORTED_LOCALES
from checkout.domain.refunds import RefundStatus, awaits_destination
from checkout.extensions import catalog_of, settings_of
from checkout.forms import check_form_token, form_token
from checkout.i18n import current_language
from checkout.providers.registry import holder_name_max_of
from checkout.services.errors import ServiceError
from checkout.services.refund_account_links import check_account_link_token
from checkout.services.refunds import get_refund, give_destination
from checkout.store.db import db
from checkout.store.models import Checkout, Refund

bp = Blueprint("refund_account", __name__)
ACCOUNT_FIELDS = ("bank_code", "account_number", "holder_name")
FIELD_ERRORS = {
    "bank_code": _l("Choose your bank from the list."),
    "account_number": _l("Check the account number."),
    "holder_name": _l("Write the account holder's name as the bank has it."),
}
# What is wrong, by the domain's (field, code), in the shopper's words.
CODE_ERRORS = {
    ("account_number", "required"): _l("Enter the account number."),
    ("account_number", "not_digits"): _l("Use digits only (spaces and hyphens are fine)."),
    ("account_number", "bad_length"): _l("Check the account number: it has 10 to 16 digits."),
    ("clabe", "required"): _l("Enter your CLABE."),
    ("clabe", "bad_length"): _l("A CLABE has exactly 18 digits."),
    ("clabe", "unknown_bank"): _l(
        "The first three digits of this CLABE name no bank we can send a refund to."
    ),
    ("clabe", "bad_check_digit"): _l("This CLABE is not valid: check each digit."),
    ("holder_name", "required"): _l("Enter the account holder's name."),
    ("holder_name", "invalid_characters"): _l("Use letters and spaces only."),
    ("holder_name", "too_short"): _l("Write the full name, as the bank has it."),
    ("holder_name", "too_long"): _l("This name is too long for the bank's transfer."),
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


def _field_errors(refund: Refund, provider_type: str, values: dict[str, str]) -> dict[str, str]:
    """Every field's error at once (none: the account may be given)."""
    mexican = refund.currency == "MXN"
    codes = {code for code, _name in korean_banks("en")}
    checks: dict[str, Callable[[], object]] = {
        "account_number": (lambda: validate_clabe(values["account_number"]))
        if mexican
        else (lambda: validate_korean_account_number(values["account_number"])),
        "holder_name": lambda: validate_holder_name(
            values["holder_name"], max_length=holder_name_max_of(provider_type)
        ),
    }
    if not mexican:
        checks = {"bank_code": lambda: validate_bank_code(values["bank_code"], codes), **checks}
    errors = {}
    for name, check in checks.items():
        try:
            check()
        except AccountError as exc:
            key = ("clabe" if mexican and name == "account_number" else name, exc.code)
            errors[name] = str(CODE_ERRORS.get(key, FIELD_ERRORS[name]))
    if (
        mexican
        and "account_number" not in errors
        and bank_of_clabe(values["account_number"]) is None
    ):
        errors["account_number"] = str(CODE_ERRORS[("clabe", "unknown_bank")])
    return errors


def _give_account(
    settings: Settings, refund: Refund, values: dict[str, str]
) -> tuple[dict[str, str], str]:
    """Give the refund the account posted: the errors to show (none: it has it now) and the
    bank code given."""
    if not check_form_token(
        settings.secret_key, f"refund:{refund.public_id}", request.form.get("ft")
    ):
        return {"form": _("This link has expired or is not valid. Ask the shop for a new one.")}, ""
    config = settings.providers.get(refund.provider)
    errors = _field_errors(refund, config.type if config else "", values)
    if errors:
        return errors, ""
    bank = values["bank_code"]
    if refund.currency == "MXN":
        bank = bank_of_clabe(values["account_number"]) or ""
    try:
        give_destination(
            db.session,
            settings,
            refund.public_id,
            {**values, "bank_code": bank},
            "shopper",
            payouts=catalog_of(current_app).payouts,
        )
    except ServiceError as exc:
        db.session.rollback()
        field = (exc.field or "").removeprefix("destination.")
        if refund.currency == "MXN" and field in ("bank_code", "account_number"):
            # No bank field in Mexico: the provider refused the bank the CLABE names.
            return {"account_number": str(CODE_ERRORS[("clabe", "unknown_bank")])}, ""
        field = field if field in FIELD_ERRORS else "account_number"
        return {field: str(FIELD_ERRORS[field])}, ""
    return {}, bank


def _bank_name(currency: str, code: str, language: str) -> str:
    if currency == "MXN":
        return bank_name(f"MX{code[-3:]}", MEXICO_BANK_CODES.get(code), language) or code
    return bank_name(code, None, language) or code


def _account_given(settings: Settings, refund_id: str, bank: str) -> Any:
    refund = get_refund(db.session, refund_id)
    last_four = (refund.destination_masked or "")[-4:]
    return render_template(
        "refund_account_done.html",
        refund=refund,
        store=_store(settings, refund),
        bank=_bank_name(refund.currency, bank, current_language()),
        last_four=last_four,
    )


def _store(settings: Settings, refund: Refund) -> str:
    checkout = db.session.get(Checkout, refund.checkout_id)
    assert checkout is not None
    store = settings.stores.get(checkout.store_id)
    return store.name if store is not None else ""


def _account_form(
    settings: Settings, refund: Refund, values: dict[str, str], errors: dict[str, str]
) -> Any:
    mexican = refund.currency == "MXN"
    labels = {
        "bank_code": _("Bank"),
        "account_number": "CLABE" if mexican else _("Account number"),
        "holder_name": _("Account holder"),
    }
    return render_template(
        "refund_account.html",
        refund=refund,
        mexican=mexican,
        store=_store(settings, refund),
        banks=() if mexican else korean_banks(current_language()),
        values=values,
        errors=errors,
        summary=[(name, labels[name], errors[name]) for name in ACCOUNT_FIELDS if name in errors],
        labels=labels,
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
    if not awaits_destination(RefundStatus(refund.status), refund.destination_token is not None):
        return _message(_("This refund already has an account."), 409)
    values = {k: "" for k in ACCOUNT_FIELDS}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {k: (request.form.get(k) or "")[:200] for k in ACCOUNT_FIELDS}
        errors, bank = _give_account(settings, refund, values)
        if not errors:
            return _account_given(settings, refund_id, bank)
    return _account_form(settings, refund, values, errors)
