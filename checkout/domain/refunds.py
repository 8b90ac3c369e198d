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
  back later (TeemoPay status 4); the money is with the merchant again. A return heard
  before the success (its notify lost) moves sending, unknown or processing to `returned`
  directly: otherwise the refund would wait as under way for ever.
- Final: `rejected`, `cancelled`, `failed`, `returned`. `sent` is final for money
  purposes but may still become `returned`. Repeating the current status is a no-op.

The use cases at the end (`request_refund`, `approve_refund`, `claim_for_sending`,
`payout_reported`, ...) take the checkout and its refunds as read under the checkout's row
lock and return a `RefundPlan`; `store/ledger.write_refund_plan` is its one writer. A plan
that creates a refund, or ends one, carries one shop event (`refund.created`, `refund.sent`,
`refund.failed`) numbered by the checkout's `event_seq`, so the shop's sequence still only
grows. Intermediate steps (approved, sending, unknown, processing) are timeline only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from checkout.domain.errors import RefundError, RefundTransitionError
from checkout.domain.ledger import Verdict
from checkout.domain.money import Money
from checkout.domain.states import CheckoutStatus


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
# Money committed but not yet out: counts against what is refundable.
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
# Nothing sent yet: it may still be cancelled, or given the account it goes to.
REFUND_OPEN = frozenset({RefundStatus.REQUESTED, RefundStatus.APPROVED})
# Refunds whose outcome we must ask the provider about.
REFUND_QUERYABLE = frozenset({RefundStatus.UNKNOWN, RefundStatus.PROCESSING})

_ALLOWED: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.REQUESTED: frozenset(
        {RefundStatus.APPROVED, RefundStatus.REJECTED, RefundStatus.CANCELLED}
    ),
    RefundStatus.APPROVED: frozenset({RefundStatus.SENDING, RefundStatus.CANCELLED}),
    # Returned straight from sending, unknown or processing: the success was never heard
    # (its notify lost, no query in between); the money went out and came back.
    RefundStatus.SENDING: frozenset(
        {
            RefundStatus.PROCESSING,
            RefundStatus.SENT,
            RefundStatus.FAILED,
            RefundStatus.UNKNOWN,
            RefundStatus.RETURNED,
        }
    ),
    RefundStatus.UNKNOWN: frozenset(
        {RefundStatus.PROCESSING, RefundStatus.SENT, RefundStatus.FAILED, RefundStatus.RETURNED}
    ),
    RefundStatus.PROCESSING: frozenset(
        {RefundStatus.SENT, RefundStatus.FAILED, RefundStatus.RETURNED}
    ),
    RefundStatus.SENT: frozenset({RefundStatus.RETURNED}),
    RefundStatus.REJECTED: frozenset(),
    RefundStatus.CANCELLED: frozenset(),
    RefundStatus.FAILED: frozenset(),
    RefundStatus.RETURNED: frozenset(),
}


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
        raise RefundError("exceeds_refundable", f"at most {left.format_grouped()} can be refunded")
    return Money(left.amount - amount.amount, paid.currency)


def excess_to_return(
    status: CheckoutStatus, due: Money, paid: Money, refunds: Iterable[RefundLike]
) -> Money:
    """What a "return the excess" refund pre-fills: all that was paid on a cancelled
    checkout (nothing is due on it), else what was paid beyond the amount due (overpaid,
    late or duplicate money); never more than is still refundable."""
    if due.currency != paid.currency:
        raise RefundError("currency_mismatch", f"the checkout is in {due.currency}")
    excess = paid.amount if status == CheckoutStatus.CANCELLED else paid.amount - due.amount
    left = refundable(paid, refunds).amount
    return Money(max(min(excess, left), 0), paid.currency)


def awaits_approval(status: RefundStatus) -> bool:
    """A second operator may approve or reject it (approve_refund, reject_refund)."""
    return status == RefundStatus.REQUESTED


def refund_cancellable(status: RefundStatus) -> bool:
    """An operator may still cancel it: no money has left (cancel_refund)."""
    return status in REFUND_OPEN


def awaits_destination(status: RefundStatus, has_destination: bool) -> bool:
    """A refund the shopper may still give an account to (its refund-account link works)."""
    return not has_destination and status in REFUND_OPEN


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
# Money out or on its way out: what the daily cap counts once the refund was claimed for
# sending. Approved refunds not yet claimed (held by the cap itself) and refunds that sent
# nothing (failed) or whose money came back (returned) do not.
REFUND_PAID_OUT = frozenset(
    {RefundStatus.SENDING, RefundStatus.UNKNOWN, RefundStatus.PROCESSING, RefundStatus.SENT}
)


def store_day(moment: datetime, timezone: str) -> date:
    """The store's calendar day of an aware moment (caps reset at the store's midnight)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(ZoneInfo(timezone)).date()


def store_day_bounds(moment: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The store day of `moment` as [start, end) in UTC: what the ledger reads for
    the daily cap (a day of 23 or 25 hours where the zone changes its clocks)."""
    zone = ZoneInfo(timezone)
    day = store_day(moment, timezone)
    start = datetime.combine(day, time.min, zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, zone).astimezone(UTC)
    return start, end


@dataclass(frozen=True)
class CapRefund:
    """One of the store's refunds as the daily cap reads it (store/ledger.load_cap_day)."""

    status: RefundStatus
    amount: Money
    livemode: bool  # its checkout's mode
    sending_at: datetime | None  # first claimed for sending (None: never)


def counts_toward_cap(
    refund: CapRefund, livemode: bool, currency: str, day: date, timezone: str
) -> bool:
    """A refund of this mode and currency whose money left (or is leaving) on `day`, the
    store's calendar day: a test refund never uses up the live cap, nor the other way."""
    return (
        refund.livemode == livemode
        and refund.amount.currency == currency
        and refund.status in REFUND_PAID_OUT
        and refund.sending_at is not None
        and store_day(refund.sending_at, timezone) == day
    )


def check_daily_cap(
    amount: Money,
    livemode: bool,
    store_refunds: Iterable[CapRefund],
    cap: Money | None,
    now: datetime,
    timezone: str,
) -> None:
    """Raise if sending `amount` now (a refund of mode `livemode`) would take the store's
    refunds of the day past `cap` (None: no cap). The cap is per store, mode and currency;
    `store_refunds` may hold any of the store's refunds: only those `counts_toward_cap`
    counts are summed."""
    if cap is None:
        return
    if cap.currency != amount.currency:
        raise RefundError("currency_mismatch", f"the daily cap is in {cap.currency}")
    day = store_day(now, timezone)
    used = _sum(
        (
            r.amount
            for r in store_refunds
            if counts_toward_cap(r, livemode, cap.currency, day, timezone)
        ),
        cap.currency,
    )
    if used.amount + amount.amount > cap.amount:
        left = Money(max(cap.amount - used.amount, 0), cap.currency)
        raise RefundError("daily_cap", f"the store's daily refund cap leaves {left} today")


# ---------------------------------------------------------------- use cases (plans)
@dataclass(frozen=True)
class RefundState:
    """A refund as read under its checkout's row lock."""

    id: int
    public_id: str
    status: RefundStatus
    amount: Money
    requested_by: str
    source: RefundSource
    has_destination: bool
    payout_no: str | None = None
    sending_at: datetime | None = None
    query_count: int = 0


@dataclass(frozen=True)
class CheckoutMoney:
    """What the refund rules read of the checkout (locked): its money and event sequence."""

    id: str
    status: str
    currency: str
    amount: int
    amount_paid: int
    review_reason: str | None
    event_seq: int
    livemode: bool = True  # False: a test-mode checkout (its refunds' events say so)


@dataclass(frozen=True)
class NewRefund:
    public_id: str
    amount: Money
    reason: str
    source: RefundSource
    provider: str
    requested_by: str
    destination_token: str | None
    destination_masked: str | None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RefundTimelineEntry:
    from_status: RefundStatus | None  # None: the refund was created
    to_status: RefundStatus
    source: str  # EventSource value: operator, create, query, notify
    detail: str | None = None


@dataclass(frozen=True)
class RefundShopEvent:
    type: str  # refund.created, refund.sent, refund.failed
    seq: int


@dataclass(frozen=True)
class RefundPlan:
    refund_id: int | None  # None: `new` is inserted
    public_id: str
    status: RefundStatus  # the refund's status once written
    amount: Money
    new: NewRefund | None = None
    expect_status: RefundStatus | None = None  # the update applies only from this status
    values: Mapping[str, object] = field(default_factory=dict)
    timeline: tuple[RefundTimelineEntry, ...] = ()
    events: tuple[RefundShopEvent, ...] = ()
    event_seq: int = 0  # the checkout's event_seq once written
    review_reason: str | None = None  # the checkout's flag once written
    detail: str | None = None

    @property
    def changes_anything(self) -> bool:
        return bool(self.new or self.values or self.timeline or self.events)


REVIEW_LIMIT = 200
# Statuses whose arrival the shop hears of: created, money out, nothing out (or back).
_ENDING_EVENT = {
    RefundStatus.SENT: "refund.sent",
    RefundStatus.FAILED: "refund.failed",
    RefundStatus.REJECTED: "refund.failed",
    RefundStatus.CANCELLED: "refund.failed",
    RefundStatus.RETURNED: "refund.failed",
}


def _add_reason(existing: str | None, reason: str) -> str:
    if not existing:
        return reason[:REVIEW_LIMIT]
    if reason in existing:
        return existing
    return f"{reason}; {existing}"[:REVIEW_LIMIT]


def _move(
    checkout: CheckoutMoney,
    refund: RefundState,
    target: RefundStatus,
    source: str,
    detail: str | None,
    values: Mapping[str, object] | None = None,
) -> RefundPlan:
    """One status change through the table (a repeat is a plan that writes nothing)."""
    if not refund_transition(refund.status, target):
        return _nothing(checkout, refund, detail="no change")
    seq = checkout.event_seq
    events: tuple[RefundShopEvent, ...] = ()
    if target in _ENDING_EVENT:
        seq += 1
        events = (RefundShopEvent(_ENDING_EVENT[target], seq),)
    return RefundPlan(
        refund_id=refund.id,
        public_id=refund.public_id,
        status=target,
        amount=refund.amount,
        expect_status=refund.status,
        values={"status": str(target), **(values or {})},
        timeline=(RefundTimelineEntry(refund.status, target, source, detail),),
        events=events,
        event_seq=seq,
        review_reason=checkout.review_reason,
        detail=detail,
    )


def _nothing(checkout: CheckoutMoney, refund: RefundState, detail: str | None = None) -> RefundPlan:
    return RefundPlan(
        refund_id=refund.id,
        public_id=refund.public_id,
        status=refund.status,
        amount=refund.amount,
        event_seq=checkout.event_seq,
        review_reason=checkout.review_reason,
        detail=detail,
    )


def request_refund(
    checkout: CheckoutMoney,
    refunds: Iterable[RefundLike],
    new: NewRefund,
    policy: ApprovalPolicy,
) -> RefundPlan:
    """A new refund: at most what is refundable (decided under the checkout's lock),
    `approved` at once unless the policy wants a second operator (then `requested`)."""
    if not new.reason.strip():
        raise RefundError("reason_required", "a refund needs a reason")
    check_refund_amount(new.amount, Money(checkout.amount_paid, checkout.currency), refunds)
    status = (
        RefundStatus.REQUESTED
        if policy.needs_second_approval(new.amount, new.source)
        else RefundStatus.APPROVED
    )
    seq = checkout.event_seq + 1
    return RefundPlan(
        refund_id=None,
        public_id=new.public_id,
        status=status,
        amount=new.amount,
        new=new,
        timeline=(RefundTimelineEntry(None, status, "operator", f"by {new.requested_by}"),),
        events=(RefundShopEvent("refund.created", seq),),
        event_seq=seq,
        review_reason=checkout.review_reason,
    )


def approve_refund(checkout: CheckoutMoney, refund: RefundState, approver: str) -> RefundPlan:
    """A second operator (not whoever asked) approves a requested refund."""
    if not awaits_approval(refund.status):
        raise RefundError("not_requested", f"the refund is {refund.status}")
    check_approver(refund.requested_by, approver)
    return _move(
        checkout,
        refund,
        RefundStatus.APPROVED,
        "operator",
        f"approved by {approver}",
        {"approved_by": approver.strip()[:64]},
    )


def reject_refund(checkout: CheckoutMoney, refund: RefundState, by: str) -> RefundPlan:
    if not awaits_approval(refund.status):
        raise RefundError("not_requested", f"the refund is {refund.status}")
    return _move(checkout, refund, RefundStatus.REJECTED, "operator", f"rejected by {by}")


def cancel_refund(checkout: CheckoutMoney, refund: RefundState, by: str) -> RefundPlan:
    if not refund_cancellable(refund.status):
        raise RefundError("not_cancellable", f"a {refund.status} refund cannot be cancelled")
    return _move(checkout, refund, RefundStatus.CANCELLED, "operator", f"cancelled by {by}")


def claim_for_sending(
    checkout: CheckoutMoney, refund: RefundState, payout_no: str, now: datetime
) -> RefundPlan:
    """approved -> sending, written (and committed) before the payout call. The payout
    number is assigned once: a refund that already has one keeps it."""
    if refund.status != RefundStatus.APPROVED:
        raise RefundError("not_approved", f"the refund is {refund.status}")
    if not refund.has_destination:
        raise RefundError("no_destination", "the refund has no destination account yet")
    number = refund.payout_no or payout_no
    values: dict[str, object] = {"payout_no": number, "hold_reason": None}
    if refund.sending_at is None:
        values["sending_at"] = now
    return _move(checkout, refund, RefundStatus.SENDING, "create", f"payout {number}", values)


def balance_short(
    checkout: CheckoutMoney, refund: RefundState, message: str, now: datetime
) -> RefundPlan:
    """The balance inquiry (after the claim, before any payout call) says the merchant
    cannot pay this out: failed, nothing sent; its amount is refundable again."""
    if refund.status != RefundStatus.SENDING:
        raise RefundError("not_sending", f"the refund is {refund.status}")
    return _move(
        checkout,
        refund,
        RefundStatus.FAILED,
        "create",
        message[:500],
        {
            "failure_code": "insufficient_balance",
            "failure_message": message[:500],
            "completed_at": now,
        },
    )


def _values_only(
    checkout: CheckoutMoney, refund: RefundState, values: Mapping[str, object], detail: str
) -> RefundPlan:
    return replace(_nothing(checkout, refund, detail), values=dict(values))


def hold(checkout: CheckoutMoney, refund: RefundState, reason: str) -> RefundPlan:
    """An approved refund that must wait (the store's daily cap): no status change."""
    return _values_only(checkout, refund, {"hold_reason": reason[:200]}, reason)


def reschedule_query(
    checkout: CheckoutMoney, refund: RefundState, next_query_at: datetime, error: str
) -> RefundPlan:
    """A query that got no usable answer: ask again later (no status change)."""
    return _values_only(
        checkout,
        refund,
        {
            "next_query_at": next_query_at,
            "query_count": refund.query_count + 1,
            "failure_message": error[:500],
        },
        error,
    )


def payout_timed_out(
    checkout: CheckoutMoney, refund: RefundState, detail: str, next_query_at: datetime
) -> RefundPlan:
    """The payout call's outcome is unknown: query it under the same number, never resend.
    A notify or query that settled it meanwhile wins (nothing to write)."""
    if refund.status != RefundStatus.SENDING:
        return _nothing(checkout, refund, "settled meanwhile")
    return _move(
        checkout,
        refund,
        RefundStatus.UNKNOWN,
        "create",
        detail[:500],
        {"next_query_at": next_query_at, "failure_message": detail[:500]},
    )


def payout_refused(
    checkout: CheckoutMoney, refund: RefundState, code: str, message: str, now: datetime
) -> RefundPlan:
    """The provider refused the payout for a known reason: nothing was sent."""
    if refund.status != RefundStatus.SENDING:
        return _nothing(checkout, refund, "settled meanwhile")
    return _move(
        checkout,
        refund,
        RefundStatus.FAILED,
        "create",
        f"{code}: {message}"[:500],
        {"failure_code": code[:64], "failure_message": message[:500], "completed_at": now},
    )


def payout_reported(
    checkout: CheckoutMoney,
    refund: RefundState,
    payout_status: str,
    source: str,
    now: datetime,
    *,
    platform_payout_no: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
    next_query_at: datetime | None = None,
) -> RefundPlan:
    """A create answer, a query answer or a notify: the provider's status for the payout.

    A final refund the provider contradicts (a success after we recorded a failure) moves
    nothing: the checkout is flagged for review (money may have gone out)."""
    target = status_from_payout(payout_status)
    values: dict[str, object] = {}
    if platform_payout_no:
        values["platform_payout_no"] = platform_payout_no[:64]
    if target in (RefundStatus.FAILED, RefundStatus.RETURNED):
        values["failure_code"] = (failure_code or str(payout_status))[:64]
        values["failure_message"] = (failure_message or "")[:500]
    if target in REFUND_FINAL or target in REFUND_DONE:
        values["completed_at"] = now
        values["next_query_at"] = None
    elif next_query_at is not None:
        values["next_query_at"] = next_query_at
    if target == refund.status:
        return _nothing(checkout, refund, "duplicate")
    if target == RefundStatus.PROCESSING and refund.status not in (
        RefundStatus.SENDING,
        RefundStatus.UNKNOWN,
    ):
        # "Still on its way" arriving after the outcome (a create answer after its notify).
        return _nothing(checkout, refund, "stale")
    try:
        refund_transition(refund.status, target)
    except RefundTransitionError:
        reason = (
            f"refund {refund.public_id}: provider reported {payout_status} after {refund.status}"
        )
        review = _add_reason(checkout.review_reason, reason)
        seq = checkout.event_seq
        events: tuple[RefundShopEvent, ...] = ()
        if review != checkout.review_reason:
            seq += 1
            events = (RefundShopEvent("checkout.review_required", seq),)
        return RefundPlan(
            refund_id=refund.id,
            public_id=refund.public_id,
            status=refund.status,
            amount=refund.amount,
            events=events,
            event_seq=seq,
            review_reason=review,
            detail=reason,
        )
    return _move(checkout, refund, target, source, failure_message or str(payout_status), values)


def payout_not_found(
    checkout: CheckoutMoney,
    refund: RefundState,
    now: datetime,
    settle_window: timedelta,
    next_query_at: datetime,
) -> RefundPlan:
    """The provider has no payout under our number. Proof that nothing went out only once
    the settle window after the first send has passed; before that, ask again later."""
    if refund.status not in (RefundStatus.UNKNOWN, RefundStatus.SENDING):
        return _nothing(checkout, refund, "not found")
    started = refund.sending_at
    if started is not None and now - started >= settle_window:
        return RefundPlan(
            refund_id=refund.id,
            public_id=refund.public_id,
            status=RefundStatus.FAILED,
            amount=refund.amount,
            expect_status=refund.status,
            values={
                "status": str(RefundStatus.FAILED),
                "failure_code": "not_found",
                "failure_message": "the provider has no such payout",
                "completed_at": now,
                "next_query_at": None,
            },
            timeline=(
                RefundTimelineEntry(
                    refund.status, RefundStatus.FAILED, "query", "not found at the provider"
                ),
            )
            if refund.status == RefundStatus.UNKNOWN
            else (
                RefundTimelineEntry(refund.status, RefundStatus.UNKNOWN, "query", "not found"),
                RefundTimelineEntry(
                    RefundStatus.UNKNOWN, RefundStatus.FAILED, "query", "not found at the provider"
                ),
            ),
            events=(RefundShopEvent("refund.failed", checkout.event_seq + 1),),
            event_seq=checkout.event_seq + 1,
            review_reason=checkout.review_reason,
            detail="not found at the provider",
        )
    return reschedule_query(checkout, refund, next_query_at, "not found yet")


def stale_sending(
    checkout: CheckoutMoney, refund: RefundState, now: datetime, next_query_at: datetime
) -> RefundPlan:
    """A refund left `sending` by a worker that died during (or after) the payout call:
    unknown, and queried under its payout number."""
    return payout_timed_out(
        checkout, refund, "the sending worker stopped before recording the answer", next_query_at
    )


def give_destination(
    checkout: CheckoutMoney, refund: RefundState, token: str, masked: str, by: str
) -> RefundPlan:
    """The shopper (on the refund-account page) gives the account for a refund that has
    none. Once given it is fixed: a replayed link cannot redirect the money."""
    if refund.has_destination:
        raise RefundError("destination_given", "this refund already has an account")
    if refund.status not in REFUND_OPEN:
        raise RefundError("not_open", f"the refund is {refund.status}")
    return replace(
        _nothing(checkout, refund, "account given"),
        values={"destination_token": token, "destination_masked": masked[:64]},
        timeline=(
            RefundTimelineEntry(
                refund.status, refund.status, "shopper", f"account {masked} by {by}"
            ),
        ),
    )


def notify_verdict(plan: RefundPlan) -> Verdict:
    """What a payout notify's plan (`payout_reported`) makes of it, in the one verdict table
    of every notify: the refund moved (accepted), the checkout was flagged because the
    provider contradicts a final refund (conflict), or nothing new (duplicate)."""
    if plan.values:
        return Verdict.ACCEPTED
    if plan.events:
        return Verdict.CONFLICT
    return Verdict.DUPLICATE
