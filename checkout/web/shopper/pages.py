"""The shopper's pages: checkout form, payment details (VA) page, return page.

Routes parse and render only: the form's use case is services/shopper/form.py, the pages
read the checkout through one read model (services/shopper/page_reads.py). These pages may be
framed by the checkout's shop (its `allowed_origins`): `_page_context` puts the origins on
`g`, from where the security headers (frame-ancestors) and the templates (postMessage
targets) take them.
"""

from __future__ import annotations

from typing import Any

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
from markupsafe import Markup

from checkout.domain.states import CHECKOUT_FINAL, AttemptStatus, CheckoutStatus
from checkout.extensions import catalog_of, create_turns_of, settings_of
from checkout.forms import check_form_token, form_token
from checkout.i18n import current_language
from checkout.providers.registry import SPECS
from checkout.services.errors import NotFound
from checkout.services.payments import choose_another_way
from checkout.services.reconcile import refresh_attempt
from checkout.services.shopper.form import (
    PAYER_FIELDS,
    RECEIPT_FIELDS,
    FormContext,
    FormInput,
    FormOutcome,
    FormPage,
    Next,
    checkout_form,
)
from checkout.services.shopper.page_reads import (
    AttemptView,
    CheckoutView,
    read_page_checkout,
    refresh_and_read,
)
from checkout.services.shopper.payment_details import payment_details
from checkout.store.db import db

bp = Blueprint("pages", __name__)
_POSTED = ("csrf_token", "method", "shown_method", "switch", *PAYER_FIELDS, *RECEIPT_FIELDS)


@bp.app_context_processor
def embed_context() -> dict[str, Any]:
    """For base.html: where the page may post its events (only the checkout's shop)."""
    origins = getattr(g, "frame_origins", None)
    checkout_id = getattr(g, "embed_checkout_id", None)
    return {"embed": {"checkout_id": checkout_id, "origins": origins} if checkout_id else None}


@bp.get("/")
def index() -> Any:
    settings = settings_of(current_app)
    return render_template("index.html", sandbox=settings.sandbox, settings=settings)


@bp.route("/c/<checkout_id>", methods=["GET", "POST"])
def checkout_page(checkout_id: str) -> Any:
    posted = None
    if request.method == "POST":
        # A plain dict of the first values: MultiDict.get raises and catches an HTTP error
        # for every field the form leaves out (most receipt fields, usually).
        form = request.form.to_dict()
        posted = {k: form.get(k, "") for k in _POSTED}
    given = FormInput(
        checkout_id=checkout_id,
        posted=posted,
        # Not args.get, which raises and catches an HTTP error when the query has no method.
        method_param=next(iter(request.args.getlist("method")), None),
        payer_ip=request.remote_addr or "",
    )
    if given.posted is None:
        return _form_answer(given)
    # A submitted form may start a payment: it works in turns with the other payments of this
    # process, and gives its turn back while the provider answers (checkout/concurrency.py).
    with create_turns_of(current_app).taken():
        return _form_answer(given)


def _form_answer(given: FormInput) -> Any:
    try:
        outcome = checkout_form(_form_context(), given)
    except NotFound:
        abort(404)
    return _answer(outcome, opened=given.posted is None)


def _answer(outcome: FormOutcome, opened: bool = False) -> Any:
    if outcome.next == Next.FORM and outcome.page is not None:
        page = outcome.page
        html = render_template(
            "checkout.html",
            page=page,
            store_name=_store_name(page.checkout),
            methods_html=_methods_html(page),
            fields_html=_fields_html(page),
        )
        return html, outcome.status
    if outcome.next == Next.CONTINUE and outcome.attempt is not None:
        if opened and _at_cashier(outcome.attempt):
            # The link opened again (or Back from the cashier): the shopper may change course.
            return _resume_page(outcome.checkout_id)
        return _continue_attempt(outcome.checkout_id, outcome.attempt)
    if outcome.next == Next.RETURN:
        return redirect(url_for(".return_page", checkout_id=outcome.checkout_id), 303)
    if outcome.next == Next.RELOAD:
        return redirect(url_for(".checkout_page", checkout_id=outcome.checkout_id), 303)
    return _message(outcome.message or "", outcome.status)


def _methods_html(page: FormPage) -> Markup:
    """The methods' fieldset body (templates/_methods.html): the same for every checkout
    offering these methods in this language with this one chosen, so rendered once per app.
    page.groups is itself kept in the memo (services/shopper/form.py): the same object for the same
    methods and language."""
    return _fragment("_methods.html", page, page.groups, page.method.code)


def _fields_html(page: FormPage) -> Markup:
    """The payer's fields (templates/_fields.html); the blank form's (nothing typed, nothing
    wrong: a page shown for the first time) is the same for every checkout of these rules
    in this language, so rendered once per app."""
    if any(f.value or f.error for f in page.fields):
        return _render_fragment("_fields.html", page)
    return _fragment("_fields.html", page, page.fields, None)


def _fragment(name: str, page: FormPage, source: Any, variant: str | None) -> Markup:
    """Template `name` for `page`, kept per app while `source` (what it shows, an object the
    memo keeps alive) and `variant` are the same."""
    memo = _form_memo(current_app)
    # The entry holds `source`, so no other object can take its id while it is kept.
    key = (name, id(source), variant)
    entry = memo.get(key)
    if entry is not None and entry[0] is source:
        return entry[1]
    html = _render_fragment(name, page)
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = (source, html)
    return html


def _render_fragment(name: str, page: FormPage) -> Markup:
    template = current_app.jinja_env.get_template(name)
    return Markup(template.render(page=page))  # noqa: S704 (an autoescaped template)


_MEMO_LIMIT = 4096


def _form_memo(app: Any) -> dict[Any, Any]:
    """What the form derives from this app's configuration alone (FormContext.memo)."""
    memo = app.extensions.get("checkout_form_memo")
    if memo is None:
        memo = app.extensions.setdefault("checkout_form_memo", {})
    return memo


def _form_context() -> FormContext:
    settings = settings_of(current_app)
    return FormContext(
        session=db.session,
        catalog=catalog_of(current_app),
        test_catalog=catalog_of(current_app, livemode=False),
        settings=settings,
        secret_key=current_app.config["SECRET_KEY"],
        grace=settings.va_expiry_grace,
        waiting=create_turns_of(current_app).given_back,
        opened=_opened,
        memo=_form_memo(current_app),
    )


def _read(checkout_id: str, page: bool = True) -> CheckoutView:
    """The checkout as the shopper's pages read it (expired first if due), or 404."""
    try:
        view = read_page_checkout(db.session, checkout_id)
    except NotFound:
        abort(404)
    g.checkout_locale = view.locale
    if page:
        _page_context(view)
    return view


def _opened(checkout: CheckoutView) -> str:
    """The form's checkout is read: its page's context and language."""
    _page_context(checkout)
    return current_language()


def _page_context(checkout: CheckoutView) -> None:
    g.checkout_locale = checkout.locale
    g.test_mode = checkout.livemode is False  # base.html shows the test-mode banner
    store = settings_of(current_app).stores.get(checkout.store_id)
    g.frame_origins = store.allowed_origins if store else ()
    g.embed_checkout_id = checkout.id


def _store_name(checkout: CheckoutView) -> str:
    """The store's name from the configuration (what the stores row mirrors)."""
    store = settings_of(current_app).stores.get(checkout.store_id)
    return store.name if store is not None else checkout.store_name


def _continue_attempt(checkout_id: str, attempt: AttemptView) -> Any:
    """Send the shopper where the live attempt continues: never a second charge."""
    if attempt.status == AttemptStatus.UNKNOWN:
        return redirect(url_for(".checkout_page", checkout_id=checkout_id), 303)
    if attempt.instructions:
        return redirect(url_for(".payment_page", checkout_id=checkout_id), 303)
    if attempt.redirect_url and attempt.status == AttemptStatus.PENDING:
        return _to_cashier(checkout_id, attempt.redirect_url)
    return redirect(url_for(".return_page", checkout_id=checkout_id), 303)


def _to_cashier(checkout_id: str, url: str) -> Any:
    """Send the shopper to the provider's cashier, out of the shop's frame if there is one.

    Cashiers refuse to be framed, and a redirect can only replace the frame. Browsers say where
    a navigation will show (`Sec-Fetch-Dest`, sent by every current browser): `document` is
    the whole tab, so we redirect straight there. Anything else (`iframe`, or an old browser
    that does not say) goes through /continue, which leaves the frame by itself and works
    unframed too (README, "Embedding").
    """
    if request.headers.get("Sec-Fetch-Dest") == "document":
        return redirect(url, 303)
    return redirect(url_for(".continue_page", checkout_id=checkout_id), 303)


def _at_cashier(attempt: AttemptView) -> bool:
    """The attempt goes on at the provider's own page (a cashier, not our details page)."""
    return (
        attempt.status == AttemptStatus.PENDING
        and not attempt.instructions
        and _is_web_url(attempt.redirect_url)
    )


def _resume_page(checkout_id: str) -> Any:
    """Continue at the provider's page, or pay another way: never sent back by itself."""
    checkout = _read(checkout_id)
    live = checkout.live_attempt()
    if live is None or not _at_cashier(live):
        return redirect(url_for(".checkout_page", checkout_id=checkout_id), 303)
    return render_template(
        "continue.html",
        checkout=checkout,
        cashier_url=live.redirect_url,
        another_way_token=_another_way_token(checkout, live),
        store_name=_store_name(checkout),
        method_name=_method_name(live.method),
        provider_name=_provider_name(live.provider),
        resume=True,
    )


def _provider_name(instance: str) -> str:
    """The provider as its page shows itself to the shopper (PayPro, TeemoPay, Diamond Pay)."""
    config = settings_of(current_app).providers.get(instance)
    spec = SPECS.get(config.type) if config is not None else None
    return spec.display_name if spec is not None and spec.display_name else instance


@bp.post("/c/<checkout_id>/another-way")
def another_way(checkout_id: str) -> Any:
    """ "Pay another way": leave the live attempt and choose again (services/payments.py)."""
    if not check_form_token(
        current_app.config["SECRET_KEY"], checkout_id, request.form.get("csrf_token")
    ):
        return _message(_("Your session expired. Please submit the form again."), 400)
    choose_another_way(db.session, checkout_id)
    return redirect(url_for(".checkout_page", checkout_id=checkout_id), 303)


def _another_way_token(checkout: CheckoutView, attempt: AttemptView | None) -> str | None:
    """A form token for "pay another way" while a pending attempt holds the checkout."""
    if checkout.status != CheckoutStatus.PENDING or attempt is None:
        return None
    if attempt.status != AttemptStatus.PENDING or attempt.abandoned_at is not None:
        return None
    return form_token(current_app.config["SECRET_KEY"], checkout.id)


@bp.get("/c/<checkout_id>/continue")
def continue_page(checkout_id: str) -> Any:
    """Leaves the frame for the cashier: a link with target=_top, and checkout.js."""
    checkout = _read(checkout_id)
    live = checkout.live_attempt()
    if live is not None and live.instructions:
        return redirect(url_for(".payment_page", checkout_id=checkout.id), 303)
    url = live.redirect_url if live is not None else None
    if live is None or live.status != AttemptStatus.PENDING or not _is_web_url(url):
        return redirect(url_for(".return_page", checkout_id=checkout.id), 303)
    return render_template(
        "continue.html",
        checkout=checkout,
        cashier_url=url,
        another_way_token=_another_way_token(checkout, live),
        store_name=_store_name(checkout),
        method_name=_method_name(live.method),
        provider_name=_provider_name(live.provider),
        resume=False,
    )


def _is_web_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("https://", "http://"))


@bp.get("/c/<checkout_id>/pay")
def payment_page(checkout_id: str) -> Any:
    checkout = _read(checkout_id)
    settings = settings_of(current_app)
    store_name = _store_name(checkout)
    catalog, language = catalog_of(current_app), current_language()
    details = payment_details(checkout, settings, catalog, language, store_name)
    if details is None:
        return redirect(url_for(".checkout_page", checkout_id=checkout.id), 303)
    token = _another_way_token(checkout, checkout.live_attempt())
    return render_template(
        "payment.html", d=details, store_name=store_name, another_way_token=token
    )


@bp.get("/c/<checkout_id>/return")
def return_page(checkout_id: str) -> Any:
    """Shows only what we stored; query parameters from the provider are ignored."""
    checkout = _read(checkout_id)
    if checkout.status == CheckoutStatus.PENDING:
        # A late notify must not leave the shopper waiting: ask the provider (rate-limited).
        checkout = refresh_and_read(db.session, checkout, checkout.latest_attempt(), _refresh)
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
        another_way_token=_another_way_token(checkout, checkout.live_attempt()),
    )


def _refresh(attempt: Any) -> bool:
    grace = settings_of(current_app).va_expiry_grace
    return refresh_attempt(db.session, catalog_of(current_app), attempt, grace=grace)


@bp.get("/c/<checkout_id>/status")
def status_json(checkout_id: str) -> Any:
    checkout = _read(checkout_id, page=False)
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


def _message(text: str, status: int) -> Any:
    return render_template("message.html", message=text), status


def _method_name(code: str) -> str:
    method = settings_of(current_app).methods.get(code)
    return method.display_name(current_language()) if method else code


@bp.app_errorhandler(404)
def not_found(_error: Any) -> Any:
    if request.path.startswith(("/api/", "/notify/")):
        return jsonify(error={"code": "not_found", "message": "Not found."}), 404
    return _message(_("This page does not exist or the link has expired."), 404)
