"""The start-payment guards as one pure rule (domain/ledger.start_decision), on the state that
services/payments.start_payment reads under the checkout's lock: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from checkout.domain.ledger import NewAttempt, StartVerdict, Verdict, claim, start_decision
from checkout.domain.states import AttemptStatus, CheckoutStatus
from tests.support.ledger import NOW, attempt, checkout, fold

A, C = AttemptStatus, CheckoutStatus
PAST = NOW - timedelta(seconds=1)


def test_an_open_checkout_with_the_method_goes() -> None:
    decision = start_decision(checkout(status=C.OPEN), NOW, method_offered=True)
    assert (decision.verdict, decision.plan, decision.attempt_id) == (StartVerdict.GO, None, None)


@pytest.mark.parametrize("offered", [True, False])
def test_an_open_checkout_past_its_deadline_expires_first(offered: bool) -> None:
    state = checkout(status=C.OPEN, expires_at=NOW)  # the deadline itself is past
    decision = start_decision(state, NOW, method_offered=offered)
    assert decision.verdict == StartVerdict.EXPIRED
    assert decision.plan is not None and decision.plan.verdict == Verdict.ACCEPTED
    assert fold(state, decision.plan).status == C.EXPIRED
    assert [e.type for e in decision.plan.events] == ["checkout.expired"]


@pytest.mark.parametrize("status", [C.PAID, C.EXPIRED, C.CANCELLED])
def test_a_final_checkout_takes_nothing(status: CheckoutStatus) -> None:
    state = checkout(attempt(1, A.PAID), status=status, expires_at=PAST)
    decision = start_decision(state, NOW, method_offered=True)
    assert (decision.verdict, decision.status, decision.plan) == (
        StartVerdict.CLOSED,
        status,
        None,
    )


@pytest.mark.parametrize("offered", [True, False])
def test_a_live_attempt_is_resumed_whatever_the_method(offered: bool) -> None:
    state = checkout(attempt(1, A.FAILED), attempt(2, A.PENDING), status=C.PENDING)
    decision = start_decision(state, NOW, method_offered=offered)
    assert (decision.verdict, decision.attempt_id) == (StartVerdict.RESUME, 2)


def test_an_abandoned_attempt_does_not_hold_the_checkout() -> None:
    state = checkout(replace(attempt(1, A.PENDING), abandoned=True), status=C.OPEN)
    assert start_decision(state, NOW, method_offered=True).verdict == StartVerdict.GO


def test_a_method_it_does_not_offer_is_refused() -> None:
    decision = start_decision(checkout(status=C.OPEN), NOW, method_offered=False)
    assert decision.verdict == StartVerdict.METHOD_NOT_AVAILABLE


def test_pending_with_nothing_live_is_busy() -> None:
    state = checkout(attempt(1, A.FAILED), status=C.PENDING)
    assert start_decision(state, NOW, method_offered=True).verdict == StartVerdict.BUSY


def test_go_is_exactly_when_the_claim_is_allowed() -> None:
    """GO never meets the claim's own refusal; the claim then holds the checkout (RESUME)."""
    state = checkout(status=C.OPEN)
    assert start_decision(state, NOW, method_offered=True).verdict == StartVerdict.GO
    new = NewAttempt("T9", "p", "m", 10000, "KRW", {}, None)
    after = fold(state, claim(state, new), new_attempt_id=9)
    decision = start_decision(after, NOW, method_offered=True)
    assert (decision.verdict, decision.attempt_id) == (StartVerdict.RESUME, 9)
