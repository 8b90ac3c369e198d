"""The shopper's pages: checkout form, payment details (VA) page, return page.

These pages may be framed by the checkout's shop (its `allowed_origins`): `_load(...,
page=True)` puts the origins on `g`, from where the security headers (frame-ancestors) and the
templates (postMessage targets) take them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from checkout.app import catalog_of, create_turns_of, settings_of
from checkout.db import db
from checkout.domain.states import ATTEMPT_FINAL, CHECKOUT_FINAL, AttemptStatus, CheckoutStatus
from checkout.forms import (
    FIELD_LABELS,
    PaymentForm,
    check_form_token,
    form_token,
    visible_fields,
)
from checkout.models import Checkout, PaymentAttempt, utcnow
from checkout.providers.base import Payer, PayerRules
from checkout.qr import qr_svg
from checkout.services.checkout_views import AttemptView, CheckoutView, read_checkout
from checkout.services.checkouts import expire_if_due, get_checkout
from checkout.services.errors import CheckoutClosed, InvalidRequest, NotFound
from checkout.services.ip_limits import check_paypro_ip
from checkout.services.payments import (
    PaymentNotStarted,
    instructions_from_json,
    start_payment,
)
from checkout.services.reconcile import durations_from_config, refresh_attempt

bp = Blueprint("pages", __name__)


@bp.app_context_processor
def embed_context() -> dict[str, Any]:
    """For base.html: where the page may post its events (only the checkout's shop)."""
    origins = getattr(g, "frame_origins", None)
    checkout_id = getattr(g, "embed_checkout_id", None)
    return {"embed": {"checkout_id": checkout_id, "origins": origins} if checkout_id else None}


@bp.get("/")
def index() -> Any:
    return render_template("index.html", sandbox=settings_of(current_app).sandbox)


def _load(checkout_id: str, page: bool = False) -> Checkout:
    """The checkout as models (for what writes), or 404. `page`: a shopper page the
    checkout's shop may frame."""
    # A read-only transaction, ended at once: shopper pages are mostly reads, and on SQLite a
    # reader then does not queue on the write lock. Whatever writes next begins its own.
    with db.reading() as session:
        try:
            checkout = get_checkout(session, checkout_id)
        except NotFound:
            abort(404)
    _page_context(checkout, page)
    expire_if_due(db.session, checkout)
    return checkout


def _read(checkout_id: str, page: bool = False) -> CheckoutView | Checkout:
    """The checkout as a page only reads it (one narrow query, services/checkout_views.py),
    or 404. An open checkout past its deadline is expired first, as models."""
    with db.reading() as session:
        try:
            view = read_checkout(session, checkout_id)
        except NotFound:
            abort(404)
    if view.status == CheckoutStatus.OPEN and utcnow() >= view.expires_at:
        return _load(checkout_id, page)
    _page_context(view, page)
    return view


def _page_context(checkout: CheckoutView | Checkout, page: bool) -> None:
    g.checkout_locale = checkout.locale
    g.test_mode = checkout.livemode is False  # base.html shows the test-mode banner
    if page:
        store = settings_of(current_app).stores.get(checkout.store_id)
        g.frame_origins = store.allowed_origins if store else ()
        g.embed_checkout_id = checkout.id


def _store_name(checkout: CheckoutView | Checkout) -> str:
    """The store's name from the configuration (what the stores row mirrors)."""
    store = settings_of(current_app).stores.get(checkout.store_id)
    return store.name if store is not None else checkout.store_name


def _provider_today(rules: PayerRules) -> Any:
    return datetime.now(ZoneInfo(rules.timezone)).date()


@bp.route("/c/<checkout_id>", methods=["GET", "POST"])
def checkout_page(checkout_id: str) -> Any:
    if request.method != "POST":
        return _checkout_page(checkout_id)
    # A submitted form may start a payment: it works in turns with the other payments of this
    # process, and gives its turn back while the provider answers (checkout/concurrency.py).
    with create_turns_of(current_app).taken():
        return _checkout_page(checkout_id)


def _checkout_page(checkout_id: str) -> Any:
    # A GET only reads; a POST may start a payment (models, written in its transaction).
    checkout: CheckoutView | Checkout = (
        _load(checkout_id, page=True) if request.method == "POST" else _read(checkout_id, True)
    )
    if checkout.status in CHECKOUT_FINAL:
        return redirect(url_for(".return_page", checkout_id=checkout.id), 303)
    live = checkout.live_attempt()
    if live is not None and live.status == AttemptStatus.UNKNOWN:
        # A timed-out create may have gone through: ask before offering another attempt.
        if not isinstance(checkout, Checkout):
            checkout = _load(checkout_id, page=True)
        checkout, live = _resolve_unknown(checkout, checkout.live_attempt())
        if checkout.status in CHECKOUT_FINAL:
            return redirect(url_for(".return_page", checkout_id=checkout.id), 303)
        if live is not None and live.status == AttemptStatus.UNKNOWN:
            return _message(
                _(
                    "We are checking your earlier payment with the payment provider. "
                    "Nothing more will be charged. Please try again in a moment."
                ),
                200,
            )
    if live is not None and request.method == "GET":
        return _continue_attempt(checkout, live)

    catalog = catalog_of(current_app, checkout.livemode)  # a test checkout: sandbox twins
    methods = catalog.methods_for(checkout.money, checkout.methods)
    if not methods:
        return _message(_("No payment method is available for this order."), 409)
    # What the shop already knows fills the form; what the shopper types wins.
    form = PaymentForm(data=checkout.prefill or None)
    chosen_code = (form.method.data if request.method == "POST" else None) or request.args.get(
        "method", methods[0].code
    )
    method = next((m for m in methods if m.code == chosen_code), methods[0])
    provider = catalog.provider_for(method)
    rules = provider.payer_rules(method)
    form.method.data = method.code
    error: str | None = None
    secret_key = current_app.config["SECRET_KEY"]
    # Our own token, bound to this checkout (see checkout/forms.py): no cookie is needed, so
    # the form works in a shop's iframe with third-party cookies blocked.
    token_ok = request.method == "POST" and check_form_token(
        secret_key, checkout.id, form.csrf_token.data
    )

    if token_ok and form.validate_on_submit():
        details = form.check_payer(rules, _provider_today(rules))
        if details is not None:
            settings = settings_of(current_app)
            payer = Payer(
                first_name=details.first_name,
                last_name=details.last_name,
                email=details.email,
                mobile=details.mobile,
                birth_date=details.birth_date,
                ip_address=request.remote_addr or "",
            )
            assert isinstance(checkout, Checkout)  # a POST loaded the models
            try:
                # PayPro's per-IP daily rule, before anything is written or sent.
                _check_ip_limit(checkout, method.provider, payer.ip_address)
                outcome = start_payment(
                    db.session,
                    catalog,
                    checkout.id,
                    method.code,
                    payer,
                    notify_url=f"{settings.public_base_url}/notify/{method.provider}",
                    return_url=f"{settings.public_base_url}/c/{checkout.id}/return",
                    waiting=create_turns_of(current_app).given_back,
                    loaded=checkout,
                )
            except IpLimitReached as exc:
                error = exc.message
            except PaymentNotStarted as exc:
                error = _payment_error_message(exc)
            except (CheckoutClosed, InvalidRequest):
                return redirect(url_for(".checkout_page", checkout_id=checkout.id), 303)
            else:
                return _continue_attempt(checkout, outcome.attempt)
    elif request.method == "POST" and not token_ok:
        error = _("Your session expired. Please submit the form again.")

    form.csrf_token.data = form_token(secret_key, checkout.id)  # a fresh one with every form
    status = 422 if request.method == "POST" else 200
    return render_template(
        "checkout.html",
        checkout=checkout,
        store_name=_store_name(checkout),
        methods=methods,
        method=method,
        form=form,
        fields=visible_fields(rules),
        labels=FIELD_LABELS,
        rules=rules,
        error=error,
        locale=_current_locale(),
    ), status


class IpLimitReached(Exception):
    """The payer's IP used up a provider's daily allowance; nothing was created."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check_ip_limit(checkout: Checkout, instance: str, payer_ip: str) -> None:
    """Raise IpLimitReached if PayPro would refuse this IP today (services/ip_limits.py)."""
    if checkout.live_attempt() is not None:
        return  # start_payment resumes the live attempt: nothing new goes to the provider
    providers = settings_of(current_app).providers
    config = providers.get(instance)
    if config is None:
        return
    with db.reading() as session:  # a read: no write lock (SQLite) or transaction yet
        verdict = check_paypro_ip(session, providers, config, payer_ip)
    if verdict.allowed:
        return
    if verdict.reason == "successes":
        text = _(
            "This payment method accepts at most %(count)d payments a day from one internet "
            "connection, and that many were made today. Nothing was charged. Please choose "
            "another method or try again tomorrow.",
            count=verdict.max_successes,
        )
    else:
        text = _(
            "This payment method accepts at most %(count)d payment attempts a day from one "
            "internet connection, and that many were made today. Nothing was charged. Please "
            "choose another method or try again tomorrow.",
            count=verdict.max_attempts,
        )
    raise IpLimitReached(text)


def _payment_error_message(exc: PaymentNotStarted) -> str:
    if exc.error is not None and exc.error.retryable:
        return _(
            "The payment provider is not answering right now. Nothing was charged. "
            "Please try again in a moment or choose another method."
        )
    return _(
        "The payment provider could not start this payment. Nothing was charged. "
        "Please check your details or choose another method."
    )


UNKNOWN_PAGE_QUERY_AFTER = timedelta(seconds=3)  # the shopper's reloads, rate-limited


def _resolve_unknown(
    checkout: Checkout, attempt: PaymentAttempt | None
) -> tuple[Checkout, PaymentAttempt | None]:
    """Query the provider about an attempt whose create timed out; reload what changed."""
    if attempt is None:
        return checkout, None
    grace = durations_from_config(settings_of(current_app).raw)[1]
    queried = refresh_attempt(
        db.session,
        catalog_of(current_app),
        attempt,
        min_interval=UNKNOWN_PAGE_QUERY_AFTER,
        grace=grace,
    )
    if queried:
        checkout = get_checkout(db.session, checkout.id)
    return checkout, checkout.live_attempt()


def _continue_attempt(
    checkout: CheckoutView | Checkout, attempt: AttemptView | PaymentAttempt
) -> Any:
    """Send the shopper where the live attempt continues: never a second charge."""
    if attempt.status == AttemptStatus.UNKNOWN:
        return redirect(url_for(".checkout_page", checkout_id=checkout.id), 303)
    if attempt.instructions:
        return redirect(url_for(".payment_page", checkout_id=checkout.id), 303)
    if attempt.redirect_url and attempt.status == AttemptStatus.PENDING:
        return _to_cashier(checkout, attempt.redirect_url)
    return redirect(url_for(".return_page", checkout_id=checkout.id), 303)


def _to_cashier(checkout: CheckoutView | Checkout, url: str) -> Any:
    """Send the shopper to the provider's cashier, out of the shop's frame if there is one.

    Cashiers refuse to be framed, and a redirect can only replace the frame. Browsers say where
    a navigation will show (`Sec-Fetch-Dest`, sent by every current browser): `document` is
    the whole tab, so we redirect straight there. Anything else (`iframe`, or an old browser
    that does not say) goes through /continue, which leaves the frame by itself and works
    unframed too.
    """
    if request.headers.get("Sec-Fetch-Dest") == "document":
        return redirect(url, 303)
    return redirect(url_for(".continue_page", checkout_id=checkout.id), 303)


@bp.get("/c/<checkout_id>/continue")
def continue_page(checkout_id: str) -> Any:
    """Leaves the frame for the cashier: a link with target=_top, and checkout.js."""
    checkout = _read(checkout_id, page=True)
    live = checkout.live_attempt()
    if live is not None and live.instructions:
        return redirect(url_for(".payment_page", checkout_id=checkout.id), 303)
    url = live.redirect_url if live is not None else None
    if (
        live is None
        or live.status != AttemptStatus.PENDING
        or not url
        or not url.startswith(("https://", "http://"))
    ):
        return redirect(url_for(".return_page", checkout_id=checkout.id), 303)
    return render_template(
        "continue.html",
        checkout=checkout,
        cashier_url=url,
        store_name=_store_name(checkout),
        method_name=_method_name(live.method),
        locale=_current_locale(),
    )


@bp.get("/c/<checkout_id>/pay")
def payment_page(checkout_id: str) -> Any:
    checkout = _read(checkout_id, page=True)
    attempt = next((a for a in reversed(checkout.attempts) if a.instructions), None)
    if attempt is None:
        return redirect(url_for(".checkout_page", checkout_id=checkout.id), 303)
    instructions = instructions_from_json(attempt.instructions or {})
    settings = settings_of(current_app)
    provider_cfg = settings.providers.get(attempt.provider)
    sandbox_deposit_url = None
    if provider_cfg is not None and provider_cfg.sandbox and attempt.platform_trade_no:
        root = provider_cfg.base_url.rsplit("/", 1)[0]
        sandbox_deposit_url = f"{root}/cashier/{provider_cfg.type}/{attempt.platform_trade_no}"
    qr_content = instructions.qr_content or instructions.account_number or instructions.reference
    zone = _provider_timezone(attempt)
    return render_template(
        "payment.html",
        checkout=checkout,
        attempt=attempt,
        ins=instructions,
        zone=zone,  # the expiry is shown in the provider's country (i18n.format_local_datetime)
        expires_local=(
            instructions.expires_at.astimezone(ZoneInfo(zone)) if instructions.expires_at else None
        ),
        qr=qr_svg(qr_content) if qr_content else None,
        final=attempt.status in ATTEMPT_FINAL,
        sandbox_deposit_url=sandbox_deposit_url,
        store_name=_store_name(checkout),
        method_name=_method_name(attempt.method),
        locale=_current_locale(),
    )


@bp.get("/c/<checkout_id>/return")
def return_page(checkout_id: str) -> Any:
    """Shows only what we stored; query parameters from the provider are ignored."""
    checkout = _load(checkout_id, page=True)
    attempt = checkout.latest_attempt()
    if checkout.status == CheckoutStatus.PENDING and attempt is not None:
        # A late notify must not leave the shopper waiting: ask the provider (rate-limited).
        grace = durations_from_config(settings_of(current_app).raw)[1]
        if refresh_attempt(db.session, catalog_of(current_app), attempt, grace=grace):
            checkout = get_checkout(db.session, checkout.id)
            attempt = checkout.latest_attempt()
    final = checkout.status in CHECKOUT_FINAL or (
        checkout.status == CheckoutStatus.OPEN and attempt is not None
    )
    return render_template(
        "return.html",
        checkout=checkout,
        attempt=attempt,
        final=final,
        store_name=_store_name(checkout),
        locale=_current_locale(),
    )


@bp.get("/c/<checkout_id>/status")
def status_json(checkout_id: str) -> Any:
    checkout = _read(checkout_id)
    attempt = checkout.latest_attempt()
    return jsonify(
        status=checkout.status,
        final=checkout.status in CHECKOUT_FINAL,
        amount=checkout.amount,
        amount_paid=checkout.amount_paid,
        currency=checkout.currency,
        attempt_status=attempt.status if attempt else None,
    )


@bp.get("/demo/shop-return")
def demo_shop_return() -> Any:
    """Sandbox only: a stand-in for the shop's own page behind return_url."""
    if not settings_of(current_app).sandbox:
        abort(404)
    return render_template("demo_return.html", args=request.args)


def _provider_timezone(attempt: AttemptView | PaymentAttempt) -> str:
    """Times are shown in the provider's country (Korea, Mexico)."""
    method = settings_of(current_app).methods.get(attempt.method)
    provider = catalog_of(current_app).providers.get(attempt.provider)
    if method is None or provider is None:
        return "UTC"
    return provider.payer_rules(method).timezone


def _message(text: str, status: int) -> Any:
    return render_template("message.html", message=text), status


def _method_name(code: str) -> str:
    method = settings_of(current_app).methods.get(code)
    return method.display_name(_current_locale()) if method else code


def _current_locale() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale.language) if locale else "en"


@bp.app_errorhandler(404)
def not_found(_error: Any) -> Any:
    if request.path.startswith(("/api/", "/notify/")):
        return jsonify(error={"code": "not_found", "message": "Not found."}), 404
    return _message(_("This page does not exist or the link has expired."), 404)
