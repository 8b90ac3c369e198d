"""The ledger's rules, without a database: each use case from a state to a Plan
(checkout/domain/ledger.py), in the style of cosmicpython's domain unit tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from checkout.domain.errors import LedgerRefusal
from checkout.domain.ledger import (
    CreateAnswer,
    MoneyReporting,
    NewAttempt,
    PaymentUpdate,
    Receipt,
    Transfer,
    Verdict,
    cancel,
    checkout_deadline_passed,
    claim,
    create_answered,
    create_refused,
    create_unknown,
    deadline_passed,
    flag_for_review,
    not_found_at_provider,
    provider_reported,
    resolve_review,
)
from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus, CheckoutStatus, EventSource
from tests.support.ledger import NOW, attempt, checkout, fold

TOTAL = MoneyReporting.TOTAL
TRANSFERS = MoneyReporting.TRANSFERS
S = AttemptStatus
C = CheckoutStatus


def update(status: S, amount: int | None, currency: str = "KRW", *transfers: tuple[str, int]):  # type: ignore[no-untyped-def]
    return PaymentUpdate(
        "T1",
        status,
        "x",
        Money(amount, currency) if amount is not None else None,
        transfers=tuple(Transfer(t, Money(a, currency)) for t, a in transfers),
    )


def report(state, news, reporting=TOTAL, source=EventSource.NOTIFY):  # type: ignore[no-untyped-def]
    return provider_reported(state, 1, news, reporting, source, NOW)


def events(plan) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.type for e in plan.events]


def timeline(plan) -> list[tuple[str, str | None, str, str]]:  # type: ignore[no-untyped-def]
    return [(t.kind, t.from_status, t.to_status, str(t.source)) for t in plan.timeline]


# ---------------------------------------------------------------- money in
def test_paid_in_full_then_the_same_news_is_a_duplicate() -> None:
    state = checkout(attempt())
    plan = report(state, update(S.PAID, 10000))
    assert plan.verdict == Verdict.ACCEPTED
    after = fold(state, plan)
    assert after.status == C.PAID and after.attempts[0].status == S.PAID
    assert after.amount_paid == 10000 and after.attempts[0].review_reason is None
    assert events(plan) == ["checkout.paid"]
    assert timeline(plan) == [
        ("attempt", "pending", "paid", "notify"),
        ("checkout", "pending", "paid", "notify"),
    ]
    again = report(after, update(S.PAID, 10000))
    assert again.verdict == Verdict.DUPLICATE and not again.changes_anything
    assert again.events == ()


def test_less_is_partial_even_when_the_provider_says_paid() -> None:
    state = checkout(attempt())
    after = fold(state, report(state, update(S.PAID, 4000)))
    assert after.status == C.PARTIALLY_PAID and after.attempts[0].status == S.PARTIALLY_PAID
    assert after.attempts[0].amount_paid == 4000


def test_more_is_paid_and_flagged() -> None:
    state = checkout(attempt())
    after = fold(state, report(state, update(S.PAID, 12000)))
    assert after.attempts[0].status == S.PAID
    assert "overpaid" in (after.attempts[0].review_reason or "")


@pytest.mark.parametrize("news", [update(S.PAID, None), update(S.PAID, 10000, "MXN")])
def test_unusable_amount_moves_nothing_and_is_flagged(news: PaymentUpdate) -> None:
    state = checkout(attempt())
    plan = report(state, news)
    assert plan.verdict == Verdict.AMOUNT_MISMATCH
    after = fold(state, plan)
    assert after.status == C.PENDING and after.attempts[0].status == S.PENDING
    assert after.attempts[0].review_reason and after.amount_paid == 0
    assert events(plan) == ["checkout.review_required"]  # the shop hears of the flag


def test_money_for_a_failed_attempt_is_kept_and_flagged() -> None:
    state = checkout(attempt())
    failed = fold(state, report(state, update(S.FAILED, None)))
    assert failed.status == C.OPEN  # the shopper may try again
    plan = report(failed, update(S.PAID, 10000))
    assert plan.verdict == Verdict.ACCEPTED
    after = fold(failed, plan)
    assert after.status == C.PAID and after.attempts[0].status == S.PAID
    assert after.amount_paid == 10000
    assert after.attempts[0].review_reason == "paid after failed"
    assert after.review_reason == "paid after failed"
    assert timeline(plan) == [
        ("attempt", "failed", "paid", "notify"),
        ("checkout", "open", "paid", "notify"),
    ]
    assert events(plan) == ["checkout.paid"]


def test_part_of_the_money_for_a_failed_attempt_is_partially_paid() -> None:
    state = fold(checkout(attempt()), report(checkout(attempt()), update(S.FAILED, None)))
    after = fold(state, report(state, update(S.PAID, 4000)))
    assert after.status == C.PARTIALLY_PAID and after.attempts[0].status == S.PARTIALLY_PAID
    assert "paid after failed" in (after.review_reason or "")


@pytest.mark.parametrize(
    ("news", "verdict", "reason"),
    [
        (update(S.PAID, 12000), Verdict.ACCEPTED, "overpaid: 12000 KRW"),
        (update(S.PAID, None), Verdict.AMOUNT_MISMATCH, "unusable amount"),
        (update(S.PAID, 10000, "MXN"), Verdict.AMOUNT_MISMATCH, "unusable amount"),
    ],
)
def test_every_attempt_flag_also_flags_its_checkout(
    news: PaymentUpdate, verdict: Verdict, reason: str
) -> None:
    state = checkout(attempt(), review_reason="customer called")  # an operator's flag stays
    plan = report(state, news)
    assert plan.verdict == verdict
    after = fold(state, plan)
    assert reason in (after.attempts[0].review_reason or "")
    flag = after.review_reason or ""
    assert flag.startswith(f"attempt T1: {after.attempts[0].review_reason}")
    assert flag.endswith("; customer called")


def test_a_conflict_flags_the_attempt_and_its_checkout() -> None:
    state = checkout(attempt())
    paid = fold(state, report(state, update(S.PAID, 10000)))
    plan = report(paid, update(S.FAILED, None))
    assert plan.verdict == Verdict.CONFLICT
    after = fold(paid, plan)
    assert after.attempts[0].review_reason == "provider reported failed after paid"
    assert after.review_reason == "attempt T1: provider reported failed after paid"
    assert after.status == C.PAID and after.attempts[0].status == S.PAID
    assert events(plan) == ["checkout.review_required"]


def test_still_pending_is_no_change() -> None:
    plan = report(checkout(attempt()), update(S.PENDING, None))
    assert plan.verdict == Verdict.NO_CHANGE and not plan.changes_anything


def test_a_second_attempt_paying_a_paid_checkout_is_kept_and_flagged_as_a_duplicate() -> None:
    first, second = attempt(1), attempt(2, trade_no="T2")
    state = checkout(first, second)
    paid = fold(state, report(state, update(S.PAID, 10000)))
    plan = provider_reported(paid, 2, update(S.PAID, 10000), TOTAL, EventSource.NOTIFY, NOW)
    assert plan.verdict == Verdict.ACCEPTED
    after = fold(paid, plan)
    assert after.attempts[1].status == S.PAID
    assert after.status == C.PAID and after.amount_paid == 20000
    assert "duplicate payment" in (after.review_reason or "")
    assert events(plan) == ["checkout.payment_received"]  # money moved: the shop hears it


# ---------------------------------------------------------------- transfers and totals
def test_a_second_transfer_is_money_not_a_duplicate() -> None:
    """TeemoPay: 5,000 then 10,000 into one VA of 15,000, one callback each."""
    state = checkout(attempt(amount=15000), amount=15000)
    first = report(state, update(S.PAID, 5000, "KRW", ("P1", 5000)), TRANSFERS)
    part = fold(state, first)
    assert part.status == C.PARTIALLY_PAID and part.amount_paid == 5000
    second = report(part, update(S.PAID, 10000, "KRW", ("P2", 10000)), TRANSFERS)
    assert second.verdict == Verdict.ACCEPTED
    paid = fold(part, second)
    assert paid.status == C.PAID and paid.amount_paid == 15000
    assert paid.attempts[0].status == S.PAID and paid.attempts[0].amount_paid == 15000
    assert events(second) == ["checkout.paid"]
    # The same callback again is a duplicate; the same transfer with another amount is not.
    assert report(paid, update(S.PAID, 10000, "KRW", ("P2", 10000)), TRANSFERS).verdict == (
        Verdict.DUPLICATE
    )
    odd = report(paid, update(S.PAID, 9000, "KRW", ("P2", 9000)), TRANSFERS)
    assert odd.verdict == Verdict.CONFLICT and fold(paid, odd).amount_paid == 15000


def test_a_query_listing_every_transfer_adds_only_the_new_ones() -> None:
    state = checkout(
        attempt(amount=15000, amount_paid=5000, status=S.PARTIALLY_PAID),
        amount=15000,
        amount_paid=5000,
        status=C.PARTIALLY_PAID,
        receipts=(Receipt(1, "P1", 5000),),
    )
    news = update(S.PAID, 15000, "KRW", ("P1", 5000), ("P2", 10000))
    plan = report(state, news, TRANSFERS, EventSource.QUERY)
    assert [(r.transfer_key, r.amount) for r in plan.receipts] == [("P2", 10000)]
    assert fold(state, plan).amount_paid == 15000


def test_a_running_total_adds_the_difference() -> None:
    state = checkout(attempt(amount=15000), amount=15000)
    part = fold(state, report(state, update(S.PARTIALLY_PAID, 5000)))
    plan = report(part, update(S.PAID, 15000))
    assert [(r.transfer_key, r.amount, r.new) for r in plan.receipts] == [("total", 15000, False)]
    assert fold(part, plan).amount_paid == 15000
    paid = fold(part, plan)
    lower = report(paid, update(S.PAID, 12000))
    # A lower total never takes money away; it is an older message (issue 25: stale, not
    # a conflict): nothing written, no event, no flag.
    assert lower.verdict == Verdict.STALE and not lower.changes_anything
    assert fold(paid, lower).amount_paid == 15000 and lower.events == ()


@pytest.mark.parametrize("source", [EventSource.NOTIFY, EventSource.QUERY])
def test_an_older_running_total_after_the_rest_was_paid_is_stale(source: EventSource) -> None:
    """Diamond Pay: a part payment's notify (real_amount 5000) replayed after the rest was
    paid (15000 applied) is old news: stale, nothing moves, nobody is flagged."""
    state = checkout(attempt(amount=15000), amount=15000)
    part = fold(state, report(state, update(S.PAID, 5000)))  # Diamond Pay: paid, short
    assert part.status == C.PARTIALLY_PAID
    paid = fold(part, report(part, update(S.PAID, 15000)))
    assert paid.status == C.PAID and paid.review_reason is None
    replay = report(paid, update(S.PAID, 5000), TOTAL, source)
    assert replay.verdict == Verdict.STALE
    assert not replay.changes_anything and replay.events == () and replay.checkout is None
    after = fold(paid, replay)
    assert after.review_reason is None and after.attempts[0].review_reason is None
    assert after.status == C.PAID and after.amount_paid == 15000
    assert replay.detail and "in all after" in replay.detail


def test_an_older_running_total_while_partly_paid_is_stale() -> None:
    state = checkout(attempt(amount=15000), amount=15000)
    first = fold(state, report(state, update(S.PARTIALLY_PAID, 3000)))
    second = fold(first, report(first, update(S.PARTIALLY_PAID, 6000)))
    late = report(second, update(S.PARTIALLY_PAID, 3000))
    assert late.verdict == Verdict.STALE and not late.changes_anything and late.events == ()
    assert fold(second, late).amount_paid == 6000


def test_a_lower_transfer_is_still_a_conflict() -> None:
    """Stale is a running total's rule only: a transfer reported with another amount
    contradicts what we hold (flagged)."""
    state = checkout(attempt(amount=15000), amount=15000)
    paid = fold(state, report(state, update(S.PAID, 15000, "KRW", ("P1", 15000)), TRANSFERS))
    odd = report(paid, update(S.PAID, 5000, "KRW", ("P1", 5000)), TRANSFERS)
    assert odd.verdict == Verdict.CONFLICT and fold(paid, odd).review_reason


# ---------------------------------------------------------------- late money
@pytest.mark.parametrize(
    ("start", "news"),
    [
        (S.FAILED, update(S.PENDING, None)),
        (S.PAID, update(S.FAILED, None)),
        (S.PARTIALLY_PAID, update(S.FAILED, None)),
        (S.EXPIRED, update(S.FAILED, None)),
        (S.EXPIRED, update(S.PENDING, None)),
    ],
)
def test_other_final_statuses_never_move(start: S, news: PaymentUpdate) -> None:
    state = checkout(attempt(status=start))
    plan = report(state, news)
    assert plan.verdict in (Verdict.CONFLICT, Verdict.NO_CHANGE)
    assert fold(state, plan).attempts[0].status == start
    assert all(t.kind != "attempt" for t in plan.timeline)


def test_money_after_expiry_is_kept_flagged_and_told() -> None:
    state = checkout(attempt(status=S.EXPIRED), status=C.EXPIRED)
    plan = report(state, update(S.PAID, 12000))
    assert plan.verdict == Verdict.ACCEPTED
    after = fold(state, plan)
    assert after.attempts[0].status == S.PAID and after.status == C.PAID
    assert (after.attempts[0].review_reason or "").startswith("paid late; overpaid")
    assert after.review_reason == (
        "paid late; attempt T1: overpaid: 12000 KRW received for 10000 KRW"
    )
    assert after.amount_paid == 12000 and events(plan) == ["checkout.paid"]


@pytest.mark.parametrize("settled", [C.CANCELLED, C.PAID])
def test_money_after_a_cancel_or_a_payment_is_told_to_the_shop(settled: C) -> None:
    """Kept and flagged, and the shop's last event shows the new amount."""
    paid_before = 10000 if settled == C.PAID else 0
    receipts = (Receipt(1, "total", 10000),) if settled == C.PAID else ()
    state = checkout(
        attempt(status=S.PAID if settled == C.PAID else S.PENDING, amount_paid=paid_before),
        status=settled,
        amount_paid=paid_before,
        receipts=receipts,
    )
    plan = report(state, update(S.PAID, paid_before + 10000))
    after = fold(state, plan)
    assert after.status == settled and after.amount_paid == paid_before + 10000
    assert after.review_reason
    assert events(plan) == ["checkout.payment_received"]
    assert plan.events[0].seq == state.event_seq + 1


def test_unknown_becomes_pending_when_the_provider_has_it() -> None:
    state = checkout(attempt(status=S.UNKNOWN))
    plan = report(state, update(S.PENDING, None), source=EventSource.QUERY)
    assert plan.verdict == Verdict.ACCEPTED
    assert fold(state, plan).attempts[0].status == S.PENDING and not plan.events


# ---------------------------------------------------------------- create
def new_attempt() -> NewAttempt:
    return NewAttempt("T9", "p", "m", 10000, "KRW", {}, NOW + timedelta(hours=1))


def test_a_claim_moves_an_open_checkout_to_pending_once() -> None:
    state = checkout(status=C.OPEN)
    plan = claim(state, new_attempt())
    assert plan.new_attempt is not None and events(plan) == ["checkout.pending"]
    assert timeline(plan) == [
        ("checkout", "open", "pending", "shopper"),
        ("attempt", None, "creating", "shopper"),
    ]
    with pytest.raises(LedgerRefusal):
        claim(fold(state, plan), new_attempt())  # a double submit finds it pending


def test_a_create_answer_with_instructions_tells_the_shop() -> None:
    state = checkout(attempt(status=S.CREATING))
    answer = CreateAnswer(
        S.PENDING, "P1", instructions={"kind": "bank_transfer"}, expires_at=NOW + timedelta(hours=2)
    )
    plan = create_answered(state, 1, answer, NOW)
    after = fold(state, plan)
    assert after.attempts[0].status == S.PENDING
    # The deadline is the provider's or the checkout's, whichever is first.
    assert after.attempts[0].deadline_at == state.expires_at
    assert events(plan) == ["checkout.payment_instructions_issued"]


def test_a_create_answer_after_a_notify_keeps_the_notify() -> None:
    state = checkout(attempt(status=S.PAID, amount_paid=10000), status=C.PAID, amount_paid=10000)
    plan = create_answered(state, 1, CreateAnswer(S.PENDING, "P1", redirect_url="https://x"), NOW)
    after = fold(state, plan)
    assert after.attempts[0].status == S.PAID and after.status == C.PAID and not plan.events


def test_a_refused_create_reopens_the_checkout() -> None:
    state = checkout(attempt(status=S.CREATING))
    after = fold(state, create_refused(state, 1, "00029", "rejected", NOW))
    assert after.attempts[0].status == S.FAILED and after.status == C.OPEN


def test_a_refused_create_past_the_checkout_deadline_expires_it() -> None:
    state = checkout(attempt(status=S.CREATING), expires_at=NOW - timedelta(minutes=1))
    plan = create_refused(state, 1, "00029", "rejected", NOW)
    assert fold(state, plan).status == C.EXPIRED and events(plan) == ["checkout.expired"]


def test_an_interrupted_create_is_unknown_and_stays_live() -> None:
    state = checkout(attempt(status=S.CREATING))
    plan = create_unknown(state, 1, "create_interrupted", "no answer", EventSource.EXPIRY)
    after = fold(state, plan)
    assert after.attempts[0].status == S.UNKNOWN and after.status == C.PENDING


# ---------------------------------------------------------------- deadlines, queries
@pytest.mark.parametrize("start", [S.PENDING, S.UNKNOWN])
def test_an_attempt_past_its_deadline_expires_and_the_checkout_reopens(start: S) -> None:
    state = checkout(attempt(status=start))
    plan = deadline_passed(state, 1, NOW, "deadline passed")
    after = fold(state, plan)
    assert after.attempts[0].status == S.EXPIRED and after.status == C.OPEN
    assert events(plan) == ["checkout.open"]


def test_a_final_attempt_is_past_deadlines() -> None:
    plan = deadline_passed(checkout(attempt(status=S.PAID)), 1, NOW, "x")
    assert plan.verdict == Verdict.NO_CHANGE and not plan.changes_anything


def test_not_found_fails_an_unknown_create_only_once_settled() -> None:
    state = checkout(attempt(status=S.UNKNOWN))
    assert not not_found_at_provider(state, 1, False, NOW).changes_anything
    after = fold(state, not_found_at_provider(state, 1, True, NOW))
    assert after.attempts[0].status == S.FAILED and after.status == C.OPEN


def test_an_open_checkout_past_its_deadline_expires() -> None:
    state = checkout(status=C.OPEN, expires_at=NOW)
    assert events(checkout_deadline_passed(state, NOW)) == ["checkout.expired"]
    assert not checkout_deadline_passed(state, NOW - timedelta(seconds=1)).changes_anything


# ---------------------------------------------------------------- cancel, review
def test_the_shop_cancels_only_an_open_checkout_with_nothing_paid() -> None:
    plan = cancel(checkout(status=C.OPEN), "shop API", allow_pending=False)
    assert timeline(plan) == [("checkout", "open", "cancelled", "operator")]
    assert plan.timeline[0].detail == "by shop API"
    with pytest.raises(LedgerRefusal):
        cancel(checkout(attempt()), "shop API", allow_pending=False)
    with pytest.raises(LedgerRefusal):
        cancel(checkout(status=C.PAID, amount_paid=10000), "operator a", allow_pending=True)
    again = cancel(checkout(status=C.CANCELLED), "shop API", allow_pending=False)
    assert again.verdict == Verdict.NO_CHANGE and not again.changes_anything


def test_an_operator_may_cancel_a_pending_checkout() -> None:
    plan = cancel(checkout(attempt()), "operator alice", allow_pending=True)
    assert events(plan) == ["checkout.cancelled"]


def test_review_flags_and_their_resolution_are_told_to_the_shop() -> None:
    state = checkout(attempt(review_reason="overpaid"))
    flagged = flag_for_review(state, "customer called", "alice")
    assert events(flagged) == ["checkout.review_required"]
    after = fold(state, flagged)
    assert after.review_reason == "customer called (alice)"
    resolved = resolve_review(after)
    assert events(resolved) == ["checkout.review_resolved"]
    cleared = fold(after, resolved)
    assert cleared.review_reason is None and cleared.attempts[0].review_reason is None


def test_sequence_numbers_only_grow() -> None:
    state = checkout(attempt(amount=15000), amount=15000)
    seqs = []
    for step in (
        update(S.PAID, 5000, "KRW", ("P1", 5000)),
        update(S.PAID, 10000, "KRW", ("P2", 10000)),
        update(S.PAID, 10000, "KRW", ("P3", 10000)),
    ):
        plan = report(state, step, TRANSFERS)
        seqs += [e.seq for e in plan.events]
        state = fold(state, plan)
    assert seqs == [1, 2, 3]


def test_paying_another_way_reopens_and_the_old_attempt_still_counts() -> None:
    from checkout.domain.ledger import abandon

    state = checkout(attempt())
    plan = abandon(state, 1, NOW)
    after = fold(state, plan)
    assert after.status == C.OPEN and after.attempts[0].status == S.PENDING
    assert after.attempts[0].abandoned and events(plan) == ["checkout.open"]
    assert not after.live_attempts()  # it no longer holds the checkout
    with pytest.raises(LedgerRefusal):
        abandon(after, 1, NOW)  # once
    with pytest.raises(LedgerRefusal):
        abandon(checkout(attempt(status=S.UNKNOWN)), 1, NOW)  # it may be paid already
    # Its money still settles the checkout.
    paid = fold(after, report(after, update(S.PAID, 10000)))
    assert paid.status == C.PAID and paid.amount_paid == 10000


def test_a_fail_over_ends_the_refused_attempt_and_starts_the_next_in_one_plan() -> None:
    from checkout.domain.ledger import fail_over

    state = checkout(attempt(status=S.CREATING))
    plan = fail_over(state, 1, "0100019", "cap reached", "failover provider_refused", new_attempt())
    after = fold(state, plan)
    assert after.attempts[0].status == S.FAILED and after.attempts[1].status == S.CREATING
    assert after.status == C.PENDING and not plan.events  # no bounce through open
    assert timeline(plan) == [
        ("attempt", "creating", "failed", "create"),
        ("attempt", None, "creating", "shopper"),
    ]
    settled = checkout(attempt(status=S.PAID, amount_paid=10000), status=C.PAID)
    with pytest.raises(LedgerRefusal):  # a notify settled it meanwhile: it stays
        fail_over(settled, 1, "x", "y", "z", new_attempt())


# ---------------------------------------------------------------- the attempt a create shows
def test_the_attempt_a_create_shows_is_the_plans() -> None:
    """start_payment answers with the attempt as the plan leaves it (no read back): the
    cashier link or payment details the answer set, its status after the rule."""
    from checkout.services.payments import attempt_after

    state = checkout(attempt(1, S.CREATING))
    answered = CreateAnswer(S.PENDING, "P1", redirect_url="https://cashier.example/1")
    shown = attempt_after(state, create_answered(state, 1, answered, NOW), 1)
    assert (shown.status, shown.redirect_url, shown.instructions) == (
        "pending",
        "https://cashier.example/1",
        None,
    )
    assert (shown.platform_trade_no, shown.trade_no, shown.amount) == ("P1", "T1", 10000)
    va = CreateAnswer(S.PENDING, "P2", instructions={"kind": "virtual_account", "bank": "B"})
    shown = attempt_after(state, create_answered(state, 1, va, NOW), 1)
    assert shown.instructions == {"kind": "virtual_account", "bank": "B"}
    refused = attempt_after(state, create_refused(state, 1, "E1", "no", NOW), 1)
    assert (refused.status, refused.redirect_url) == ("failed", None)
    # A notify paid it while the provider answered: paid stays, the link is kept.
    paid = checkout(attempt(1, S.PAID, amount_paid=10000), status=C.PAID, amount_paid=10000)
    shown = attempt_after(paid, create_answered(paid, 1, answered, NOW), 1)
    assert (shown.status, shown.amount_paid) == ("paid", 10000)
    assert shown.redirect_url == "https://cashier.example/1"
