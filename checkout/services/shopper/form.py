"""The checkout form's use case: which methods and fields it shows, the payer's details,
PayPro's per-IP rule, starting the payment, and what the shopper is told when it fails.

The view (web/shopper/pages.py) parses the request into a `FormInput` and renders the
`FormOutcome` it gets back; everything decided about the form is decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from checkout.config import Settings
from checkout.domain import cfdi
from checkout.domain import receipts as rules
from checkout.domain.errors import ReceiptError
from checkout.domain.payer import MOBILE_EXAMPLE, validate_payer
from checkout.domain.routing import SkipReason
from checkout.domain.states import CHECKOUT_FINAL, AttemptStatus
from checkout.forms import ERROR_MESSAGES, FIELDS, FieldSpec, check_form_token, form_token
from checkout.i18n import format_local_datetime
from checkout.i18n import gettext as _
from checkout.i18n import lazy_gettext as _l
from checkout.providers.base import MethodConfig, Need, Payer, PayerRules
from checkout.providers.registry import timezone_of
from checkout.providers.spec import DEFAULT_TIMEZONE
from checkout.services.catalog import Catalog, MethodKind, method_kind
from checkout.services.errors import (
    CheckoutClosed,
    InvalidRequest,
    NoRouteAvailable,
    PaymentNotStarted,
)
from checkout.services.ip_limits import IpLimitVerdict, day_start_utc
from checkout.services.payments import start_payment
from checkout.services.receipts import (
    CASH_KINDS,
    ReceiptAsk,
    parse_invoice,
    save_receipt_request,
)
from checkout.services.reconcile import refresh_attempt
from checkout.services.shopper.page_reads import (
    AttemptView,
    CheckoutView,
    read_page_checkout,
    refresh_and_read,
)

UNKNOWN_PAGE_QUERY_AFTER = timedelta(seconds=3)  # the shopper's reloads, rate-limited
PAYER_FIELDS = ("first_name", "last_name", "email", "mobile", "birth_date")


KIND_LABELS = {
    MethodKind.EWALLET: _l("E-wallet"),
    MethodKind.BANK_TRANSFER: _l("Bank transfer"),
    MethodKind.CASH: _l("Cash"),
}


def method_hint(method: MethodConfig, language: str) -> str | None:
    """The method's one-line hint (`hint`, `hints = {ko = ...}` in its config)."""
    hints = method.options.get("hints") or {}
    if isinstance(hints, Mapping) and language in hints:
        return str(hints[language])
    hint = method.options.get("hint")
    return str(hint) if hint else None


@dataclass(frozen=True)
class MethodChoice:
    code: str
    name: str
    hint: str | None
    kind: MethodKind


@dataclass(frozen=True)
class MethodGroup:
    kind: MethodKind
    label: Any  # a lazy string (KIND_LABELS)
    methods: tuple[MethodChoice, ...]


@dataclass(frozen=True)
class FieldView:
    name: str
    spec: FieldSpec
    need: Need
    value: str
    error: str | None
    hint: str | None
    label: str = ""  # spec.label in the page's language


@dataclass(frozen=True)
class FormPage:
    checkout: CheckoutView
    groups: tuple[MethodGroup, ...]
    method: MethodChoice
    fields: tuple[FieldView, ...]
    token: str
    error: str | None  # about the whole submit (the provider, the IP rule, the token)
    failed: bool  # a payment just failed: "Try again" is the primary action
    receipts: ReceiptSection | None = None  # issue 24: cash receipt / factura sections

    @property
    def field_errors(self) -> tuple[FieldView, ...]:
        return tuple(f for f in self.fields if f.error)


class Next(StrEnum):
    FORM = "form"  # render `page`
    CONTINUE = "continue"  # a payment started or is live: continue `attempt`
    RETURN = "return"  # the checkout is final: the return page
    RELOAD = "reload"  # the checkout moved under the shopper: show the form again (GET)
    MESSAGE = "message"  # only `message`, with `status`


@dataclass(frozen=True)
class FormOutcome:
    next: Next
    checkout_id: str
    page: FormPage | None = None
    attempt: AttemptView | None = None
    message: str | None = None
    status: int = 200


@dataclass(frozen=True)
class FormInput:
    """The request as the view parsed it."""

    checkout_id: str
    posted: Mapping[str, str] | None  # the form's fields on a POST, None on a GET
    method_param: str | None  # ?method=
    payer_ip: str


@dataclass(frozen=True)
class FormContext:
    """What the use case needs of the app."""

    session: Session
    catalog: Catalog
    settings: Settings
    secret_key: str
    grace: timedelta
    waiting: Callable[[], AbstractContextManager[Any]] = nullcontext
    # Called with the checkout once read; returns the page's language (the web layer sets
    # the request's locale from the checkout there, for the messages written here).
    opened: Callable[[CheckoutView], str] = lambda checkout: checkout.locale or "en"
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    test_catalog: Catalog | None = None  # a test-mode checkout's methods (sandbox twins)
    # What the form derives from the configuration alone (the methods an amount may use,
    # their groups, the fields' labels and hints per language), kept per app: the config
    # never changes while the app runs. None: derived on every request.
    memo: dict[Any, Any] | None = None


def checkout_form(ctx: FormContext, given: FormInput) -> FormOutcome:
    """The checkout form: shown (GET), or submitted (POST), ending in a page to render or
    where the shopper goes next."""
    checkout = read_page_checkout(ctx.session, given.checkout_id)
    if checkout.livemode is False and ctx.test_catalog is not None:
        ctx = replace(ctx, catalog=ctx.test_catalog)  # a test checkout pays at the sandboxes
    language = ctx.opened(checkout)
    if checkout.status in CHECKOUT_FINAL:
        return FormOutcome(Next.RETURN, checkout.id)
    live = checkout.live_attempt()
    if live is not None and live.status == AttemptStatus.UNKNOWN:
        # A timed-out create may have gone through: ask before offering another attempt.
        checkout = refresh_and_read(ctx.session, checkout, live, _query_unknown(ctx))
        live = checkout.live_attempt()
        if checkout.status in CHECKOUT_FINAL:
            return FormOutcome(Next.RETURN, checkout.id)
        if live is not None and live.status == AttemptStatus.UNKNOWN:
            return FormOutcome(Next.MESSAGE, checkout.id, message=_checking_message())
    if live is not None and given.posted is None:
        return FormOutcome(Next.CONTINUE, checkout.id, attempt=live)
    methods = _methods_for(ctx, checkout)
    if not methods:
        return FormOutcome(Next.MESSAGE, checkout.id, message=_no_method(), status=409)
    posted = given.posted or {}
    method = _chosen(methods, posted.get("method") or given.method_param)
    values = {**(checkout.prefill or {}), **{k: posted.get(k, "") for k in posted}}
    if given.posted is None or _is_method_switch(posted, method):
        # Showing the form, or a method change posted back without JavaScript: what was
        # typed stays, nothing is checked yet.
        return _form(ctx, language, checkout, methods, method, values)
    if not check_form_token(ctx.secret_key, checkout.id, posted.get("csrf_token")):
        error = _("Your session expired. Please submit the form again.")
        return _form(ctx, language, checkout, methods, method, values, error=error, status=422)
    return _submit(ctx, given, language, checkout, methods, method, values)


def _submit(
    ctx: FormContext,
    given: FormInput,
    language: str,
    checkout: CheckoutView,
    methods: list[MethodConfig],
    method: MethodConfig,
    values: dict[str, str],
) -> FormOutcome:
    # Several routes: every field one of them uses (checkout/domain/routing.py); each route
    # then checks the details against its own rules in start_payment.
    rules = ctx.catalog.payer_rules_for(method, checkout.money)
    details, errors = _check_payer(ctx, rules, values)
    receipt_ask, receipt_errors = parse_receipt_form(ctx, checkout, method, values)  # issue 24
    if errors is not None or receipt_errors:
        # Receipt errors alone have no payer field to list: the summary says where to look.
        note = _("Please check the receipt details below.") if errors is None else None
        errors = {**(errors or {}), **receipt_errors}
        return _form(
            ctx, language, checkout, methods, method, values, errors=errors, error=note, status=422
        )
    assert details is not None
    save_receipt_request(
        ctx.session, checkout.id, receipt_ask, ctx.settings.account_cipher, tell_shop=True
    )
    payer = Payer(
        first_name=details.first_name,
        last_name=details.last_name,
        email=details.email,
        mobile=details.mobile,
        birth_date=details.birth_date,
        ip_address=given.payer_ip,
    )
    base = ctx.settings.public_base_url
    try:
        outcome = start_payment(
            ctx.session,
            ctx.catalog,
            checkout.id,
            method.code,
            payer,
            notify_url=lambda instance: f"{base}/notify/{instance}",
            return_url=f"{base}/c/{checkout.id}/return",
            waiting=ctx.waiting,
            loaded=checkout,  # read at the start of this request: its methods and amount
        )
    except NoRouteAvailable as exc:
        # Routes the payer cannot use, PayPro's per-IP rule (our count) and open circuits
        # are passed over before anything is written or sent.
        if all(s.reason == SkipReason.PAYER_RULES for s in exc.skips):
            # Each route refused the details: show what the first one asks.
            first = ctx.catalog.routes_for(method, checkout.money)[0]
            errors = _payer_errors(ctx, ctx.catalog.route_rules(method, first), values) or {}
            return _form(
                ctx, language, checkout, methods, method, values, errors=errors, status=422
            )
        error = no_route_message(ctx, exc, methods, language)
        return _form(ctx, language, checkout, methods, method, values, error=error, status=422)
    except PaymentNotStarted as exc:
        error = _payment_error_message(exc)
        return _form(
            ctx, language, checkout, methods, method, values, error=error, status=422, failed=True
        )
    except (CheckoutClosed, InvalidRequest):
        return FormOutcome(Next.RELOAD, checkout.id)
    return FormOutcome(Next.CONTINUE, checkout.id, attempt=outcome.attempt)


def _form(
    ctx: FormContext,
    language: str,
    checkout: CheckoutView,
    methods: list[MethodConfig],
    method: MethodConfig,
    values: Mapping[str, str],
    *,
    errors: Mapping[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
    failed: bool = False,
) -> FormOutcome:
    rules = _memo(ctx, ("rules", id(ctx.catalog), method.code, checkout.money),
                  lambda: ctx.catalog.payer_rules_for(method, checkout.money))  # fmt: skip
    codes = tuple(m.code for m in methods)
    groups = _memo(ctx, ("groups", id(ctx.catalog), codes, language),
                   lambda: method_groups(methods, language))  # fmt: skip
    chosen = next(m for g in groups for m in g.methods if m.code == method.code)
    fields = _memo(ctx, ("fields", rules, language), lambda: _field_bases(rules, language))
    page = FormPage(
        checkout=checkout,
        groups=groups,
        method=chosen,
        fields=_with_values(fields, values, errors or {}),
        token=form_token(ctx.secret_key, checkout.id),  # a fresh one with every form
        error=error,
        failed=failed,
        receipts=receipt_section(ctx, checkout, method, values, errors),  # issue 24
    )
    return FormOutcome(Next.FORM, checkout.id, page=page, status=status)


_MEMO_LIMIT = 4096  # entries; shops' method lists are few, a flood of odd ones is not kept


def _memo(ctx: FormContext, key: Any, make: Callable[[], Any]) -> Any:
    """`make()`, kept in ctx.memo under `key` (everything `make` reads is configuration)."""
    memo = ctx.memo
    if memo is None:
        return make()
    try:
        return memo[key]
    except KeyError:
        pass
    value = make()
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _methods_for(ctx: FormContext, checkout: CheckoutView) -> list[MethodConfig]:
    """The methods the checkout offers (its amount, its shop's list): configuration only."""
    allowed = tuple(checkout.methods) if checkout.methods is not None else None
    return _memo(ctx, ("methods", id(ctx.catalog), checkout.money, allowed),
                 lambda: ctx.catalog.methods_for(checkout.money, checkout.methods))  # fmt: skip


def method_groups(methods: list[MethodConfig], language: str) -> tuple[MethodGroup, ...]:
    """The methods by kind (e-wallet, bank transfer, cash), in the configuration's order."""
    groups = []
    for kind in MethodKind:
        choices = tuple(
            MethodChoice(m.code, m.display_name(language), method_hint(m, language), kind)
            for m in methods
            if method_kind(m) == kind
        )
        if choices:
            groups.append(MethodGroup(kind, KIND_LABELS[kind], choices))
    return tuple(groups)


def payer_fields(
    rules: PayerRules, values: Mapping[str, str], errors: Mapping[str, str], language: str
) -> tuple[FieldView, ...]:
    """The fields the method asks for, in the page language's order: the family name first
    on Korean pages (성, 이름), the given name first elsewhere."""
    needs = {
        "first_name": rules.name,
        "last_name": rules.name,
        "email": rules.email,
        "mobile": rules.mobile,
        "birth_date": rules.birth_date,
    }
    order = list(PAYER_FIELDS)
    if language == "ko":
        order[0], order[1] = "last_name", "first_name"
    example = MOBILE_EXAMPLE.get(rules.mobile_country, "")
    hints = {
        "mobile": _("For example %(example)s", example=example),
        "birth_date": _("Year, month, day: for example 1990-05-17"),
    }
    return tuple(
        FieldView(
            name=name,
            spec=FIELDS[name],
            need=needs[name],
            value=str(values.get(name) or ""),
            error=errors.get(name),
            hint=hints.get(name),
            label=str(FIELDS[name].label),
        )
        for name in order
        if needs[name] != Need.HIDDEN
    )


def _field_bases(rules: PayerRules, language: str) -> tuple[FieldView, ...]:
    """The fields with their labels and hints in `language`, empty and without errors."""
    return payer_fields(rules, {}, {}, language)


def _with_values(
    fields: tuple[FieldView, ...], values: Mapping[str, str], errors: Mapping[str, str]
) -> tuple[FieldView, ...]:
    """The fields with what the shopper typed and what is wrong with it."""
    if not any(values.get(f.name) or errors.get(f.name) for f in fields):
        return fields  # the same object: pages.py keeps the blank form's HTML by it
    return tuple(
        replace(f, value=str(values.get(f.name) or ""), error=errors.get(f.name)) for f in fields
    )


def _chosen(methods: list[MethodConfig], code: str | None) -> MethodConfig:
    return next((m for m in methods if m.code == code), methods[0])


def _is_method_switch(posted: Mapping[str, str], method: MethodConfig) -> bool:
    """The shopper picked another method and posted the form to see its fields (no
    JavaScript): the fields shown were for `shown_method`."""
    return bool(posted.get("switch")) and posted.get("shown_method") != method.code


def _error_text(code: str, rules: PayerRules) -> str:
    message = str(ERROR_MESSAGES[code])
    params = {"n": rules.name_max_length, "low": rules.min_age, "high": rules.max_age}
    return message % params if "%(" in message else message


def _query_unknown(ctx: FormContext) -> Callable[[Any], bool]:
    """Ask the provider about an attempt whose create timed out (the shopper's reloads,
    rate-limited)."""

    def refresh(attempt: Any) -> bool:
        return refresh_attempt(
            ctx.session,
            ctx.catalog,
            attempt,
            min_interval=UNKNOWN_PAGE_QUERY_AFTER,
            grace=ctx.grace,
        )

    return refresh


def _payer_errors(
    ctx: FormContext, rules: PayerRules, values: Mapping[str, str]
) -> dict[str, str] | None:
    """The fields' error texts under `rules`, or None when the details pass."""
    return _check_payer(ctx, rules, values)[1]


def _check_payer(
    ctx: FormContext, rules: PayerRules, values: Mapping[str, str]
) -> tuple[Any, dict[str, str] | None]:
    """The payer's details under `rules`, or the fields' error texts (details None)."""
    today = ctx.now().astimezone(ZoneInfo(rules.timezone)).date()
    details, codes = validate_payer(rules, {k: values.get(k, "") for k in PAYER_FIELDS}, today)
    if details is not None:
        return details, None
    return None, {name: _error_text(code, rules) for name, code in codes.items()}


def no_route_message(
    ctx: FormContext, exc: NoRouteAvailable, methods: list[MethodConfig], language: str
) -> str:
    """Why the method cannot take the payment now, and what remains: the methods still
    offered at other providers, or when the rule resets."""
    ip_limits = [s for s in exc.skips if s.reason == SkipReason.IP_LIMIT]
    providers = ctx.settings.providers
    if ip_limits and len(ip_limits) == len(exc.skips):
        skip = ip_limits[0]
        ruled = providers[skip.provider].type if skip.provider in providers else None
        reason = skip.detail or "attempts"
        verdict = IpLimitVerdict(False, 0, 0, skip.limit or 0, skip.limit or 0, reason)
        others = [
            m.display_name(language)
            for m in methods
            # the rule covers every instance of the provider: methods with another remain
            if any(providers[r.provider].type != ruled for r in m.candidates())
        ]
        config = providers.get(skip.provider)
        zone = timezone_of(config) if config else DEFAULT_TIMEZONE
        resets = skip.retry_at or day_start_utc(ctx.now() + timedelta(days=1), zone)
        return ip_rule_message(verdict, others, resets, zone)
    text = _(
        "%(method)s cannot take payments right now: none of its payment providers is "
        "available. Nothing was charged.",
        method=exc.method.display_name(language),
    )
    retry_at = exc.retry_at
    if retry_at is not None:
        minutes = max(1, -(-int((retry_at - ctx.now()).total_seconds()) // 60))
        text += " " + _("Please try again in about %(minutes)d minutes.", minutes=minutes)
    others = [m.display_name(language) for m in methods if m.code != exc.method.code]
    if others:
        text += " " + _("You can also pay with: %(methods)s.", methods=", ".join(others))
    return text


def ip_rule_message(verdict: IpLimitVerdict, others: list[str], resets: datetime, zone: str) -> str:

    if verdict.reason == "successes":
        text = _(
            "PayPro accepts at most %(count)d payments a day from one internet connection, "
            "and that many were made today. Nothing was charged.",
            count=verdict.max_successes,
        )
    else:
        text = _(
            "PayPro accepts at most %(count)d payment attempts a day from one internet "
            "connection, and that many were made today. Nothing was charged.",
            count=verdict.max_attempts,
        )
    if others:
        return text + " " + _("You can still pay with: %(methods)s.", methods=", ".join(others))
    return (
        text
        + " "
        + _(
            "These methods take payments from this connection again from %(time)s.",
            time=format_local_datetime(resets, zone),
        )
    )


def _payment_error_message(exc: PaymentNotStarted) -> str:
    if exc.error is not None and exc.error.retryable:
        return _(
            "The payment provider did not answer, so this payment did not start. Nothing was "
            "charged. Your details are kept: try again in a moment or choose another method."
        )
    return _(
        "The payment provider declined to start this payment. Nothing was charged. Your "
        "details are kept: check them and try again, or choose another method."
    )


def _checking_message() -> str:
    return _(
        "We are checking your earlier payment with the payment provider. "
        "Nothing more will be charged. Please try again in a moment."
    )


def _no_method() -> str:
    return _("No payment method is available for this order.")


# ---------------------------------------------------------------- receipts (issue 24)
# The shopper's cash-receipt choice (KRW cash methods) and "¿Necesitas factura?" (MXN):
# shown by templates/_cash_receipt.html and _factura.html, read here, kept by
# services/receipts.save_receipt_request. A choice the shop already gave through the API is
# not asked again.
RECEIPT_FIELDS = (
    "cash_receipt_type",
    "cash_receipt_mobile",
    "cash_receipt_brn",
    "factura",
    "factura_rfc",
    "factura_name",
    "factura_regimen_fiscal",
    "factura_uso_cfdi",
    "factura_postal_code",
    "factura_email",
)
RECEIPT_ERROR_MESSAGES = {
    "invalid_mobile": _l("Enter a mobile number such as 010-1234-5678."),
    "identity_required": _l("Enter the number to issue the receipt to."),
    "invalid_business_number": _l("This business registration number is not valid."),
    "invalid_receipt_type": _l("Choose one of the receipt options."),
    "invalid_rfc": _l("This RFC is not valid."),
    "invalid_name": _l("Enter the name or razón social."),
    "invalid_regimen": _l("Choose a régimen fiscal."),
    "regimen_not_for_persona": _l("This régimen fiscal does not go with this RFC."),
    "invalid_uso": _l("Choose a uso de CFDI."),
    "uso_not_for_regimen": _l("This uso de CFDI is not allowed with this régimen fiscal."),
    "generic_rfc": _l("The generic RFC goes with régimen 616 and uso S01 only."),
    "invalid_postal_code": _l("A código postal has five digits."),
}


@dataclass(frozen=True)
class ReceiptSection:
    """What the form's receipt sections show: which ones, the values and the errors."""

    cash_receipt: bool  # the 현금영수증 choice
    factura: bool  # ¿Necesitas factura?
    values: Mapping[str, str]
    errors: Mapping[str, str]
    regimenes: tuple[tuple[str, str], ...] = ()
    usos: tuple[tuple[str, str], ...] = ()


def receipt_section(
    ctx: FormContext,
    checkout: CheckoutView,
    method: MethodConfig,
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
) -> ReceiptSection | None:
    """The sections this checkout and method ask for, or None."""
    cash = checkout.currency == rules.KRW and method_kind(method) in CASH_KINDS
    factura = checkout.currency == "MXN"
    if not cash and not factura:
        return None
    cash = cash and not checkout.receipt_chosen
    factura = factura and not checkout.invoice_given
    if not cash and not factura:
        return None
    shown = dict(values)
    if cash and not shown.get("cash_receipt_type"):
        prefill = rules.prefill_choice(values.get("mobile"))
        shown["cash_receipt_type"] = str(prefill.kind)
        shown.setdefault("cash_receipt_mobile", prefill.identity or "")
    if factura and not shown.get("factura_email"):
        shown["factura_email"] = values.get("email", "")
    return ReceiptSection(
        cash,
        factura,
        shown,
        errors or {},
        tuple((r.code, f"{r.code} {r.name}") for r in cfdi.REGIMENES.values()),
        tuple((u.code, f"{u.code} {u.name}") for u in cfdi.USOS.values()),
    )


def parse_receipt_form(
    ctx: FormContext, checkout: CheckoutView, method: MethodConfig, values: Mapping[str, str]
) -> tuple[Any, dict[str, str]]:
    """The posted sections as a ReceiptAsk, and the errors in the shopper's language by
    field (empty: nothing wrong)."""
    section = receipt_section(ctx, checkout, method, values)
    errors: dict[str, str] = {}
    if section is None:
        return ReceiptAsk(), errors
    choice = invoice = None
    if section.cash_receipt:
        kind = values.get("cash_receipt_type") or str(rules.IdentityKind.NONE)
        field_name = (
            "cash_receipt_brn"
            if kind == rules.IdentityKind.EXPENSE_PROOF
            else "cash_receipt_mobile"
        )
        try:
            choice = rules.parse_choice(kind, values.get(field_name))
        except ReceiptError as exc:
            errors[field_name] = str(RECEIPT_ERROR_MESSAGES.get(exc.code, exc.message))
    if section.factura and values.get("factura") == "1":
        keys = {"rfc", "name", "regimen_fiscal", "uso_cfdi", "postal_code", "email"}
        try:
            invoice = parse_invoice({k: values.get(f"factura_{k}", "") for k in keys})
        except InvalidRequest as exc:
            errors[f"factura_{exc.field}"] = str(RECEIPT_ERROR_MESSAGES.get(exc.code, exc.message))
    return ReceiptAsk(choice, invoice), errors
