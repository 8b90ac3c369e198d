"""What the payment-details page shows: the instructions of a checkout's attempt, with the
bank named in the page's language, the deadline in the provider's zone, a QR code, a Code 128
barcode for a cash reference, and the sandbox's deposit link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup

from checkout.config import Settings
from checkout.domain.banks import bank_name, clabe_bank_code
from checkout.domain.code128 import code128_svg
from checkout.domain.errors import NotEncodable
from checkout.domain.money import Money
from checkout.domain.states import ATTEMPT_FINAL, CheckoutStatus
from checkout.providers.base import InstructionKind, PaymentInstructions
from checkout.qr import qr_svg
from checkout.services.catalog import Catalog
from checkout.services.payments import instructions_from_json
from checkout.services.shopper.page_reads import AttemptView, CheckoutView


@dataclass(frozen=True)
class PaymentDetails:
    checkout: CheckoutView
    attempt: AttemptView
    ins: PaymentInstructions
    kind: str  # "clabe", "bank_account", "bank_card", "bank_direct", "qr", "store_reference"
    bank: str | None  # in the page's language
    beneficiary: str | None
    zone: str  # the provider's zone: the deadline is shown there
    deadline: datetime  # aware UTC
    expires_local: datetime
    qr: Markup | None
    barcode: Markup | None  # the cash reference, Code 128
    final: bool
    sandbox_deposit_url: str | None
    method_name: str
    where_to_pay: str | None  # where the provider says a cash reference is taken
    # Part paid: what is still owed, which the same account or reference takes.
    still_owed: Money | None = None


def payment_details(
    checkout: CheckoutView, settings: Settings, catalog: Catalog, language: str, store_name: str
) -> PaymentDetails | None:
    """The newest attempt with instructions, as the page shows it; None if there is none."""
    attempt = next((a for a in reversed(checkout.attempts) if a.instructions), None)
    if attempt is None:
        return None
    ins = instructions_from_json(attempt.instructions or {})
    zone = provider_timezone(attempt, settings, catalog)
    method = settings.methods.get(attempt.method)
    # A routed method: the options of the route this attempt took (its service, its hints).
    routed = (method.route_to(attempt.provider) if method else None) or method
    reference_code = ins.reference if ins.kind == InstructionKind.STORE_REFERENCE else None
    qr_content = ins.qr_content or ins.account_number or ins.reference
    # The provider's deadline, else the checkout's: the attempt cannot outlive it.
    deadline = min(d for d in (ins.expires_at, checkout.expires_at) if d is not None)
    return PaymentDetails(
        checkout=checkout,
        attempt=attempt,
        ins=ins,
        kind=details_kind(ins, checkout.currency),
        bank=bank_name(
            ins.bank_code or clabe_bank_code(ins.account_number), ins.bank_name, language
        ),
        beneficiary=ins.account_holder or _beneficiary(attempt, settings, store_name),
        zone=zone,
        deadline=deadline,
        expires_local=deadline.astimezone(ZoneInfo(zone)),
        qr=qr_svg(qr_content) if qr_content else None,
        barcode=_barcode(reference_code),
        final=attempt.status in ATTEMPT_FINAL,
        sandbox_deposit_url=_sandbox_deposit_url(attempt, settings),
        method_name=method.display_name(language) if method else attempt.method,
        where_to_pay=_where_to_pay(routed.options if routed else {}, language),
        still_owed=still_owed(checkout) if reference_code is None else None,
    )


def still_owed(checkout: CheckoutView) -> Money | None:
    """What a part-paid checkout still waits for (None unless part paid). An account (a
    virtual account, a CLABE, a bank card) takes further transfers: TeemoPay credits each
    transfer to the order (psp-docs README); a cash reference is paid once, so it is never
    offered for the rest."""
    if checkout.status != CheckoutStatus.PARTIALLY_PAID:
        return None
    return checkout.owed_money


def _beneficiary(attempt: AttemptView, settings: Settings, store_name: str) -> str:
    """Who the money goes to when the provider does not name the account's holder: the
    provider collects for the merchant named in its configuration, else the store."""
    config = settings.providers.get(attempt.provider)
    named = config.settings.get("merchant_name") if config is not None else None
    return str(named or store_name)


def details_kind(ins: PaymentInstructions, currency: str) -> str:
    """Which page shows the instructions: the provider's mapping says what they are."""
    if ins.kind == InstructionKind.BANK_TRANSFER:
        return "clabe" if currency == "MXN" else "bank_account"
    return str(ins.kind)  # store_reference, bank_card, bank_direct, qr


def provider_timezone(attempt: AttemptView, settings: Settings, catalog: Catalog) -> str:
    """Times are shown in the provider's country (Korea, Mexico)."""
    method = settings.methods.get(attempt.method)
    routed = method.route_to(attempt.provider) if method is not None else None
    provider = catalog.providers.get(attempt.provider)
    if routed is None or provider is None:
        return "UTC"
    return provider.payer_rules(routed).timezone


def _barcode(reference: str | None) -> Markup | None:
    if not reference:
        return None
    try:
        return Markup(code128_svg(reference))  # noqa: S704 - built from escaped parts
    except NotEncodable:
        return None


def _where_to_pay(options: object, language: str) -> str | None:
    get = getattr(options, "get", None)
    if get is None:
        return None
    names = get("where_to_pay_names") or {}
    if isinstance(names, dict) and language in names:
        return str(names[language])
    text = get("where_to_pay")
    return str(text) if text else None


def _sandbox_deposit_url(attempt: AttemptView, settings: Settings) -> str | None:
    config = settings.providers.get(attempt.provider)
    if config is None or not config.sandbox or not attempt.platform_trade_no:
        return None
    root = config.base_url.rsplit("/", 1)[0]
    return f"{root}/cashier/{config.type}/{attempt.platform_trade_no}"
