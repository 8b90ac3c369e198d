"""The refund state machine and its money rules (checkout/domain/refunds.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from checkout.domain.errors import RefundError, RefundTransitionError
from checkout.domain.money import Money
from checkout.domain.refunds import (
    REFUND_FINAL,
    ApprovalPolicy,
    CapRefund,
    RefundSource,
    RefundStatus,
    awaits_destination,
    check_approver,
    check_daily_cap,
    check_refund_amount,
    counts_toward_cap,
    excess_to_return,
    refund_transition,
    refundable,
    status_from_payout,
    store_day,
    store_day_bounds,
)
from checkout.domain.states import CheckoutStatus
from checkout.providers.payouts import PayoutStatus

S = RefundStatus
ALLOWED = {
    (S.REQUESTED, S.APPROVED),
    (S.REQUESTED, S.REJECTED),
    (S.REQUESTED, S.CANCELLED),
    (S.APPROVED, S.SENDING),
    (S.APPROVED, S.CANCELLED),
    (S.SENDING, S.PROCESSING),
    (S.SENDING, S.SENT),
    (S.SENDING, S.FAILED),
    (S.SENDING, S.UNKNOWN),
    (S.SENDING, S.RETURNED),  # the success was never heard
    (S.UNKNOWN, S.RETURNED),
    (S.PROCESSING, S.RETURNED),
    (S.UNKNOWN, S.PROCESSING),
    (S.UNKNOWN, S.SENT),
    (S.UNKNOWN, S.FAILED),
    (S.PROCESSING, S.SENT),
    (S.PROCESSING, S.FAILED),
    (S.SENT, S.RETURNED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("new", list(S))
def test_transition_table(current: RefundStatus, new: RefundStatus) -> None:
    if current == new:
        assert refund_transition(current, new) is False
    elif (current, new) in ALLOWED:
        assert refund_transition(current, new) is True
    else:
        with pytest.raises(RefundTransitionError):
            refund_transition(current, new)


def test_final_states_never_move_and_unknown_is_never_resent() -> None:
    for final in REFUND_FINAL:
        for new in S:
            if new != final:
                with pytest.raises(RefundTransitionError):
                    refund_transition(final, new)
    # An unknown outcome cannot go back to sending (which would send a second payout).
    with pytest.raises(RefundTransitionError):
        refund_transition(S.UNKNOWN, S.SENDING)
    with pytest.raises(RefundTransitionError):
        refund_transition(S.PROCESSING, S.SENDING)


def test_every_payout_status_maps() -> None:
    assert {status_from_payout(p.value) for p in PayoutStatus} == {
        S.PROCESSING,
        S.SENT,
        S.FAILED,
        S.RETURNED,
    }
    with pytest.raises(RefundError):
        status_from_payout("paid")


@dataclass(frozen=True)
class R:
    status: RefundStatus
    amount: Money


def krw(n: int) -> Money:
    return Money(n, "KRW")


@pytest.mark.parametrize(
    ("refunds", "left"),
    [
        ([], 10000),
        ([R(S.SENT, krw(3000))], 7000),
        ([R(S.SENT, krw(3000)), R(S.PROCESSING, krw(2000))], 5000),
        ([R(S.REQUESTED, krw(1000)), R(S.APPROVED, krw(1000)), R(S.SENDING, krw(1000))], 7000),
        ([R(S.UNKNOWN, krw(4000))], 6000),  # an unknown payout may have gone out
        ([R(S.FAILED, krw(4000)), R(S.REJECTED, krw(1)), R(S.CANCELLED, krw(1))], 10000),
        ([R(S.RETURNED, krw(4000))], 10000),  # the money came back
        ([R(S.SENT, krw(10000))], 0),
        ([R(S.SENT, krw(12000))], 0),  # never below zero
    ],
)
def test_refundable_is_paid_minus_refunded_minus_under_way(refunds: list[R], left: int) -> None:
    assert refundable(krw(10000), refunds) == krw(left)


def test_refund_amount_rules() -> None:
    refunds = [R(S.SENT, krw(3000))]
    assert check_refund_amount(krw(2000), krw(10000), refunds) == krw(5000)  # partial
    assert check_refund_amount(krw(7000), krw(10000), refunds) == krw(0)  # the rest
    for amount, code in [
        (krw(7001), "exceeds_refundable"),
        (krw(0), "amount_not_positive"),
        (krw(-1), "amount_not_positive"),
        (Money(100, "MXN"), "currency_mismatch"),
    ]:
        with pytest.raises(RefundError) as info:
            check_refund_amount(amount, krw(10000), refunds)
        assert info.value.code == code
    with pytest.raises(RefundError) as mixed:
        refundable(krw(10000), [R(S.SENT, Money(100, "MXN"))])
    assert mixed.value.code == "currency_mismatch"


def test_approval_policy() -> None:
    policy = ApprovalPolicy({"KRW": 100_000})
    assert policy.needs_second_approval(krw(1000), RefundSource.CONSOLE)  # every console refund
    assert not policy.needs_second_approval(krw(100_000), RefundSource.API)
    assert policy.needs_second_approval(krw(100_001), RefundSource.API)
    assert policy.needs_second_approval(Money(100, "MXN"), RefundSource.API)  # no threshold
    check_approver("alice", "bob")
    check_approver(None, "bob")
    for requester, approver, code in [
        ("alice", "alice", "same_operator"),
        ("alice", " alice ", "same_operator"),
        ("alice", "", "approver_required"),
    ]:
        with pytest.raises(RefundError) as info:
            check_approver(requester, approver)
        assert info.value.code == code


NOON = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 12:00 in Seoul


def sent(status: RefundStatus, amount: Money, *, livemode: bool = True, at=NOON) -> CapRefund:  # type: ignore[no-untyped-def]
    """A refund as store/ledger.load_cap_day reads it: first sent at `at`."""
    return CapRefund(status, amount, livemode, at)


def test_daily_cap() -> None:
    today = [
        sent(S.SENT, krw(40_000)),
        sent(S.PROCESSING, krw(30_000)),
        sent(S.FAILED, krw(90_000)),
        sent(S.RETURNED, krw(90_000)),
    ]
    check_daily_cap(krw(30_000), True, today, krw(100_000), NOON, SEOUL)  # exactly at the cap
    with pytest.raises(RefundError) as info:
        check_daily_cap(krw(30_001), True, today, krw(100_000), NOON, SEOUL)
    assert info.value.code == "daily_cap"
    check_daily_cap(krw(10**9), True, today, None, NOON, SEOUL)  # no cap
    with pytest.raises(RefundError):
        check_daily_cap(krw(1), True, today, Money(100, "MXN"), NOON, SEOUL)


SEOUL = "Asia/Seoul"


@pytest.mark.parametrize(
    ("other", "counts"),
    [
        (sent(S.SENT, krw(10_000)), True),
        (sent(S.SENDING, krw(10_000)), True),
        (sent(S.UNKNOWN, krw(10_000)), True),  # the money may be out
        (sent(S.SENT, krw(10_000), livemode=False), False),  # a test refund: not the live cap
        (sent(S.SENT, Money(10_000, "MXN")), False),  # another currency's cap
        (sent(S.SENT, krw(10_000), at=datetime(2026, 11, 30, 14, 59, tzinfo=UTC)), False),
        (sent(S.SENT, krw(10_000), at=datetime(2026, 11, 30, 15, 0, tzinfo=UTC)), True),
        (sent(S.SENT, krw(10_000), at=datetime(2026, 12, 1, 14, 59, tzinfo=UTC)), True),
        (sent(S.APPROVED, krw(10_000), at=None), False),  # not claimed: held by the cap too
        (sent(S.FAILED, krw(10_000)), False),
    ],
)
def test_the_cap_counts_this_store_days_money_out_in_this_mode_and_currency(
    other: CapRefund, counts: bool
) -> None:
    """15,000 a day, 10,000 to send now: room only if `other` does not count."""
    cap = krw(15_000)
    assert counts_toward_cap(other, True, "KRW", store_day(NOON, SEOUL), SEOUL) is counts
    if counts:
        with pytest.raises(RefundError):
            check_daily_cap(krw(10_000), True, [other], cap, NOON, SEOUL)
    else:
        check_daily_cap(krw(10_000), True, [other], cap, NOON, SEOUL)


def test_the_test_mode_cap_is_its_own() -> None:
    live_day = [sent(S.SENT, krw(15_000))]
    check_daily_cap(krw(15_000), False, live_day, krw(15_000), NOON, SEOUL)
    with pytest.raises(RefundError):
        check_daily_cap(krw(1), True, live_day, krw(15_000), NOON, SEOUL)


def test_store_day_bounds_are_the_stores_midnights() -> None:
    start, end = store_day_bounds(NOON, SEOUL)
    assert (start, end) == (
        datetime(2026, 11, 30, 15, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
    )
    # A day the clocks change (Mexico City had DST until 2022): 23 hours long.
    start, end = store_day_bounds(datetime(2022, 4, 3, 18, 0, tzinfo=UTC), "America/Mexico_City")
    assert end - start == timedelta(hours=23)


def test_store_day_is_the_stores_calendar_day() -> None:
    late_utc = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 00:30 on 2 Dec in Seoul
    assert store_day(late_utc, "Asia/Seoul").isoformat() == "2026-12-02"
    assert store_day(late_utc, "America/Mexico_City").isoformat() == "2026-12-01"
    with pytest.raises(ValueError):
        store_day(datetime(2026, 12, 1), "Asia/Seoul")


# ---------------------------------------------------------------- the excess to return
C = CheckoutStatus


@pytest.mark.parametrize(
    ("status", "due", "paid", "refunds", "excess"),
    [
        (C.PAID, 10_000, 10_000, [], 0),  # paid as due: nothing extra
        (C.PAID, 10_000, 13_000, [], 3_000),  # overpaid
        (C.PARTIALLY_PAID, 10_000, 4_000, [], 0),  # less than due: never negative
        (C.EXPIRED, 10_000, 10_000, [], 0),  # paid late, all of it due
        (C.CANCELLED, 10_000, 10_000, [], 10_000),  # after a cancel nothing is due
        (C.CANCELLED, 10_000, 0, [], 0),
        (C.PAID, 10_000, 20_000, [R(S.SENT, krw(15_000))], 5_000),  # at most what is left
        (C.CANCELLED, 10_000, 10_000, [R(S.APPROVED, krw(10_000))], 0),
        (C.PAID, 10_000, 20_000, [R(S.FAILED, krw(10_000))], 10_000),  # a failed one gives back
    ],
)
def test_the_excess_to_return(
    status: CheckoutStatus, due: int, paid: int, refunds: list[R], excess: int
) -> None:
    assert excess_to_return(status, krw(due), krw(paid), refunds) == krw(excess)


def test_the_excess_is_compared_by_the_enum_not_the_text() -> None:
    """The status read from the database is text: the service gives the enum (issue 22)."""
    assert excess_to_return(C("cancelled"), krw(10_000), krw(10_000), []) == krw(10_000)
    with pytest.raises(ValueError):
        C("Cancelled")
    with pytest.raises(RefundError):
        excess_to_return(C.PAID, krw(1), Money(1, "MXN"), [])


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("has_destination", [True, False])
def test_which_refunds_await_an_account(status: RefundStatus, has_destination: bool) -> None:
    expected = not has_destination and status in (S.REQUESTED, S.APPROVED)
    assert awaits_destination(status, has_destination) is expected


# ---------------------------------------------------------------- what an operator may do
@pytest.mark.parametrize("status", list(RefundStatus))
def test_the_console_offers_exactly_what_the_rules_accept(status: RefundStatus) -> None:
    """The console's Approve, Reject and Cancel buttons come from the same predicates the
    rules check (never from a template's own list of statuses)."""
    from checkout.domain.refunds import awaits_approval, refund_cancellable

    assert awaits_approval(status) == (status == RefundStatus.REQUESTED)
    assert refund_cancellable(status) == (status in {RefundStatus.REQUESTED, RefundStatus.APPROVED})
