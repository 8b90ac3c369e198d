"""The refund state machine and its money rules, as pure functions (no Flask, no ORM).

A refund belongs to a checkout and sends money back through the provider's payout API.

    requested ──approve──> approved ──send──> sending ──accepted──> processing ──> sent
        │                     │                  │ └─timeout─> unknown ─query─┘ │      │
        └──reject/cancel──────┴──cancel          └─refused─> failed <───────────┘      │
                                                                         returned <────┘

- `sending`: the row is written before the payout call, so a crash mid-call is visible.
- `unknown`: the call timed out; the payout may exist. Only a query (or a notify) under the
  same payout number moves it; it is never sent again under a new number.
- `sent`: the provider says the bank credited the account. `returned`: the bank sent it
  back later (TeemoPay status 4); the money is with the merchant again.
- Final: `rejected`, `cancelled`, `failed`, `returned`. `sent` is final for money
  purposes but may still become `returned`. Repeating the current status is a no-op.

Wiring this into the app's single decide-and-write ledger is still to do; nothing here
writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from checkout.domain.money import Money


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # asked for; waits for approval where one is needed
    APPROVED = "approved"  # may be sent
    REJECTED = "rejected"  # an approver said no
    CANCELLED = "cancelled"  # withdrawn before sending
    SENDING = "sending"  # payout call under way
    UNKNOWN = "unknown"  # the call timed out: query under the same payout number
    PROCESSING = "processing"  # the provider took the payout
    SENT = "sent"  # the bank credited the account
    FAILED = "failed"  # nothing was sent (refused, or failed at the provider)
    RETURNED = "returned"  # sent, then returned by the bank


REFUND_FINAL = frozenset(
    {RefundStatus.REJECTED, RefundStatus.CANCELLED, RefundStatus.FAILED, RefundStatus.RETURNED}
)
# Money committed but not yet out: counts against what is refundable and the daily cap.
REFUND_UNDER_WAY = frozenset(
    {
        RefundStatus.REQUESTED,
        RefundStatus.APPROVED,
        RefundStatus.SENDING,
        RefundStatus.UNKNOWN,
        RefundStatus.PROCESSING,
    }
)
REFUND_DONE = frozenset({RefundStatus.SENT})
# Refunds whose outcome we must ask the provider about.
REFUND_QUERYABLE = frozenset({RefundStatus.UNKNOWN, RefundStatus.PROCESSING})

_ALLOWED: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.REQUESTED: frozenset(
        {RefundStatus.APPROVED, RefundStatus.REJECTED, RefundStatus.CANCELLED}
    ),
    RefundStatus.APPROVED: frozenset({RefundStatus.SENDING, RefundStatus.CANCELLED}),
    RefundStatus.SENDING: frozenset(
        {
            RefundStatus.PROCESSING,
            RefundStatus.SENT,
            RefundStatus.FAILED,
            RefundStatus.UNKNOWN,
        }
    ),
    RefundStatus.UNKNOWN: frozenset(
        {RefundStatus.PROCESSING, RefundStatus.SENT, RefundStatus.FAILED}
    ),
    RefundStatus.PROCESSING: frozenset({RefundStatus.SENT, RefundStatus.FAILED}),
    RefundStatus.SENT: frozenset({RefundStatus.RETURNED}),
    RefundStatus.REJECTED: frozenset(),
    RefundStatus.CANCELLED: frozenset(),
    RefundStatus.FAILED: frozenset(),
    RefundStatus.RETURNED: frozenset(),
}


class RefundError(ValueError):
    """A refund rule says no. `code` is stable (for API errors and translations)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RefundTransitionError(RefundError):
    def __init__(self, current: RefundStatus, new: RefundStatus) -> None:
        super().__init__("bad_transition", f"a {current} refund cannot become {new}")
        self.current = current
        self.new = new


def refund_transition(current: RefundStatus, new: RefundStatus) -> bool:
    """True if `current` -> `new` is a change to make; False for a repeat (no-op).

    Raises RefundTransitionError for anything the table does not allow.
    """
    if current == new:
        return False
    if new not in _ALLOWED[current]:
        raise RefundTransitionError(current, new)
    return True


# What a payout's status (checkout.providers.payouts.PayoutStatus values) means for a
# refund that is sending, unknown or processing.
_FROM_PAYOUT: dict[str, RefundStatus] = {
    "accepted": RefundStatus.PROCESSING,
    "processing": RefundStatus.PROCESSING,
    "succeeded": RefundStatus.SENT,
    "failed": RefundStatus.FAILED,
    "returned": RefundStatus.RETURNED,
}


def status_from_payout(payout_status: str) -> RefundStatus:
    """Our refund status for a provider's payout status; RefundError for an unknown one."""
    try:
        return _FROM_PAYOUT[str(payout_status)]
    except KeyError:
        raise RefundError(
            "unknown_payout_status", f"unknown payout status {payout_status!r}"
        ) from None


# ---------------------------------------------------------------- amounts
class RefundLike(Protocol):
    @property
    def status(self) -> RefundStatus: ...

    @property
    def amount(self) -> Money: ...


def _sum(amounts: Iterable[Money], currency: str) -> Money:
    total = 0
    for money in amounts:
        if money.currency != currency:
            raise RefundError(
                "currency_mismatch", f"a {money.currency} refund on a {currency} checkout"
            )
        total += money.amount
    return Money(total, currency)


def refunded(refunds: Iterable[RefundLike], currency: str) -> Money:
    return _sum((r.amount for r in refunds if r.status in REFUND_DONE), currency)


def under_way(refunds: Iterable[RefundLike], currency: str) -> Money:
    return _sum((r.amount for r in refunds if r.status in REFUND_UNDER_WAY), currency)


def refundable(paid: Money, refunds: Iterable[RefundLike]) -> Money:
    """Paid minus refunded minus refunds under way (never below zero).

    Failed, rejected, cancelled and returned refunds give their amount back.
    """
    items = list(refunds)
    left = (
        paid.amount - refunded(items, paid.currency).amount - under_way(items, paid.currency).amount
    )
    return Money(max(left, 0), paid.currency)


def check_refund_amount(amount: Money, paid: Money, refunds: Iterable[RefundLike]) -> Money:
    """A new refund's amount: positive, the checkout's currency, at most what is refundable.
    Partial refunds are allowed. Returns what is left refundable after it."""
    if amount.currency != paid.currency:
        raise RefundError("currency_mismatch", f"the checkout is in {paid.currency}")
    if amount.amount <= 0:
        raise RefundError("amount_not_positive", "a refund must be more than zero")
    left = refundable(paid, refunds)
    if amount.amount > left.amount:
        raise RefundError("exceeds_refundable", f"at most {left} can be refunded")
    return Money(left.amount - amount.amount, paid.currency)


# ---------------------------------------------------------------- approval
class RefundSource(StrEnum):
    API = "api"  # the shop's API key
    CONSOLE = "console"  # an operator
    SHOPPER_PAGE = "shopper_page"  # the shopper gave the account on a refund-account page


@dataclass(frozen=True)
class ApprovalPolicy:
    """A second operator approves every console refund, and any refund above the
    currency's threshold (minor units; a currency without one always needs approval)."""

    thresholds: Mapping[str, int]

    def needs_second_approval(self, amount: Money, source: RefundSource) -> bool:
        if source == RefundSource.CONSOLE:
            return True
        threshold = self.thresholds.get(amount.currency)
        return threshold is None or amount.amount > threshold


def check_approver(requested_by: str | None, approved_by: str) -> None:
    """The approver is a person other than whoever asked for the refund."""
    if not approved_by or not approved_by.strip():
        raise RefundError("approver_required", "an approving operator is required")
    if requested_by is not None and approved_by.strip() == requested_by.strip():
        raise RefundError("same_operator", "a second operator must approve this refund")


# ---------------------------------------------------------------- daily cap
def store_day(moment: datetime, timezone: str) -> date:
    """The store's calendar day of an aware moment (caps reset at the store's midnight)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(ZoneInfo(timezone)).date()


def counts_toward_cap(status: RefundStatus) -> bool:
    """Money out or on its way counts; refunds that sent nothing do not."""
    return status in REFUND_UNDER_WAY or status in REFUND_DONE


def check_daily_cap(amount: Money, todays_refunds: Iterable[RefundLike], cap: Money | None) -> None:
    """Raise if `amount` would take the store's refunds of the day past `cap` (None: no cap).

    `todays_refunds` are the store's refunds created on this store day (see `store_day`).
    """
    if cap is None:
        return
    if cap.currency != amount.currency:
        raise RefundError("currency_mismatch", f"the daily cap is in {cap.currency}")
    used = _sum((r.amount for r in todays_refunds if counts_toward_cap(r.status)), cap.currency)
    if used.amount + amount.amount > cap.amount:
        left = Money(max(cap.amount - used.amount, 0), cap.currency)
        raise RefundError("daily_cap", f"the store's daily refund cap leaves {left} today")
