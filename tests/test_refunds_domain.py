"""The refund state machine and its money rules (checkout/domain/refunds.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from checkout.domain.errors import RefundError, RefundTransitionError
from checkout.domain.money import Money
from checkout.domain.refunds import (
    REFUND_FINAL,
    ApprovalPolicy,
    RefundSource,
    RefundStatus,
    check_approver,
    check_daily_cap,
    check_refund_amount,
    refund_transition,
    refundable,
    status_from_payout,
    store_day,
)
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


def test_daily_cap() -> None:
    today = [
        R(S.SENT, krw(40_000)),
        R(S.PROCESSING, krw(30_000)),
        R(S.FAILED, krw(90_000)),
        R(S.RETURNED, krw(90_000)),
    ]
    check_daily_cap(krw(30_000), today, krw(100_000))  # exactly at the cap
    with pytest.raises(RefundError) as info:
        check_daily_cap(krw(30_001), today, krw(100_000))
    assert info.value.code == "daily_cap"
    check_daily_cap(krw(10**9), today, None)  # no cap
    with pytest.raises(RefundError):
        check_daily_cap(krw(1), today, Money(100, "MXN"))


def test_store_day_is_the_stores_calendar_day() -> None:
    late_utc = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 00:30 on 2 Dec in Seoul
    assert store_day(late_utc, "Asia/Seoul").isoformat() == "2026-12-02"
    assert store_day(late_utc, "America/Mexico_City").isoformat() == "2026-12-01"
    with pytest.raises(ValueError):
        store_day(datetime(2026, 12, 1), "Asia/Seoul")
