"""The refund use cases as pure plans (checkout/domain/refunds.py): table tests, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from checkout.domain.errors import RefundError
from checkout.domain.ledger import Verdict
from checkout.domain.money import Money
from checkout.domain.refunds import (
    ApprovalPolicy,
    CheckoutMoney,
    NewRefund,
    RefundSource,
    RefundState,
    RefundStatus,
    approve_refund,
    balance_short,
    cancel_refund,
    claim_for_sending,
    notify_verdict,
    payout_not_found,
    payout_refused,
    payout_reported,
    payout_timed_out,
    reject_refund,
    request_refund,
)

S = RefundStatus
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = ApprovalPolicy({"KRW": 100_000})
CHECKOUT = CheckoutMoney("co_1", "paid", "KRW", 50_000, 60_000, None, 3)


def new(amount: int, source: RefundSource = RefundSource.API) -> NewRefund:
    return NewRefund(
        "re_1",
        Money(amount, "KRW"),
        "excess",
        source,
        "paypro_kr",
        "api:shop",
        "tok",
        "088 ****6789",
    )


def refund(status: S, amount: int = 10_000, **more) -> RefundState:  # type: ignore[no-untyped-def]
    return RefundState(
        7, "re_7", status, Money(amount, "KRW"), "alice", RefundSource.CONSOLE, True, **more
    )


@pytest.mark.parametrize(
    ("amount", "source", "status"),
    [
        (10_000, RefundSource.API, S.APPROVED),  # under the threshold: no second operator
        (60_000, RefundSource.API, S.APPROVED),
        (10_000, RefundSource.CONSOLE, S.REQUESTED),  # every console refund is approved
    ],
)
def test_a_new_refund_is_told_to_the_shop_with_the_next_seq(
    amount: int, source: RefundSource, status: S
) -> None:
    plan = request_refund(CHECKOUT, [], new(amount, source), POLICY)
    assert plan.status == status
    assert [(e.type, e.seq) for e in plan.events] == [("refund.created", 4)]
    assert plan.event_seq == 4
    assert [(t.from_status, t.to_status) for t in plan.timeline] == [(None, status)]


def test_above_the_threshold_needs_approval() -> None:
    rich = replace(CHECKOUT, amount_paid=500_000)
    assert request_refund(rich, [], new(200_000), POLICY).status == S.REQUESTED


@pytest.mark.parametrize(
    ("amount", "existing", "code"),
    [
        (60_001, [], "exceeds_refundable"),
        (0, [], "amount_not_positive"),
        (-5, [], "amount_not_positive"),
        (50_001, [refund(S.SENDING, 10_000)], "exceeds_refundable"),  # under way counts
        (50_001, [refund(S.SENT, 10_000)], "exceeds_refundable"),  # sent counts
    ],
)
def test_more_than_refundable_is_refused(
    amount: int, existing: list[RefundState], code: str
) -> None:
    with pytest.raises(RefundError) as caught:
        request_refund(CHECKOUT, existing, new(amount), POLICY)
    assert caught.value.code == code


def test_failed_refunds_give_their_amount_back_and_partials_add_up() -> None:
    existing = [refund(S.FAILED, 60_000), refund(S.SENT, 20_000)]
    assert request_refund(CHECKOUT, existing, new(40_000), POLICY).status == S.APPROVED


def test_a_reason_is_required() -> None:
    with pytest.raises(RefundError):
        request_refund(CHECKOUT, [], replace(new(1), reason="  "), POLICY)


def test_a_second_operator_approves() -> None:
    with pytest.raises(RefundError) as caught:
        approve_refund(CHECKOUT, refund(S.REQUESTED), "alice")
    assert caught.value.code == "same_operator"
    plan = approve_refund(CHECKOUT, refund(S.REQUESTED), "bob")
    assert plan.status == S.APPROVED and plan.values["approved_by"] == "bob"
    assert plan.events == ()  # intermediate steps are timeline only
    with pytest.raises(RefundError):
        approve_refund(CHECKOUT, refund(S.APPROVED), "bob")


@pytest.mark.parametrize("decide", [reject_refund, cancel_refund])
def test_rejected_or_cancelled_is_told_as_failed(decide) -> None:  # type: ignore[no-untyped-def]
    plan = decide(CHECKOUT, refund(S.REQUESTED), "bob")
    assert [e.type for e in plan.events] == ["refund.failed"]


def test_the_claim_assigns_the_payout_number_once() -> None:
    plan = claim_for_sending(CHECKOUT, refund(S.APPROVED), "PO1", NOW)
    assert plan.values["payout_no"] == "PO1" and plan.values["sending_at"] == NOW
    again = claim_for_sending(
        CHECKOUT, refund(S.APPROVED, payout_no="PO0", sending_at=NOW), "PO2", NOW
    )
    assert again.values["payout_no"] == "PO0" and "sending_at" not in again.values
    for status in (S.SENDING, S.UNKNOWN, S.REQUESTED, S.SENT):
        with pytest.raises(RefundError):
            claim_for_sending(CHECKOUT, refund(status), "PO3", NOW)
    with pytest.raises(RefundError):
        claim_for_sending(CHECKOUT, replace(refund(S.APPROVED), has_destination=False), "PO", NOW)


@pytest.mark.parametrize(
    ("start", "payout", "end", "event"),
    [
        (S.SENDING, "accepted", S.PROCESSING, None),
        (S.SENDING, "succeeded", S.SENT, "refund.sent"),
        (S.SENDING, "failed", S.FAILED, "refund.failed"),
        (S.UNKNOWN, "processing", S.PROCESSING, None),
        (S.UNKNOWN, "succeeded", S.SENT, "refund.sent"),  # a late success after a timeout
        (S.PROCESSING, "failed", S.FAILED, "refund.failed"),
        (S.SENT, "returned", S.RETURNED, "refund.failed"),
        # A return heard before the success (its notify lost): returned, not stuck.
        (S.PROCESSING, "returned", S.RETURNED, "refund.failed"),
        (S.UNKNOWN, "returned", S.RETURNED, "refund.failed"),
    ],
)
def test_the_providers_word(start: S, payout: str, end: S, event: str | None) -> None:
    plan = payout_reported(CHECKOUT, refund(start), payout, "notify", NOW)
    assert plan.status == end and plan.expect_status == start
    assert [e.type for e in plan.events] == ([event] if event else [])


def test_the_same_word_twice_writes_nothing() -> None:
    plan = payout_reported(CHECKOUT, refund(S.SENT), "succeeded", "notify", NOW)
    assert not plan.changes_anything


def test_a_success_after_a_recorded_failure_flags_the_checkout_and_moves_nothing() -> None:
    plan = payout_reported(CHECKOUT, refund(S.FAILED), "succeeded", "notify", NOW)
    assert plan.status == S.FAILED and not plan.values
    assert plan.review_reason and "re_7" in plan.review_reason
    assert [e.type for e in plan.events] == ["checkout.review_required"]


@pytest.mark.parametrize(
    ("start", "payout", "verdict"),
    [
        (S.PROCESSING, "succeeded", Verdict.ACCEPTED),  # the refund moved
        (S.SENT, "succeeded", Verdict.DUPLICATE),  # the same word again
        (S.SENT, "processing", Verdict.DUPLICATE),  # "on its way" after the outcome
        (S.FAILED, "succeeded", Verdict.CONFLICT),  # contradicts a final refund: flagged
    ],
)
def test_a_payout_notify_has_the_one_verdict_table(start: S, payout: str, verdict: Verdict) -> None:
    """Payout notifies get the pay-ins' `Verdict` (issue 22: they had strings of their own)."""
    plan = payout_reported(CHECKOUT, refund(start), payout, "notify", NOW)
    assert notify_verdict(plan) is verdict


def test_an_unknown_payout_status_is_an_error() -> None:
    with pytest.raises(RefundError):
        payout_reported(CHECKOUT, refund(S.SENDING), "weird", "notify", NOW)


def test_a_timeout_is_unknown_and_queried() -> None:
    plan = payout_timed_out(CHECKOUT, refund(S.SENDING), "timeout", NOW)
    assert plan.status == S.UNKNOWN and plan.values["next_query_at"] == NOW and plan.events == ()


def test_refused_and_short_balance_fail_with_the_reason() -> None:
    plan = payout_refused(CHECKOUT, refund(S.SENDING), "unsupported_bank", "no", NOW)
    assert plan.status == S.FAILED and plan.values["failure_code"] == "unsupported_bank"
    short = balance_short(CHECKOUT, refund(S.SENDING), "available 5", NOW)
    assert short.values["failure_code"] == "insufficient_balance"
    assert [e.type for e in short.events] == ["refund.failed"]


def test_not_found_fails_only_after_the_settle_window() -> None:
    window = timedelta(minutes=10)
    early = payout_not_found(CHECKOUT, refund(S.UNKNOWN, sending_at=NOW), NOW, window, NOW)
    assert early.status == S.UNKNOWN and early.events == ()
    late = payout_not_found(CHECKOUT, refund(S.UNKNOWN, sending_at=NOW - window), NOW, window, NOW)
    assert late.status == S.FAILED and [e.type for e in late.events] == ["refund.failed"]
    assert not payout_not_found(CHECKOUT, refund(S.SENT), NOW, window, NOW).changes_anything


def test_the_account_is_given_once_and_only_before_sending() -> None:
    from checkout.domain.refunds import give_destination

    bare = replace(refund(S.APPROVED), has_destination=False)
    plan = give_destination(CHECKOUT, bare, "tok", "088 ****6789", "shopper")
    assert plan.values == {"destination_token": "tok", "destination_masked": "088 ****6789"}
    assert plan.status == S.APPROVED and plan.events == ()
    with pytest.raises(RefundError):
        give_destination(CHECKOUT, refund(S.APPROVED), "tok", "m", "shopper")  # has one
    with pytest.raises(RefundError):
        give_destination(CHECKOUT, replace(bare, status=S.SENDING), "tok", "m", "shopper")
