"""The one rule: what each thing that happens does to a checkout, its attempts and its money.

Every change of status, money or review flag in the app is decided here, purely: a use case
takes a `CheckoutState` (the checkout, all its attempts and the money received, read under
the checkout's row lock) and returns a `Plan` (status changes, each allowed by the one
transition table in `states.py`, money rows, flags, timeline entries and the shop's events).
`store/ledger.py` is the one writer that persists a Plan. Nothing here imports Flask, the
ORM or a provider.

Money received is rows (`Receipt`): one per provider transfer id where the provider reports
transfers (TeemoPay sends one callback per transfer), or one running-total row where it reports
the order's total (PayPro, Diamond Pay). An attempt's `amount_paid` is the sum of its rows, the
checkout's the sum of all of them. A transfer already recorded with the same amount is a
duplicate; a different amount is never a duplicate. A running total lower than the one
applied is stale (an older message: `older_running_total`).

Every Plan that changes the checkout's status, `amount_paid` or review flag carries exactly one
shop event, numbered by the checkout's `event_seq`: `checkout.<status>` when the status moved,
else `checkout.payment_received` (money moved), else `checkout.review_required` (a flag was
raised) or `checkout.review_resolved` (flags cleared).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from checkout.domain.errors import LedgerRefusal
from checkout.domain.money import Money
from checkout.domain.states import (
    ATTEMPT_FINAL,
    ATTEMPT_LIVE,
    CHECKOUT_FINAL,
    AttemptStatus,
    CheckoutStatus,
    EventSource,
    attempt_transition,
    checkout_transition,
)

TOTAL_KEY = "total"  # the receipt key of a provider that reports the order's running total
PAID_STATUSES = frozenset({AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID})

PAID_LATE = "paid late"  # money after an expiry
PAID_AFTER_FAILED = "paid after failed"  # money the provider reports for a failed attempt
DUPLICATE_PAYMENT = "duplicate payment"  # a second attempt paid a checkout already paid
_LATE_MONEY = {AttemptStatus.EXPIRED: PAID_LATE, AttemptStatus.FAILED: PAID_AFTER_FAILED}
REVIEW_LIMIT = 200  # characters of a review reason (the columns' size)


class Verdict(StrEnum):
    """What became of a provider's word (a notify or a query answer); stored on every notify."""

    RECEIVED = "received"  # stored, not yet processed
    ACCEPTED = "accepted"  # applied: something moved
    NO_CHANGE = "no_change"  # still pending, nothing to do
    DUPLICATE = "duplicate"  # already known (the same status, the same transfer)
    STALE = "stale"  # older than what was applied (a lower running total): nothing to do
    CONFLICT = "conflict"  # contradicts what we know: flagged for review, nothing moved
    AMOUNT_MISMATCH = "amount_mismatch"  # currency or amount unusable: flagged for review
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    UNKNOWN_TRADE = "unknown_trade"


class MoneyReporting(StrEnum):
    """How a provider reports money received for an order (each provider declares one)."""

    TRANSFERS = "transfers"  # one message per transfer, with the transfer's own id and amount
    TOTAL = "total"  # the order's running total


# ---------------------------------------------------------------- the provider's word
@dataclass(frozen=True)
class Transfer:
    """One transfer into an order, as the provider identifies it."""

    transfer_id: str
    amount: Money


@dataclass(frozen=True)
class PaymentUpdate:
    """A provider's word on an attempt, from a notify or a query.

    `amount_paid` is what the provider says was received for the order (for a transfer
    provider: this transfer's amount); `transfers` lists the transfers it names, when it
    names them (a TeemoPay callback names one, its query lists them all).
    """

    trade_no: str
    status: AttemptStatus
    provider_status: str
    amount_paid: Money | None  # what was actually paid, when the provider says
    platform_trade_no: str | None = None
    failure_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    transfers: tuple[Transfer, ...] = ()


@dataclass(frozen=True)
class CreateAnswer:
    """The provider's answer to a create call, as the rule needs it."""

    status: AttemptStatus  # PENDING, or FAILED when the provider refused
    platform_trade_no: str | None = None
    provider_status: str | None = None
    redirect_url: str | None = None
    instructions: Mapping[str, Any] | None = None  # stored as given (JSON)
    expires_at: datetime | None = None  # the provider's deadline for this payment
    failure_code: str | None = None
    failure_message: str | None = None


# ---------------------------------------------------------------- the snapshot
@dataclass(frozen=True)
class Receipt:
    """Money received for one attempt under one key (a transfer id, or TOTAL_KEY)."""

    attempt_id: int
    transfer_key: str
    amount: int


@dataclass(frozen=True)
class AttemptState:
    id: int
    trade_no: str
    provider: str
    status: AttemptStatus
    amount: int
    currency: str
    amount_paid: int
    review_reason: str | None
    platform_trade_no: str | None
    created_at: datetime
    deadline_at: datetime | None = None
    method: str = ""
    abandoned: bool = False  # the shopper chose another way: it no longer holds the checkout


@dataclass(frozen=True)
class CheckoutState:
    """A checkout as read under its row lock: everything a rule may look at."""

    id: str
    store_id: str
    order_id: str
    status: CheckoutStatus
    amount: int
    currency: str
    amount_paid: int
    review_reason: str | None
    event_seq: int
    expires_at: datetime
    attempts: tuple[AttemptState, ...] = ()
    receipts: tuple[Receipt, ...] = ()
    livemode: bool = True  # False: a test-mode checkout (the shop's events say so)

    def attempt(self, attempt_id: int) -> AttemptState:
        for attempt in self.attempts:
            if attempt.id == attempt_id:
                return attempt
        raise KeyError(attempt_id)

    def live_attempts(self) -> tuple[AttemptState, ...]:
        """The live attempts that hold the checkout (not abandoned)."""
        return tuple(a for a in self.attempts if a.status in ATTEMPT_LIVE and not a.abandoned)


# ---------------------------------------------------------------- the plan
@dataclass(frozen=True)
class NewAttempt:
    """An attempt to insert (a claim); its id is known only once written."""

    trade_no: str
    provider: str
    method: str
    amount: int
    currency: str
    payer: Mapping[str, Any]  # payer_name, payer_email, payer_mobile, payer_ip
    deadline_at: datetime | None
    note: str | None = None  # the timeline's note on it (its route, what was passed over)


NEW_ATTEMPT = 0  # the attempt id that stands for the Plan's NewAttempt until it is written


@dataclass(frozen=True)
class AttemptWrite:
    attempt_id: int
    values: Mapping[str, Any]  # columns to set (status among them when it moves)


@dataclass(frozen=True)
class CheckoutWrite:
    values: Mapping[str, Any]  # status, amount_paid, review_reason, event_seq


@dataclass(frozen=True)
class ReceiptWrite:
    attempt_id: int
    transfer_key: str
    amount: int  # the row's amount after the write
    new: bool  # insert (True) or raise an existing total (False)
    source: EventSource


@dataclass(frozen=True)
class TimelineEntry:
    attempt_id: int | None  # None: the checkout's own status
    from_status: str | None  # None: the attempt was created
    to_status: str
    source: EventSource
    detail: str | None = None

    @property
    def kind(self) -> str:
        return "checkout" if self.attempt_id is None else "attempt"


@dataclass(frozen=True)
class ShopEvent:
    type: str
    seq: int
    data: Mapping[str, Any] = field(default_factory=dict)  # extra fields beyond the checkout


@dataclass(frozen=True)
class CheckoutAfter:
    """The checkout's shop-visible fields once the Plan is written (the events' payload)."""

    status: CheckoutStatus
    amount_paid: int
    review_reason: str | None
    event_seq: int


@dataclass(frozen=True)
class Plan:
    verdict: Verdict
    after: CheckoutAfter
    new_attempt: NewAttempt | None = None
    attempts: tuple[AttemptWrite, ...] = ()
    checkout: CheckoutWrite | None = None
    receipts: tuple[ReceiptWrite, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    events: tuple[ShopEvent, ...] = ()
    detail: str | None = None  # what happened, for the notify inbox or an operator

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.new_attempt or self.attempts or self.checkout or self.receipts or self.timeline
        )


def add_reason(existing: str | None, reason: str) -> str:
    """Add a review reason without losing one already there."""
    if not existing:
        return reason[:REVIEW_LIMIT]
    if reason in existing:
        return existing
    return f"{reason}; {existing}"[:REVIEW_LIMIT]


class _Draft:
    """A Plan in the making: a working copy of what the rule has decided so far."""

    def __init__(self, state: CheckoutState) -> None:
        self.state = state
        self.status = state.status
        self.amount_paid = state.amount_paid
        self.review = state.review_reason
        self.attempts: dict[int, AttemptState] = {a.id: a for a in state.attempts}
        self.attempt_values: dict[int, dict[str, Any]] = {}
        self.receipts: list[ReceiptWrite] = []
        self.timeline: list[TimelineEntry] = []
        self.extra_events: list[tuple[str, Mapping[str, Any]]] = []
        self.new_attempt: NewAttempt | None = None

    # attempts
    def set(self, attempt_id: int, **values: Any) -> None:
        self.attempt_values.setdefault(attempt_id, {}).update(values)
        attempt = self.attempts.get(attempt_id)
        if attempt is not None:
            known = {k: v for k, v in values.items() if k in AttemptState.__dataclass_fields__}
            if "abandoned_at" in values:
                known["abandoned"] = values["abandoned_at"] is not None
            self.attempts[attempt_id] = replace(attempt, **known)

    def move_attempt(
        self, attempt_id: int, target: AttemptStatus, source: EventSource, detail: str | None
    ) -> bool:
        attempt = self.attempts[attempt_id]
        if not attempt_transition(attempt.status, target):
            return False
        self.timeline.append(TimelineEntry(attempt_id, attempt.status, target, source, detail))
        self.set(attempt_id, status=target)
        return True

    def flag_attempt(self, attempt_id: int, reason: str) -> None:
        """Flag an attempt, and its checkout with it ("attempt <trade_no>: <reason>")."""
        attempt = self.attempts[attempt_id]
        self.set(attempt_id, review_reason=add_reason(attempt.review_reason, reason))
        self.flag(f"attempt {attempt.trade_no}: {reason}")

    # the checkout
    def move(self, target: CheckoutStatus, source: EventSource, detail: str | None = None) -> bool:
        if not checkout_transition(self.status, target):
            return False
        self.timeline.append(TimelineEntry(None, self.status, target, source, detail))
        self.status = target
        return True

    def flag(self, reason: str) -> None:
        self.review = add_reason(self.review, reason)

    def reopen_if_idle(self, source: EventSource, now: datetime) -> None:
        """No attempt live any more and nothing paid: the shopper may try again (or the
        checkout expires, past its deadline)."""
        if self.status != CheckoutStatus.PENDING:
            return
        if any(a.status in ATTEMPT_LIVE and not a.abandoned for a in self.attempts.values()):
            return
        if now >= self.state.expires_at:
            self.move(CheckoutStatus.EXPIRED, EventSource.EXPIRY)
        else:
            self.move(CheckoutStatus.OPEN, source)

    def plan(self, verdict: Verdict, detail: str | None = None) -> Plan:
        state = self.state
        seq = state.event_seq
        events: list[ShopEvent] = []
        event_type = None
        if self.status != state.status:
            event_type = f"checkout.{self.status}"
        elif self.amount_paid != state.amount_paid:
            event_type = "checkout.payment_received"
        elif self.review != state.review_reason:
            event_type = "checkout.review_required" if self.review else "checkout.review_resolved"
        if event_type is not None:
            seq += 1
            events.append(ShopEvent(event_type, seq))
        for extra_type, data in self.extra_events:
            seq += 1
            events.append(ShopEvent(extra_type, seq, data))
        checkout_values: dict[str, Any] = {}
        if self.status != state.status:
            checkout_values["status"] = self.status
        if self.amount_paid != state.amount_paid:
            checkout_values["amount_paid"] = self.amount_paid
        if self.review != state.review_reason:
            checkout_values["review_reason"] = self.review
        if seq != state.event_seq:
            checkout_values["event_seq"] = seq
        return Plan(
            verdict=verdict,
            after=CheckoutAfter(self.status, self.amount_paid, self.review, seq),
            new_attempt=self.new_attempt,
            attempts=tuple(AttemptWrite(i, v) for i, v in self.attempt_values.items() if v),
            checkout=CheckoutWrite(checkout_values) if checkout_values else None,
            receipts=tuple(self.receipts),
            timeline=tuple(self.timeline),
            events=tuple(events),
            detail=detail,
        )


def _unchanged(state: CheckoutState, verdict: Verdict, detail: str | None = None) -> Plan:
    return _Draft(state).plan(verdict, detail)


# ---------------------------------------------------------------- use cases
def attempt_deadline(provider_deadline: datetime | None, checkout_expires_at: datetime) -> datetime:
    """An attempt's deadline: the provider's for the payment, or the checkout's, whichever
    is first."""
    if provider_deadline is None:
        return checkout_expires_at
    return min(provider_deadline, checkout_expires_at)


class StartVerdict(StrEnum):
    """What a shopper's "pay" does to a checkout (`start_decision`), before any route is
    chosen or provider called."""

    GO = "go"  # claim a new attempt (`claim`)
    RESUME = "resume"  # an attempt already holds it: show that one, send nothing new
    EXPIRED = "expired"  # open past its deadline: the plan expires it; nothing starts
    CLOSED = "closed"  # final: nothing starts
    METHOD_NOT_AVAILABLE = "method_not_available"  # the method is not one it offers
    BUSY = "busy"  # pending with nothing live (another request is claiming it)


@dataclass(frozen=True)
class StartDecision:
    verdict: StartVerdict
    plan: Plan | None = None  # EXPIRED: the checkout's expiry, to write
    attempt_id: int | None = None  # RESUME: the live attempt that holds the checkout
    status: CheckoutStatus | None = None  # CLOSED: the final status it is in


def start_decision(state: CheckoutState, now: datetime, method_offered: bool) -> StartDecision:
    """The start-payment guards, in order, on the checkout read under its lock: an open
    checkout past its deadline expires (even for a method it does not offer); a final one
    takes nothing; a live attempt is resumed (a double submit, the back button, a second
    tab); then the method must be one it offers, and the checkout open."""
    if state.status == CheckoutStatus.OPEN and now >= state.expires_at:
        return StartDecision(StartVerdict.EXPIRED, plan=checkout_deadline_passed(state, now))
    if state.status in CHECKOUT_FINAL:
        return StartDecision(StartVerdict.CLOSED, status=state.status)
    live = state.live_attempts()
    if live:
        return StartDecision(StartVerdict.RESUME, attempt_id=live[-1].id)
    if not method_offered:
        return StartDecision(StartVerdict.METHOD_NOT_AVAILABLE)
    if state.status != CheckoutStatus.OPEN:
        return StartDecision(StartVerdict.BUSY)
    return StartDecision(StartVerdict.GO)


def claim(state: CheckoutState, new: NewAttempt) -> Plan:
    """A shopper starts a payment: OPEN -> PENDING and a new attempt, `creating`.

    Refused (LedgerRefusal) unless the checkout is open: a double submit, the back button or a
    second tab finds it pending and resumes the live attempt instead.
    """
    if state.status != CheckoutStatus.OPEN:
        raise LedgerRefusal("checkout_busy", f"the checkout is {state.status}")
    draft = _Draft(state)
    draft.move(CheckoutStatus.PENDING, EventSource.SHOPPER)
    _add_attempt(draft, new)
    return draft.plan(Verdict.ACCEPTED)


def _add_attempt(draft: _Draft, new: NewAttempt) -> None:
    draft.new_attempt = new
    draft.timeline.append(
        TimelineEntry(
            NEW_ATTEMPT,
            None,
            AttemptStatus.CREATING,
            EventSource.SHOPPER,
            new.note or f"{new.method} via {new.provider}",
        )
    )


def fail_over(
    state: CheckoutState,
    attempt_id: int,
    code: str,
    message: str,
    detail: str,
    new: NewAttempt,
) -> Plan:
    """The provider refused the create in a way that proves nothing was created there: the
    attempt ends failed and the same submit goes on to the next route with a new attempt, the
    checkout pending throughout (the shop hears nothing until the new attempt settles)."""
    draft = _Draft(state)
    if draft.attempts[attempt_id].status != AttemptStatus.CREATING:
        raise LedgerRefusal("attempt_settled", "a notify settled the attempt meanwhile")
    draft.set(attempt_id, failure_code=code[:64], failure_message=message[:500])
    draft.move_attempt(attempt_id, AttemptStatus.FAILED, EventSource.CREATE, detail)
    _add_attempt(draft, new)
    return draft.plan(Verdict.ACCEPTED)


def abandon(state: CheckoutState, attempt_id: int, now: datetime) -> Plan:
    """The shopper chooses another way to pay while this attempt is live (pending): it stops
    holding the checkout (which reopens for the new choice), is still reconciled until final,
    and money it brings later is kept (a second payment is flagged as a duplicate). Refused for
    an attempt whose outcome is unknown (it may be paid already) or that is not live."""
    attempt = state.attempt(attempt_id)
    if attempt.status != AttemptStatus.PENDING or attempt.abandoned:
        raise LedgerRefusal("attempt_not_switchable", f"the attempt is {attempt.status}")
    draft = _Draft(state)
    draft.set(attempt_id, abandoned_at=now)
    draft.timeline.append(
        TimelineEntry(
            attempt_id,
            attempt.status,
            attempt.status,
            EventSource.SHOPPER,
            "abandoned: the shopper chose another way to pay",
        )
    )
    draft.reopen_if_idle(EventSource.SHOPPER, now)
    return draft.plan(Verdict.ACCEPTED)


def create_answered(
    state: CheckoutState,
    attempt_id: int,
    answer: CreateAnswer,
    now: datetime,
    instructions_event: Mapping[str, Any] | None = None,
) -> Plan:
    """The provider answered the create call. A notify may have settled the attempt while we
    waited: then its status stays, and only what the answer adds (links, details) is kept."""
    draft = _Draft(state)
    attempt = draft.attempts[attempt_id]
    values: dict[str, Any] = {
        "platform_trade_no": answer.platform_trade_no or attempt.platform_trade_no,
        "provider_status": answer.provider_status,
        "redirect_url": answer.redirect_url,
        "instructions": dict(answer.instructions) if answer.instructions else None,
        "expires_at": answer.expires_at,
        "deadline_at": attempt_deadline(answer.expires_at, state.expires_at),
    }
    failed = answer.status == AttemptStatus.FAILED
    if failed:
        values["failure_code"] = (answer.failure_code or "declined")[:64]
        values["failure_message"] = (answer.failure_message or "")[:500]
    draft.set(attempt_id, **values)
    if attempt.status == AttemptStatus.CREATING:
        if failed:
            draft.move_attempt(
                attempt_id, AttemptStatus.FAILED, EventSource.CREATE, values["failure_code"]
            )
            draft.reopen_if_idle(EventSource.CREATE, now)
        else:
            draft.move_attempt(attempt_id, AttemptStatus.PENDING, EventSource.CREATE, None)
    if answer.instructions and not failed and attempt.status == AttemptStatus.CREATING:
        # The shop may pass them on to the shopper (KakaoTalk, WhatsApp, e-mail).
        draft.extra_events.append(
            (
                "checkout.payment_instructions_issued",
                instructions_event or {"payment_attempt": {"trade_no": attempt.trade_no}},
            )
        )
    return draft.plan(Verdict.ACCEPTED)


def create_refused(
    state: CheckoutState, attempt_id: int, code: str, message: str, now: datetime
) -> Plan:
    """The provider refused or failed the create call: nothing can be paid on it."""
    draft = _Draft(state)
    draft.set(attempt_id, failure_code=code[:64], failure_message=message[:500])
    if draft.attempts[attempt_id].status == AttemptStatus.CREATING:
        draft.move_attempt(attempt_id, AttemptStatus.FAILED, EventSource.CREATE, code[:64])
        draft.reopen_if_idle(EventSource.CREATE, now)
    return draft.plan(Verdict.ACCEPTED)


def create_unknown(
    state: CheckoutState, attempt_id: int, code: str, message: str, source: EventSource
) -> Plan:
    """The create call's outcome is unknown (it timed out, or the process making it died):
    the payment may exist at the provider, so the attempt stays live until a query or a
    notify says what became of it."""
    draft = _Draft(state)
    if draft.attempts[attempt_id].status == AttemptStatus.CREATING:
        draft.set(attempt_id, failure_code=code[:64], failure_message=message[:500])
        draft.move_attempt(attempt_id, AttemptStatus.UNKNOWN, source, code[:64])
    return draft.plan(Verdict.ACCEPTED)


def provider_reported(
    state: CheckoutState,
    attempt_id: int,
    update: PaymentUpdate,
    reporting: MoneyReporting,
    source: EventSource,
    now: datetime,
) -> Plan:
    """A notify or a query answer: the provider's status and money for one attempt."""
    draft = _Draft(state)
    attempt = draft.attempts[attempt_id]
    if update.platform_trade_no and not attempt.platform_trade_no:
        draft.set(attempt_id, platform_trade_no=update.platform_trade_no[:64])
    if update.status in PAID_STATUSES:
        return _money_reported(draft, attempt_id, update, reporting, source, now)
    current = attempt.status
    if update.status in ATTEMPT_LIVE:
        # Only "the provider has it" is news: an unknown create did arrive.
        if current == AttemptStatus.UNKNOWN and update.status == AttemptStatus.PENDING:
            draft.move_attempt(attempt_id, AttemptStatus.PENDING, source, None)
            draft.set(attempt_id, provider_status=update.provider_status)
            return draft.plan(Verdict.ACCEPTED)
        return draft.plan(Verdict.NO_CHANGE)
    # FAILED or EXPIRED at the provider.
    if current == update.status:
        return draft.plan(Verdict.DUPLICATE)
    if current in ATTEMPT_FINAL:
        reason = f"provider reported {update.status} after {current}"
        draft.flag_attempt(attempt_id, reason)
        return draft.plan(Verdict.CONFLICT, reason)
    draft.move_attempt(attempt_id, update.status, source, None)
    values: dict[str, Any] = {"provider_status": update.provider_status}
    if update.failure_message:
        values["failure_message"] = update.failure_message[:500]
    draft.set(attempt_id, **values)
    draft.reopen_if_idle(source, now)
    return draft.plan(Verdict.ACCEPTED)


def _money_reported(
    draft: _Draft,
    attempt_id: int,
    update: PaymentUpdate,
    reporting: MoneyReporting,
    source: EventSource,
    now: datetime,
) -> Plan:
    attempt = draft.attempts[attempt_id]
    paid = update.amount_paid
    transfers = update.transfers
    unusable = [t.amount for t in transfers if not _usable(t.amount, attempt.currency)]
    if (not transfers and not _usable(paid, attempt.currency)) or unusable:
        reason = f"provider reported {update.status} with unusable amount {paid}"
        draft.flag_attempt(attempt_id, reason)
        return draft.plan(Verdict.AMOUNT_MISMATCH, reason)

    own = {r.transfer_key: r.amount for r in draft.state.receipts if r.attempt_id == attempt_id}
    received = 0  # added by this message
    conflicts: list[str] = []
    if transfers:
        for transfer in transfers:
            key = transfer.transfer_id[:64]
            known = own.get(key)
            if known is None:
                own[key] = transfer.amount.amount
                received += transfer.amount.amount
                draft.receipts.append(
                    ReceiptWrite(attempt_id, key, transfer.amount.amount, True, source)
                )
            elif known != transfer.amount.amount:
                conflicts.append(
                    f"transfer {key} reported as {transfer.amount} after "
                    f"{Money(known, attempt.currency)}"
                )
    else:
        assert paid is not None
        total = sum(own.values())
        if paid.amount > total:
            received = paid.amount - total
            had = own.get(TOTAL_KEY)
            own[TOTAL_KEY] = (had or 0) + received
            draft.receipts.append(
                ReceiptWrite(attempt_id, TOTAL_KEY, own[TOTAL_KEY], had is None, source)
            )
        elif paid.amount < total:
            # A running total never falls: a lower one was sent before the one applied (a
            # retry or a replay arriving late). Old news, not a contradiction: nothing moves,
            # nobody is flagged (`older_running_total`).
            return older_running_total(draft.state, paid, Money(total, attempt.currency))

    for reason in conflicts:
        draft.flag_attempt(attempt_id, reason)
    if received == 0:
        if conflicts:
            return draft.plan(Verdict.CONFLICT, "; ".join(conflicts))
        if attempt.status in PAID_STATUSES:
            return draft.plan(Verdict.DUPLICATE)
        # The provider says paid with no more money than we hold: a contradiction to look at.
        reason = f"provider reported {update.status} with nothing new received"
        draft.flag_attempt(attempt_id, reason)
        return draft.plan(Verdict.CONFLICT, reason)

    attempt_paid = attempt.amount_paid + received
    target = AttemptStatus.PAID if attempt_paid >= attempt.amount else AttemptStatus.PARTIALLY_PAID
    current = attempt.status
    late = _LATE_MONEY.get(current)
    if attempt_paid > attempt.amount:
        draft.flag_attempt(
            attempt_id,
            f"overpaid: {Money(attempt_paid, attempt.currency)} received for "
            f"{Money(attempt.amount, attempt.currency)}",
        )
    values: dict[str, Any] = {
        "amount_paid": attempt_paid,
        "provider_status": update.provider_status,
    }
    if update.failure_message:
        values["failure_message"] = update.failure_message[:500]
    draft.set(attempt_id, **values)
    if current != target:
        draft.move_attempt(attempt_id, target, source, late)
    if late is not None:
        draft.set(
            attempt_id, review_reason=add_reason(draft.attempts[attempt_id].review_reason, late)
        )

    checkout_before = draft.status
    paid_before = draft.amount_paid
    draft.amount_paid += received
    settled = (
        CheckoutStatus.PAID
        if draft.amount_paid >= draft.state.amount
        else CheckoutStatus.PARTIALLY_PAID
    )
    if checkout_before in (CheckoutStatus.PAID, CheckoutStatus.CANCELLED):
        # Money for a checkout already settled: never lost, flagged for the operators (and
        # paid back through a refund).
        other_paid = paid_before > 0 and not any(
            r.attempt_id == attempt_id for r in draft.state.receipts
        )
        if checkout_before == CheckoutStatus.PAID and other_paid:
            draft.flag(f"{DUPLICATE_PAYMENT}: {attempt.trade_no} paid after the checkout was paid")
        else:
            draft.flag(f"payment {attempt.trade_no} arrived while {checkout_before}")
    else:
        if checkout_before == CheckoutStatus.EXPIRED:
            draft.flag(PAID_LATE)
        elif late is not None:
            draft.flag(late)
        detail = PAID_LATE if checkout_before == CheckoutStatus.EXPIRED else late
        if settled != checkout_before:
            draft.move(settled, source, detail)
    return draft.plan(Verdict.ACCEPTED)


def older_running_total(state: CheckoutState, reported: Money, applied: Money) -> Plan:
    """A provider that reports the order's running total (MoneyReporting.TOTAL) said less
    than the total already applied: that message was sent before the one applied. Stored
    and acknowledged (Verdict.STALE), applied to nothing, flagged to nobody.

    Why a lower total is older, not a reversal: the total is the order's money received so
    far (Diamond Pay `real_amount`, "actually paid", the same field its query returns for
    the order; PayPro `amount`, "amount actually paid"), neither provider documents any
    reversal of a deposit, and a total that only grows orders the messages by itself
    [inferred from psp-docs README "Diamond Pay"/"PayPro" and more/diamondpay.md sections
    4, 5 and 11].
    """
    return _unchanged(state, Verdict.STALE, f"provider reported {reported} in all after {applied}")


def _usable(paid: Money | None, currency: str) -> bool:
    return paid is not None and paid.currency == currency and paid.amount > 0


def not_found_at_provider(
    state: CheckoutState, attempt_id: int, settled: bool, now: datetime
) -> Plan:
    """The provider has no such payment. For a create whose outcome was unknown, once the
    settle window has passed (`settled`), that is proof it never started."""
    draft = _Draft(state)
    attempt = draft.attempts[attempt_id]
    if attempt.status == AttemptStatus.UNKNOWN and settled:
        draft.set(
            attempt_id, failure_code="not_found", failure_message="the provider has no such payment"
        )
        draft.move_attempt(
            attempt_id, AttemptStatus.FAILED, EventSource.QUERY, "not found at the provider"
        )
        draft.reopen_if_idle(EventSource.QUERY, now)
        return draft.plan(Verdict.ACCEPTED)
    return draft.plan(Verdict.NO_CHANGE)


def deadline_passed(state: CheckoutState, attempt_id: int, now: datetime, detail: str) -> Plan:
    """A live attempt past its deadline (after one last query): EXPIRED; the checkout
    reopens, or expires past its own deadline."""
    draft = _Draft(state)
    if draft.attempts[attempt_id].status not in ATTEMPT_LIVE:
        return draft.plan(Verdict.NO_CHANGE)
    draft.move_attempt(attempt_id, AttemptStatus.EXPIRED, EventSource.EXPIRY, detail)
    draft.reopen_if_idle(EventSource.EXPIRY, now)
    return draft.plan(Verdict.ACCEPTED)


def checkout_deadline_passed(state: CheckoutState, now: datetime) -> Plan:
    """An open checkout past its own deadline expires."""
    draft = _Draft(state)
    if state.status == CheckoutStatus.OPEN and now >= state.expires_at:
        draft.move(CheckoutStatus.EXPIRED, EventSource.EXPIRY)
        return draft.plan(Verdict.ACCEPTED)
    return draft.plan(Verdict.NO_CHANGE)


def cancellable(status: CheckoutStatus, amount_paid: int, *, allow_pending: bool) -> bool:
    """A checkout with nothing paid, open (the shop may cancel) or also pending (an operator
    may: the live attempt is still reconciled)."""
    allowed = (
        (CheckoutStatus.OPEN, CheckoutStatus.PENDING) if allow_pending else (CheckoutStatus.OPEN,)
    )
    return status in allowed and not amount_paid


def cancel(
    state: CheckoutState,
    by: str,
    *,
    allow_pending: bool,
    source: EventSource = EventSource.OPERATOR,
) -> Plan:
    """Cancel a checkout with nothing paid: open only (the shop), or also pending (an
    operator: the live attempt is still reconciled, and money it brings later is kept and
    flagged). Already cancelled: NO_CHANGE. Anything else: LedgerRefusal."""
    if state.status == CheckoutStatus.CANCELLED:
        return _unchanged(state, Verdict.NO_CHANGE, "already cancelled")
    if not cancellable(state.status, state.amount_paid, allow_pending=allow_pending):
        which = "an open or pending" if allow_pending else "an open"
        paid = f" with {Money(state.amount_paid, state.currency)} paid" if state.amount_paid else ""
        raise LedgerRefusal(
            "checkout_not_cancellable",
            f"Only {which} checkout with nothing paid can be cancelled; this one is "
            f"{state.status}{paid}.",
        )
    draft = _Draft(state)
    draft.move(CheckoutStatus.CANCELLED, source, f"by {by}")
    return draft.plan(Verdict.ACCEPTED)


def flag_for_review(state: CheckoutState, reason: str, by: str) -> Plan:
    """An operator marks the checkout for review."""
    draft = _Draft(state)
    draft.review = f"{reason} ({by})"[:REVIEW_LIMIT]
    return draft.plan(Verdict.ACCEPTED)


def resolve_review(state: CheckoutState) -> Plan:
    """An operator resolves the review: the checkout's flag and its attempts' are cleared."""
    draft = _Draft(state)
    draft.review = None
    for attempt in state.attempts:
        if attempt.review_reason:
            draft.set(attempt.id, review_reason=None)
    return draft.plan(Verdict.ACCEPTED)


def stale_create_age(connect_timeout: float, read_timeout: float) -> timedelta:
    """How long a create call can take at most; a `creating` attempt older than this (plus a
    margin) was left by a process that died during the call."""
    return timedelta(seconds=connect_timeout + read_timeout + 30)
