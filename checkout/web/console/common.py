"""What every part of the console shares: its blueprint, its clock, the action form and the
CSRF check, and the checkout an action is about."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import Length

from checkout.extensions import catalog_of
from checkout.store.db import db
from checkout.store.models import Checkout, utcnow

bp = Blueprint("admin", __name__, url_prefix="/admin")

SESSION_LIFETIME = timedelta(minutes=30)  # idle: the cookie is refreshed on each request
SESSION_MAX_AGE = timedelta(hours=12)  # absolute, from login


class ActionForm(FlaskForm):
    """Every POST action: only the CSRF token, and what the action is about."""

    target = HiddenField()
    reason = StringField("Reason", validators=[Length(max=150)])


def now() -> datetime:
    """The console's clock: `ADMIN_CLOCK` (a callable) when set, so tests can move time
    instead of sleeping through session lifetimes; otherwise the real UTC time."""
    clock = current_app.config.get("ADMIN_CLOCK")
    return clock() if clock is not None else utcnow()


def operator_name() -> str:
    return g.operator.name


def csrf_token_missing(form: FlaskForm) -> bool:
    """Whether a form that failed validation failed on its CSRF token."""
    return bool(form.errors.get("csrf_token")) or "csrf_token" not in request.form


def csrf_or_400(form: FlaskForm) -> None:
    if not form.validate_on_submit():
        if csrf_token_missing(form):
            abort(400, "CSRF token missing or invalid.")
        abort(400, "Invalid form.")


def load_action(checkout_id: str) -> tuple[Checkout, ActionForm]:
    """An action's checked form and its checkout (404 when there is none)."""
    form = ActionForm()
    csrf_or_400(form)
    item = db.session.get(Checkout, checkout_id)
    if item is None:
        abort(404)
    return item, form


def back(checkout_id: str) -> Any:
    return redirect(url_for("admin.checkout", checkout_id=checkout_id))


def page_arg() -> int:
    return max(request.args.get("page", 1, type=int) or 1, 1)


def max_ages() -> dict[str, int]:
    """Each provider instance's callback window (those that send freshness headers)."""
    return {
        name: provider.callback_max_age
        for name, provider in catalog_of(current_app).providers.items()
        if isinstance(getattr(provider, "callback_max_age", None), int)
    }
