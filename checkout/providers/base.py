"""Types shared by every provider package, and the interface the services use.

Services only see these types; each provider package maps its wire format to
and from them in pure functions and keeps transport and signing in its client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from checkout import jsonsafe
from checkout.domain.ledger import MoneyReporting
from checkout.domain.ledger import PaymentUpdate as PaymentUpdate  # re-exported
from checkout.domain.ledger import Transfer as Transfer
from checkout.domain.money import Money
from checkout.domain.payer import Need as Need  # the shopper's data lives in the domain
from checkout.domain.payer import Payer as Payer
from checkout.domain.payer import PayerRules as PayerRules
from checkout.domain.payer import full_name as full_name
from checkout.domain.states import AttemptStatus
from checkout.providers.errors import (
    NotifyError,
    claimed_value,
)

Mapped = TypeVar("Mapped")


def after_signature(map_fields: Callable[[], Mapped]) -> Mapped:
    """Map a notify (pay-in or payout) whose signature has verified: a refusal from here on
    is marked `verified` (the provider did send it), so the notify limit never refuses such
    a source."""
    try:
        return map_fields()
    except NotifyError as error:
        error.verified = True
        raise


# ---------------------------------------------------------------- config
@dataclass(frozen=True)
class RouteConfig:
    """One provider instance that can serve a method, with that provider's own options."""

    provider: str  # provider instance name
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"way_code": "VA"}
    weight: int | None = None  # routes with a weight share traffic (checkout/domain/routing.py)


@dataclass(frozen=True)
class MethodConfig:
    """A payment method the shopper can pick; it names its provider instance(s).

    `provider`/`options` are the first route's (a method with one route has only these);
    `routes`, when the method names several instances, lists them all in priority order.
    """

    code: str  # our code, unique across the app, e.g. "kakaopay"
    provider: str  # provider instance name, e.g. "paypro_kr"
    name: str  # display name, e.g. "KakaoPay"
    options: Mapping[str, Any] = field(default_factory=dict)  # provider-specific keys
    names: Mapping[str, str] = field(default_factory=dict)  # localised names: {"ko": "카카오페이"}
    routes: tuple[RouteConfig, ...] = ()  # empty: the one route (provider, options)

    def display_name(self, locale: str | None = None) -> str:
        if locale and locale in self.names:
            return self.names[locale]
        return self.name

    def candidates(self) -> tuple[RouteConfig, ...]:
        """Every route, in configured order (one for the single `provider = ...` form)."""
        return self.routes or (RouteConfig(self.provider, self.options),)

    def via(self, route: RouteConfig) -> MethodConfig:
        """This method as one route's provider sees it: that instance and its options."""
        from dataclasses import replace

        return replace(self, provider=route.provider, options=route.options, routes=())

    def route_to(self, provider: str) -> MethodConfig | None:
        """This method through `provider`, or None if no route names that instance."""
        route = next((r for r in self.candidates() if r.provider == provider), None)
        return self.via(route) if route is not None else None


@dataclass(frozen=True)
class ProviderConfig:
    """One configured provider instance (e.g. PayPro Korea paymentLink)."""

    name: str  # instance name, used in /notify/<name>
    type: str  # "paypro" | "teemopay" | "diamondpay"
    base_url: str
    settings: Mapping[str, Any]  # credentials and provider-specific settings
    methods: tuple[MethodConfig, ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    sandbox: bool = False


# ---------------------------------------------------------------- shopper data
# ---------------------------------------------------------------- requests and results
@dataclass(frozen=True)
class PaymentRequest:
    trade_no: str  # ours, unique per attempt, at most 32 characters
    amount: Money
    method: MethodConfig
    payer: Payer
    notify_url: str
    return_url: str
    description: str | None = None
    expires_at: datetime | None = None  # aware UTC; providers clamp to their own maximum


class InstructionKind(StrEnum):
    BANK_TRANSFER = "bank_transfer"  # virtual account or CLABE
    BANK_CARD = "bank_card"  # deposit to a named bank card (Diamond Pay)
    BANK_DIRECT = "bank_direct"  # deposit to a bank account the provider names (Diamond Pay)
    QR_CODE = "qr"  # a code to scan with the bank's app (Diamond Pay)
    STORE_REFERENCE = "store_reference"  # pay in cash at a convenience store


@dataclass(frozen=True)
class PaymentInstructions:
    """What the shopper needs to pay without a provider page (the VA page)."""

    kind: InstructionKind
    amount: Money
    bank_name: str | None = None
    bank_code: str | None = None
    account_number: str | None = None  # VA number, CLABE or card number
    account_holder: str | None = None
    reference: str | None = None  # transfer reference or store payment reference
    expires_at: datetime | None = None  # aware UTC
    qr_content: str | None = None  # what the QR code encodes; defaults to the account
    cashier_url: str | None = None  # optional provider page ("open the cashier")


@dataclass(frozen=True)
class CreateResult:
    status: AttemptStatus  # PENDING normally; FAILED when the provider says so
    platform_trade_no: str | None
    redirect_url: str | None = None  # send the shopper here (303)
    instructions: PaymentInstructions | None = None  # or render these ourselves
    provider_status: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)  # parsed response body


@dataclass(frozen=True)
class Ack:
    """The exact HTTP answer a provider expects when a notify was taken."""

    body: str
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200


class PaymentProvider(Protocol):
    """What the services need from a provider instance."""

    config: ProviderConfig
    currency: str  # the one currency this instance takes
    notify_ack: Ack
    money_reporting: MoneyReporting  # one row per transfer, or the order's running total

    def payer_rules(self, method: MethodConfig) -> PayerRules: ...

    def supports_amount(self, amount: Money) -> bool: ...

    def refusal_created_nothing(self, code: str, message: str) -> bool:
        """Whether a create refusal with this code (and message) is one the provider
        documents as creating nothing, so the payment may go to another provider."""
        ...

    def create_payment(self, request: PaymentRequest) -> CreateResult:
        """Call the provider. Raises ProviderError (ProviderTimeout on a timeout)."""
        ...

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentUpdate:
        """Verify and map a notify. Raises InvalidSignature or MalformedNotify."""
        ...

    def claimed_trade_no(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The trade number a notify names, read without verifying anything (for the
        operators' inbox: a forged notify shows on the checkout it claims). Never raises."""
        ...

    def query_payment(self, trade_no: str, platform_trade_no: str | None) -> PaymentUpdate:
        """Ask the provider for an attempt's status. Raises ProviderError."""
        ...


@dataclass(frozen=True)
class NotifyFreshness:
    """A notify's freshness headers as received (TeemoPay's `timestamp` and `nonce`):
    unverified, kept for the operators' inbox, which flags stale or repeated ones."""

    sent_at: datetime | None
    nonce: str | None


def freshness_fields(provider: Any, headers: Mapping[str, str]) -> dict[str, Any]:
    """NotifyMessage's header_timestamp and header_nonce for a provider that sends them
    (one with `notify_freshness`), or nothing. Never raises: the headers are untrusted."""
    read = getattr(provider, "notify_freshness", None)
    if read is None:
        return {}
    try:
        fresh: NotifyFreshness = read(headers)
    except Exception:
        return {}
    return {"header_timestamp": fresh.sent_at, "header_nonce": fresh.nonce}


def claimed_field(body: bytes, *keys: str) -> str | None:
    """Best effort, for the inbox only: the first of `keys` holding a string or integer in
    a JSON object body, cut to 64 characters; None for anything else. Never raises: the
    body is unverified and may be anything."""

    try:
        data = jsonsafe.loads(body)
    except Exception:  # UnsafeJson, or anything else: the inbox simply shows no number
        return None
    return claimed_value(data, *keys)
