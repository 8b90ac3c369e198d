"""Logging in and out, and the operator check on every console request: sessions live on
the server (services/admin/operators.py), the cookie only names one."""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from checkout.services.admin import operators
from checkout.store.db import db
from checkout.store.models import Operator
from checkout.web.console.common import (
    SESSION_LIFETIME,
    SESSION_MAX_AGE,
    ActionForm,
    bp,
    csrf_or_400,
    csrf_token_missing,
    now,
)

# The same words for a wrong password, an unknown name and a locked one.
REFUSED = (
    "Wrong name or password. After several wrong passwords the name is "
    "locked for a while, whatever address they came from."
)


class LoginForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


@bp.before_request
def require_operator() -> Any:
    g.operator = None
    token = session.get("admin_session")
    if isinstance(token, str) and token:
        # Checked on the server each request: a session revoked there (logout, a password
        # reset, a deactivation, 30 idle minutes, 12 hours) is over whatever the cookie says.
        g.operator = operators.session_operator(
            db.session, token, now(), SESSION_LIFETIME, SESSION_MAX_AGE
        )
        if g.operator is None:
            session.clear()
    elif session.get("admin_operator_id") is not None:  # a cookie from before server sessions
        session.clear()
    if g.operator is None and request.endpoint not in ("admin.login",):
        return redirect(
            url_for("admin.login", next=request.path if request.method == "GET" else None)
        )
    return None


@bp.after_request
def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            if csrf_token_missing(form):
                abort(400, "CSRF token missing or invalid.")
            error = "Enter your name and password."
        else:
            name = form.name.data or ""
            operator = operators.authenticate(db.session, name, form.password.data or "", now())
            if operator is not None:
                return _logged_in(operator)
            error = REFUSED
            # Never the password; the name as typed (cut short), and where from.
            current_app.logger.warning(
                "admin login refused name=%r ip=%s", name[:64], request.remote_addr
            )
    status = 401 if error else 200
    return render_template("admin/login.html", form=form, error=error), status


def _logged_in(operator: Operator) -> Any:
    """A fresh session for the operator, then on to where they were going (in the console)."""
    session.clear()  # no fixation: a fresh session (and CSRF token) on login
    session.permanent = True
    session["admin_session"] = operators.open_session(
        db.session, operator, now(), request.remote_addr
    )
    current_app.logger.info("admin login operator=%s", operator.name)
    target = request.args.get("next") or ""
    if not target.startswith("/admin") or target.startswith("//"):
        target = url_for("admin.checkouts")
    return redirect(target)


@bp.post("/logout")
def logout() -> Any:
    csrf_or_400(ActionForm())
    token = session.get("admin_session")
    if isinstance(token, str) and token:
        operators.revoke_session(db.session, token, now(), "logout")  # a copy dies too
    session.clear()
    return redirect(url_for("admin.login"))
