"""Types for sending money out through a provider's payout API (refunds, excess returns).

None of our providers has a refund API: money goes back to a bank account as a payout
(PayPro `payOut`, TeemoPay payout, Diamond Pay `SVC0004`). Each provider package maps
these types to and from its wire format in pure functions (`payout_mapping.py`) and
keeps transport and signing in its payout client (`payout_client.py`).

An outcome is never guessed: a create that timed out raises ProviderTimeout (the payout
may exist), and the caller queries it under the same payout number; it never sends a
second payout under a new number.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from checkout.domain.money import Money
from checkout.providers.base import Ack, ProviderConfig
from checkout.providers.errors import ProviderError

PAYOUT_NO_PREFIX = "PO"
PAYOUT_NO_LENGTH = 32  # TeemoPay's merchantOrderNo limit, the smallest of the three


def new_payout_no(now: datetime | None = None) -> str:
    """`PO` + UTC time to the second + 64 random bits: 32 characters.

    The prefix keeps payout numbers disjoint from pay-in trade numbers (which start with
    a digit), so a PayPro notify, which looks the same for both, can be routed by it.
    """
    now = now or datetime.now(UTC)
    return PAYOUT_NO_PREFIX + now.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


# ---------------------------------------------------------------- requests
class AccountType(StrEnum):
    BANK_ACCOUNT = "bank_account"  # a Korean bank account number
    CLABE = "clabe"  # Mexico's 18-digit interbank number
    DEBIT_CARD = "debit_card"  # Mexico: a 16-digit debit card


@dataclass(frozen=True)
class BankAccount:
    """Where the money goes. Validate with checkout.domain.accounts before sending."""

    bank_code: str  # from the provider's bank list
    account_number: str  # digits only
    holder_name: str
    account_type: AccountType = AccountType.BANK_ACCOUNT

    def masked(self) -> str:
        """For logs and screens: the bank and the last four digits only."""
        return f"{self.bank_code} ****{self.account_number[-4:]}"

    def __repr__(self) -> str:  # never print a full account number or a name
        return f"BankAccount({self.masked()})"


class IdType(StrEnum):
    """The beneficiary's kind (TeemoPay `idType`)."""

    INDIVIDUAL = "individual"
    COMPANY = "company"


@dataclass(frozen=True)
class PayoutRequest:
    payout_no: str  # ours, unique per payout, at most 32 characters; never reused
    amount: Money
    destination: BankAccount
    notify_url: str
    mobile: str | None = None  # beneficiary mobile: PayPro KR and Diamond Pay require one
    email: str | None = None  # beneficiary e-mail: PayPro KR requires one
    id_type: IdType = IdType.INDIVIDUAL
    id_number: str | None = None  # PayPro MX `identity` (optional)
    remark: str | None = None

    def __repr__(self) -> str:
        return (
            f"PayoutRequest(payout_no={self.payout_no!r}, amount={self.amount}, "
            f"destination={self.destination!r})"
        )


# ---------------------------------------------------------------- answers
class PayoutStatus(StrEnum):
    ACCEPTED = "accepted"  # the provider took the order; nothing sent yet
    PROCESSING = "processing"  # on its way to the bank
    SUCCEEDED = "succeeded"  # the bank credited the account
    FAILED = "failed"  # not sent; the money stays with the merchant
    RETURNED = "returned"  # sent, then returned by the bank (TeemoPay status 4)


FINAL_PAYOUT_STATUSES = frozenset(
    {PayoutStatus.SUCCEEDED, PayoutStatus.FAILED, PayoutStatus.RETURNED}
)


@dataclass(frozen=True)
class PayoutResult:
    """A create call's answer: the provider took the order (or failed it at once)."""

    payout_no: str
    status: PayoutStatus  # ACCEPTED / PROCESSING normally; FAILED if refused after taking it
    platform_payout_no: str | None
    provider_status: str
    failure_code: str | None = None
    failure_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PayoutUpdate:
    """A provider's word on a payout, from a notify or a query."""

    payout_no: str
    status: PayoutStatus
    provider_status: str
    platform_payout_no: str | None = None
    amount: Money | None = None  # what the payout was for, when the provider says
    amount_sent: Money | None = None  # what actually went out, when the provider says
    fee: Money | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Balance:
    """What the merchant can pay out now (`available`), and what is held."""

    available: Money
    frozen: Money | None = None
    unsettled: Money | None = None  # pay-ins not yet settled to the balance (PayPro)
    total: Money | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bank:
    code: str
    name: str


# ---------------------------------------------------------------- refusals
class RefusalReason(StrEnum):
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNSUPPORTED_BANK = "unsupported_bank"
    DUPLICATE_ORDER = "duplicate_order"


class PayoutRefused(ProviderError):
    """A create the provider refused for a known business reason; nothing was sent.

    `code` is the provider's own code (e.g. TeemoPay `425`); `reason` is ours.
    """

    reason: RefusalReason

    def __init__(self, provider: str, code: str, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", False)
        super().__init__(provider, code, message, **kwargs)


class InsufficientBalance(PayoutRefused):
    reason = RefusalReason.INSUFFICIENT_BALANCE


class UnsupportedBank(PayoutRefused):
    reason = RefusalReason.UNSUPPORTED_BANK


class DuplicatePayout(PayoutRefused):
    """The payout number was used before. The earlier payout may exist: query it;
    never treat this as a failure of that earlier payout."""

    reason = RefusalReason.DUPLICATE_ORDER


REFUSAL_TYPES: dict[RefusalReason, type[PayoutRefused]] = {
    RefusalReason.INSUFFICIENT_BALANCE: InsufficientBalance,
    RefusalReason.UNSUPPORTED_BANK: UnsupportedBank,
    RefusalReason.DUPLICATE_ORDER: DuplicatePayout,
}


def refusal(
    reason: RefusalReason, provider: str, code: str, message: str, **kwargs: Any
) -> PayoutRefused:
    return REFUSAL_TYPES[reason](provider, code, message, **kwargs)


class InvalidPayout(ProviderError):
    """A payout request this provider cannot take as it is (a missing beneficiary mobile,
    a bank outside its list, an amount it cannot express); nothing was sent."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(provider, "invalid_payout", message, retryable=False)


def configured_banks(config: ProviderConfig) -> tuple[Bank, ...] | None:
    """`settings.payout_banks` (a table of bank code -> name) as Banks; None when absent.

    For providers that publish no bank list (PayPro's and Diamond Pay's Korea lists were
    not found): the list the provider gives the merchant is configured here.
    """
    table = config.settings.get("payout_banks")
    if table is None:
        return None
    if not isinstance(table, Mapping) or not table:
        raise ValueError(
            f"provider {config.name!r}: settings.payout_banks must be a table of code = name"
        )
    return tuple(Bank(str(code), str(name)) for code, name in table.items())


NotifyKind = Literal["payin", "payout"]


class PayoutProvider(Protocol):
    """What the refund services will need from a provider instance's payout side."""

    config: ProviderConfig
    currency: str
    notify_ack: Ack

    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        """Raises PayoutRefused (typed), InvalidPayout, ProviderTimeout (outcome unknown:
        query, never resend under a new number) or ProviderError."""
        ...

    def query_payout(self, payout_no: str) -> PayoutUpdate:
        """Raises OrderNotFound when the provider has no such payout, or ProviderError."""
        ...

    def parse_payout_notify(self, headers: Mapping[str, str], body: bytes) -> PayoutUpdate:
        """Verify and map a payout notify. Raises InvalidSignature or MalformedNotify."""
        ...

    def notify_kind(self, headers: Mapping[str, str], body: bytes) -> NotifyKind:
        """Which parser a notify belongs to, read without verifying (routing only)."""
        ...

    def balance(self) -> Balance: ...

    def banks(self) -> tuple[Bank, ...] | None:
        """The banks payouts may go to; None when the provider publishes no list."""
        ...
