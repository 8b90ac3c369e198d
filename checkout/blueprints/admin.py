"""The operator console (/admin) and the health endpoints (/healthz, /readyz, /metrics).

Every admin page needs a logged-in operator; every form and action is a POST checked with
Flask-WTF's session CSRF token (the app leaves CSRF checking to each form). Personal data
(payer e-mail, mobile, name) is only ever shown masked.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from checkout.db import db
from checkout.domain.payer import mobile_query_digits
from checkout.domain.states import CheckoutStatus
from checkout.logging_setup import mask_text
from checkout.models import (
    Checkout,
    NotifyMessage,
    OperatorAction,
    PaymentAttempt,
    ProviderExchange,
    StateEvent,
    WebhookDelivery,
    WebhookEvent,
    utcnow,
)
from checkout.services import admin as admin_service
from checkout.services.checkouts import mask_email, mask_mobile, mask_name
from checkout.services.exchanges import mask_body, mask_headers, mask_ip

bp = Blueprint("admin", __name__, url_prefix="/admin")
ops = Blueprint("ops", __name__)

SESSION_LIFETIME = timedelta(minutes=30)  # idle: the cookie is refreshed on each request
SESSION_MAX_AGE = timedelta(hours=12)  # absolute, from login
VERDICTS = (
    "received",
    "accepted",
    "no_change",
    "duplicate",
    "conflict",
    "amount_mismatch",
    "bad_signature",
    "malformed",
    "unknown_trade",
)


class LoginForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class ActionForm(FlaskForm):
    """Every POST action: only the CSRF token, and what the action is about."""

    target = HiddenField()
    reason = StringField("Reason", validators=[Length(max=150)])


def init_app(app: Flask) -> None:
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    app.register_blueprint(bp)
    app.register_blueprint(ops)


# ---------------------------------------------------------------- auth
def now() -> datetime:
    """The console's clock: `ADMIN_CLOCK` (a callable) when set, so tests can move time
    instead of sleeping through session lifetimes; otherwise the real UTC time."""
    clock = current_app.config.get("ADMIN_CLOCK")
    return clock() if clock is not None else utcnow()


@bp.before_request
def require_operator() -> Any:
    g.operator = None
    token = session.get("admin_session")
    if isinstance(token, str) and token:
        # Checked on the server each request: a session revoked there (logout, a password
        # reset, a deactivation, 30 idle minutes, 12 hours) is over whatever the cookie says.
        g.operator = admin_service.session_operator(
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


def _csrf_or_400(form: FlaskForm) -> None:
    if not form.validate_on_submit():
        if form.errors.get("csrf_token") or "csrf_token" not in request.form:
            abort(400, "CSRF token missing or invalid.")
        abort(400, "Invalid form.")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            if form.errors.get("csrf_token") or "csrf_token" not in request.form:
                abort(400, "CSRF token missing or invalid.")
            error = "Enter your name and password."
        else:
            operator = admin_service.authenticate(
                db.session, form.name.data or "", form.password.data or "", now()
            )
            if operator is None:
                # The same words for a wrong password, an unknown name and a locked one.
                error = (
                    "Wrong name or password. After several wrong passwords the name is "
                    "locked for a while, whatever address they came from."
                )
                # Never the password; the name as typed (cut short), and where from.
                current_app.logger.warning(
                    "admin login refused name=%r ip=%s",
                    (form.name.data or "")[:64],
                    request.remote_addr,
                )
            else:
                session.clear()  # no fixation: a fresh session (and CSRF token) on login
                session.permanent = True
                session["admin_session"] = admin_service.open_session(
                    db.session, operator, now(), request.remote_addr
                )
                current_app.logger.info("admin login operator=%s", operator.name)
                target = request.args.get("next") or ""
                if not target.startswith("/admin") or target.startswith("//"):
                    target = url_for("admin.checkouts")
                return redirect(target)
    status = 401 if error else 200
    return render_template("admin/login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> Any:
    _csrf_or_400(ActionForm())
    token = session.get("admin_session")
    if isinstance(token, str) and token:
        admin_service.revoke_session(db.session, token, now(), "logout")  # a copy dies too
    session.clear()
    return redirect(url_for("admin.login"))


def operator_name() -> str:
    return g.operator.name


# ---------------------------------------------------------------- payer search token
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
    """(the payer searched for, whether a token was given but is unusable).

    The payer search arrives only as `pt`, encrypted: the form POSTs what was typed and is
    redirected here, so a full e-mail or mobile never appears in a URL (history, proxy and
    access logs, Referer) nor in a page.
    """
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


# ---------------------------------------------------------------- pages
@bp.post("/")
def search() -> Any:
    """The search form: checked (CSRF), then redirected to the GET below with the payer
    encrypted, so what was typed never reaches a URL."""
    _csrf_or_400(ActionForm())
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
    args = request.args
    payer, payer_expired = _payer_from_request()
    flt = admin_service.CheckoutFilter(
        order_id=args.get("order_id", "").strip(),
        trade_no=args.get("trade_no", "").strip(),
        store=args.get("store", "").strip(),
        provider=args.get("provider", "").strip(),
        status=args.get("status", "").strip(),
        date_from=_parse_date(args.get("date_from")),
        date_to=_parse_date(args.get("date_to")),
        payer=payer,
        needs_review=args.get("review") == "1",
        mode=args.get("mode", "").strip(),
    )
    page = max(args.get("page", 1, type=int) or 1, 1)
    if payer_expired:
        # Never widen a payer search silently: an expired link shows nothing, and says so.
        rows, total, counts = [], 0, {}
    else:
        rows, total, counts = admin_service.search_checkouts(db.session, flt, page)
    keep = {k: v for k, v in args.items() if k in (*SEARCH_FIELDS, "review") and v and len(v) < 200}
    if payer:
        keep["pt"] = payer_token(payer)
    pages = (total + admin_service.PAGE_SIZE - 1) // admin_service.PAGE_SIZE
    settings = current_app.extensions["settings"]
    return render_template(
        "admin/checkouts.html",
        rows=rows,
        total=total,
        counts=counts,
        page=page,
        pages=pages,
        keep=keep,
        args=args,
        payer_masked=_masked_query(payer) if payer else "",
        payer_expired=payer_expired,
        statuses=[str(s) for s in CheckoutStatus],
        stores=sorted(settings.stores),
        providers=sorted(settings.providers),
    )


@bp.get("/checkouts/<checkout_id>")
def checkout(checkout_id: str) -> Any:
    session_ = db.session
    item = session_.get(Checkout, checkout_id)
    if item is None:
        abort(404)
    attempt_ids = [a.id for a in item.attempts]
    events = session_.scalars(
        select(StateEvent).where(StateEvent.checkout_id == item.id).order_by(StateEvent.id)
    ).all()
    actions = session_.scalars(
        select(OperatorAction)
        .where(OperatorAction.checkout_id == item.id)
        .order_by(OperatorAction.id)
    ).all()
    trade_nos = [a.trade_no for a in item.attempts]
    # Also the notifies that only name one of its trade numbers: a forged (bad signature) or
    # misrouted (unknown trade) notify claiming this order shows here, marked unverified.
    notify_rows = (
        session_.scalars(
            select(NotifyMessage)
            .where(
                or_(
                    NotifyMessage.attempt_id.in_(attempt_ids),
                    NotifyMessage.trade_no.in_(trade_nos),
                    NotifyMessage.claimed_trade_no.in_(trade_nos),
                )
            )
            .order_by(NotifyMessage.id)
        ).all()
        if attempt_ids
        else []
    )
    exchanges: dict[int, list[ProviderExchange]] = {}
    if attempt_ids:
        for x in session_.scalars(
            select(ProviderExchange)
            .where(ProviderExchange.attempt_id.in_(attempt_ids))
            .order_by(ProviderExchange.id)
        ):
            exchanges.setdefault(x.attempt_id, []).append(x)
    webhook_events = session_.scalars(
        select(WebhookEvent).where(WebhookEvent.checkout_id == item.id).order_by(WebhookEvent.id)
    ).all()
    deliveries: dict[int, list[WebhookDelivery]] = {}
    if webhook_events:
        for d in session_.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_id.in_([e.id for e in webhook_events]))
            .order_by(WebhookDelivery.id)
        ):
            deliveries.setdefault(d.event_id, []).append(d)
    return render_template(
        "admin/checkout.html",
        c=item,
        events=events,
        actions=actions,
        notifies=notify_rows,
        freshness=admin_service.freshness_flags(session_, list(notify_rows), _max_ages()),
        webhook_events=webhook_events,
        deliveries=deliveries,
        exchanges=exchanges,
        form=ActionForm(),
        live=item.live_attempt(),
    )


@bp.get("/notifies")
def notifies() -> Any:
    verdict = request.args.get("verdict", "")
    verdict = verdict if verdict in VERDICTS else ""
    trade_no = request.args.get("trade_no", "").strip()[:64]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows, total = admin_service.notifies(db.session, verdict, page, trade_no=trade_no)
    # The checkout of each notify: through its attempt, or (unverified) the trade number
    # it names.
    attempts: dict[int, str] = {}
    ids = {n.attempt_id for n in rows if n.attempt_id}
    if ids:
        attempts = {
            a.id: a.checkout_id
            for a in db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.id.in_(ids)))
        }
    claimed: dict[str, str] = {}
    named = {n.trade_no or n.claimed_trade_no for n in rows if not n.attempt_id} - {None}
    if named:
        claimed = {
            a.trade_no: a.checkout_id
            for a in db.session.scalars(
                select(PaymentAttempt).where(PaymentAttempt.trade_no.in_(named))
            )
        }
    pages = (total + admin_service.PAGE_SIZE - 1) // admin_service.PAGE_SIZE
    return render_template(
        "admin/notifies.html",
        rows=rows,
        total=total,
        verdict=verdict,
        trade_no=trade_no,
        verdicts=VERDICTS,
        page=page,
        pages=pages,
        attempts=attempts,
        claimed=claimed,
        freshness=admin_service.freshness_flags(db.session, rows, _max_ages()),
    )


def _max_ages() -> dict[str, int]:
    """Each provider instance's callback window (those that send freshness headers)."""
    from checkout.extensions import catalog_of

    return {
        name: provider.callback_max_age
        for name, provider in catalog_of(current_app).providers.items()
        if isinstance(getattr(provider, "callback_max_age", None), int)
    }


@bp.get("/providers")
def providers() -> Any:
    settings = current_app.extensions["settings"]
    stats = admin_service.provider_stats(db.session)
    names = sorted(settings.providers)
    circuits = admin_service.circuit_views(
        db.session, current_app.extensions["catalog"].circuits, names
    )
    return render_template(
        "admin/providers.html",
        providers=[settings.providers[name] for name in names],
        methods=settings.methods,
        stats=stats,
        circuits=circuits,
        failovers=admin_service.failover_stats(db.session),
        windows=[label for label, _span in admin_service.STATS_WINDOWS],
    )


# ---------------------------------------------------------------- actions
def _action(checkout_id: str) -> tuple[Checkout, ActionForm]:
    form = ActionForm()
    _csrf_or_400(form)
    item = db.session.get(Checkout, checkout_id)
    if item is None:
        abort(404)
    return item, form


def _back(checkout_id: str) -> Any:
    return redirect(url_for("admin.checkout", checkout_id=checkout_id))


@bp.post("/checkouts/<checkout_id>/query")
def query_provider(checkout_id: str) -> Any:
    from checkout.extensions import catalog_of
    from checkout.services.reconcile import query_now

    item, form = _action(checkout_id)
    attempt = next((a for a in item.attempts if a.trade_no == form.target.data), None)
    if attempt is None:
        abort(404)
    before = attempt.status
    # Any attempt, failed and expired too: money the provider reports is kept and flagged.
    query_now(db.session, catalog_of(current_app), attempt)
    db.session.refresh(attempt)
    outcome = f"{before} -> {attempt.status}"
    if attempt.last_query_error:
        outcome += f"; {attempt.last_query_error}"
    if attempt.review_reason:
        outcome += f"; review: {attempt.review_reason}"
    admin_service.record_action(
        db.session,
        operator_name(),
        "query_provider",
        item.id,
        target=attempt.trade_no,
        detail=outcome,
    )
    db.session.commit()
    flash(f"Query {attempt.trade_no}: {outcome}")
    return _back(item.id)


@bp.post("/checkouts/<checkout_id>/resend")
def resend_webhook(checkout_id: str) -> Any:
    from checkout.services.errors import NotFound
    from checkout.services.webhooks import resend_event

    item, form = _action(checkout_id)
    public_id = form.target.data or ""
    event = db.session.scalars(
        select(WebhookEvent).where(
            WebhookEvent.public_id == public_id, WebhookEvent.checkout_id == item.id
        )
    ).one_or_none()
    if event is None:
        abort(404)
    admin_service.record_action(
        db.session,
        operator_name(),
        "resend_webhook",
        item.id,
        target=public_id,
        detail=f"{event.type} seq {event.seq} was {event.status}",
    )
    try:
        resend_event(db.session, public_id)  # commits the audit row with the change
    except NotFound:
        db.session.rollback()
        abort(404)
    flash(f"Webhook {public_id} queued again.")
    return _back(item.id)


@bp.post("/checkouts/<checkout_id>/review")
def mark_review(checkout_id: str) -> Any:
    item, form = _action(checkout_id)
    reason = (form.reason.data or "").strip() or "marked by an operator"
    flash(admin_service.operator_mark_review(db.session, operator_name(), item.id, reason))
    return _back(item.id)


@bp.post("/checkouts/<checkout_id>/resolve")
def resolve_review(checkout_id: str) -> Any:
    item, form = _action(checkout_id)
    note = (form.reason.data or "").strip()
    flash(admin_service.operator_resolve_review(db.session, operator_name(), item.id, note))
    return _back(item.id)


@bp.post("/checkouts/<checkout_id>/cancel")
def cancel(checkout_id: str) -> Any:
    item, _form = _action(checkout_id)
    flash(admin_service.operator_cancel(db.session, operator_name(), item.id))
    return _back(item.id)


# ---------------------------------------------------------------- template helpers
@bp.app_template_filter("admin_mask_email")
def _f_mask_email(value: str | None) -> str:
    return mask_email(value) or ""


@bp.app_template_filter("admin_mask_mobile")
def _f_mask_mobile(value: str | None) -> str:
    return mask_mobile(value) or ""


@bp.app_template_filter("admin_mask_name")
def _f_mask_name(value: str | None) -> str:
    return mask_name(value) or ""


@bp.app_template_filter("admin_mask")
def _f_mask(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)
    return mask_text(value)


@bp.app_template_filter("admin_mask_body")
def _f_mask_body(value: str | None) -> str:
    """A raw body (a notify, a shop's answer): personal and secret values masked by key,
    as provider calls are, then as log text."""
    return mask_body(value.encode("utf-8")) or "" if value else ""


@bp.app_template_filter("admin_mask_headers")
def _f_mask_headers(value: dict[str, str] | None) -> str:
    return mask_headers(value)


@bp.app_template_filter("admin_mask_ip")
def _f_mask_ip(value: str | None) -> str:
    return mask_ip(value)


@bp.app_template_filter("admin_money")
def _f_money(amount: int | None, currency: str) -> str:
    from checkout.domain.money import CURRENCY_EXPONENT

    if amount is None:
        return ""
    exp = CURRENCY_EXPONENT.get(currency, 0)
    value = f"{amount / 10**exp:,.{exp}f}" if exp else f"{amount:,}"
    return f"{currency} {value}"


@bp.app_template_filter("admin_time")
def _f_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


# ---------------------------------------------------------------- health
@ops.get("/healthz")
def healthz() -> Any:
    return Response("ok", mimetype="text/plain")


@ops.get("/readyz")
def readyz() -> Any:
    # A read (SQLite: no write turn), so a writer holding the database does not fail it.
    with db.reading() as session:
        ready = admin_service.database_ready(session)
    if ready:
        return Response("ready", mimetype="text/plain")
    return Response("database unavailable", status=503, mimetype="text/plain")


@ops.get("/metrics")
def metrics() -> Any:
    """Prometheus metrics (checkout/metrics.py); `Bearer <metrics_token>` when one is set."""
    from checkout.metrics import metrics_of

    registry = metrics_of(current_app)
    if not registry.authorized(request.headers.get("Authorization")):
        return Response(
            "metrics_token required",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = registry.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


# The refunds' routes join this blueprint (additive: their own module).
from checkout.blueprints import admin_refunds  # noqa: E402, F401
