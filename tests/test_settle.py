"""The one-write settlement (services/settle.py) against the general path (apply_update).

For every attempt status, checkout status and kind of reported money, the same state is
written twice; one copy is settled by the one-write path (where it applies), the other by
`lifecycle.apply_update`, and every row they leave must be the same: the attempt, the
checkout, the timeline, the shop's webhook event and the stored notify.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus, CheckoutStatus, EventSource
from checkout.models import (
    Base,
    Checkout,
    NotifyMessage,
    PaymentAttempt,
    StateEvent,
    Store,
    WebhookEvent,
    utcnow,
)
from checkout.providers.base import PaymentUpdate
from checkout.services.lifecycle import Verdict, apply_update, mark_checkout_locked
from checkout.services.settle import plan_settlement, read_locked, write_settlement
from tests.conftest import _database_url

AMOUNT = 15000
PROVIDER = "paypro_kr"
MONEY = {
    "exact": Money(AMOUNT, "KRW"),
    "part": Money(AMOUNT // 3, "KRW"),
    "over": Money(AMOUNT + 1, "KRW"),
    "zero": Money(0, "KRW"),
    "peso": Money(AMOUNT, "MXN"),
    "none": None,
}


@pytest.fixture
def session_factory(tmp_path: Path) -> Any:
    engine = create_engine(_database_url(tmp_path))
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        session.add(Store(id="demo", name="Demo"))
        session.commit()
    yield factory
    engine.dispose()


def seed(
    session: Session,
    n: int,
    attempt_status: str,
    checkout_status: str,
    paid_before: int,
    platform_trade_no: str | None = None,
) -> str:
    """A checkout in `checkout_status` with one attempt in `attempt_status`; its trade_no."""
    now = utcnow()
    checkout = Checkout(
        store_id="demo",
        order_id=f"order-{n}",
        amount=AMOUNT,
        currency="KRW",
        amount_paid=paid_before,
        return_url="https://shop.example/back",
        status=checkout_status,
        expires_at=now + timedelta(hours=1),
        event_seq=3,
        review_reason=None,
    )
    session.add(checkout)
    session.flush()
    trade_no = f"T{n:030d}"
    session.add(
        PaymentAttempt(
            checkout_id=checkout.id,
            trade_no=trade_no,
            provider=PROVIDER,
            method="kakaopay",
            amount=AMOUNT,
            currency="KRW",
            status=attempt_status,
            platform_trade_no=platform_trade_no,
            created_at=now,
        )
    )
    session.commit()
    return trade_no


def message(trade_no: str) -> dict[str, Any]:
    return {
        "provider": PROVIDER,
        "remote_addr": "203.0.113.9",
        "headers": {"Content-Type": "application/json"},
        "body": '{"status": "SUCCESS"}',
        "claimed_trade_no": trade_no,
        "trade_no": trade_no,
        "verdict": Verdict.ACCEPTED,
        "response_status": 200,
        "response_body": "OK",
    }


def settle_in_one_write(session: Session, trade_no: str, update: PaymentUpdate) -> bool:
    row = read_locked(session, PROVIDER, trade_no)
    assert row is not None
    plan = plan_settlement(row, update)
    if plan is None:
        session.rollback()
        return False
    write_settlement(session, plan, message(trade_no), utcnow())
    session.commit()
    return True


def settle_generally(session: Session, trade_no: str, update: PaymentUpdate) -> None:
    attempt = session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.trade_no == trade_no)
        .options(joinedload(PaymentAttempt.checkout, innerjoin=True))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    mark_checkout_locked(session, attempt.checkout)
    verdict = apply_update(session, attempt, update, source=EventSource.NOTIFY)
    assert verdict == Verdict.ACCEPTED
    session.add(NotifyMessage(**{**message(trade_no), "attempt_id": attempt.id}))
    session.commit()


def outcome(session: Session, trade_no: str) -> dict[str, Any]:
    """Every row the settlement touched, without ids, times and random ids."""
    attempt = session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.trade_no == trade_no)
    ).one()
    checkout = session.get(Checkout, attempt.checkout_id)
    assert checkout is not None
    events = session.scalars(
        select(StateEvent).where(StateEvent.checkout_id == checkout.id).order_by(StateEvent.id)
    ).all()
    webhooks = session.scalars(
        select(WebhookEvent).where(WebhookEvent.checkout_id == checkout.id)
    ).all()
    notifies = session.scalars(
        select(NotifyMessage).where(NotifyMessage.trade_no == trade_no)
    ).all()
    payload = [dict(w.payload) for w in webhooks]
    for p in payload:
        p["data"] = {**p["data"], "id": "<checkout>", "order_id": "<order>"}
    return {
        "attempt": (
            attempt.status,
            attempt.amount_paid,
            attempt.provider_status,
            attempt.platform_trade_no,
            attempt.failure_message,
            attempt.review_reason,
        ),
        "checkout": (
            checkout.status,
            checkout.amount_paid,
            checkout.event_seq,
            checkout.review_reason,
        ),
        "events": [
            (e.kind, e.attempt_id == attempt.id, e.from_status, e.to_status, e.source, e.detail)
            for e in events
        ],
        "webhooks": [(w.type, w.seq, w.status, w.attempts, w.store_id) for w in webhooks],
        "payload": payload,
        "notifies": [
            (n.provider, n.verdict, n.attempt_id == attempt.id, n.response_status, n.body)
            for n in notifies
        ],
        "updated_since_seed": attempt.updated_at >= attempt.created_at,
    }


def test_the_one_write_settlement_leaves_what_apply_update_leaves(session_factory: Any) -> None:
    cases = itertools.product(
        [str(s) for s in AttemptStatus],
        [str(s) for s in CheckoutStatus],
        [AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID],
        ["exact", "part", "over", "peso"],
        [0, AMOUNT // 2],
        [None, "P-from-create"],
    )
    settled_in_one_write = []
    n = 0
    for attempt_status, checkout_status, status, money, paid_before, platform in cases:
        update = PaymentUpdate(
            trade_no="",
            status=status,
            provider_status="SUCCESS",
            amount_paid=MONEY[money],
            platform_trade_no="P-from-notify",
        )
        with session_factory() as session:
            one, other = (
                seed(session, n + i, attempt_status, checkout_status, paid_before, platform)
                for i in (0, 1)
            )
        n += 2
        with session_factory() as session:
            if not settle_in_one_write(session, one, update):
                continue
        with session_factory() as session:
            settle_generally(session, other, update)
        with session_factory() as session:
            fast, general = outcome(session, one), outcome(session, other)
        case = (attempt_status, checkout_status, status, money, paid_before, platform)
        assert fast == general, case
        settled_in_one_write.append((attempt_status, checkout_status, status, money))
    # The plain cases took the one write; nothing unusual did.
    assert ("pending", "pending", AttemptStatus.PAID, "exact") in settled_in_one_write
    assert ("pending", "pending", AttemptStatus.PAID, "part") in settled_in_one_write
    assert ("unknown", "pending", AttemptStatus.PAID, "exact") in settled_in_one_write
    kinds = {(a, c, m) for a, c, _s, m in settled_in_one_write}
    assert all(a in ("creating", "unknown", "pending") for a, _c, _m in kinds)
    assert all(c in ("open", "pending") for _a, c, _m in kinds)
    assert all(m in ("exact", "part") for _a, _c, m in kinds)


def test_nothing_is_planned_for_what_needs_the_general_path(session_factory: Any) -> None:
    with session_factory() as session:
        trade_no = seed(session, 1, "pending", "pending", 0)
    with session_factory() as session:
        row = read_locked(session, PROVIDER, trade_no)
        assert row is not None
        base = {"trade_no": trade_no, "provider_status": "X", "platform_trade_no": None}
        for status, money in [
            (AttemptStatus.PAID, MONEY["over"]),  # overpaid: flagged for review
            (AttemptStatus.PAID, MONEY["peso"]),  # another currency: flagged
            (AttemptStatus.PAID, None),
            (AttemptStatus.FAILED, None),  # reopens the checkout: looks at other attempts
            (AttemptStatus.PENDING, None),
        ]:
            update = PaymentUpdate(status=status, amount_paid=money, **base)  # type: ignore[arg-type]
            assert plan_settlement(row, update) is None
        assert read_locked(session, "teemopay_kr", trade_no) is None  # another provider's
        session.rollback()


def test_a_settled_notify_writes_every_row_once(session_factory: Any) -> None:
    with session_factory() as session:
        trade_no = seed(session, 7, "pending", "pending", 0)
    update = PaymentUpdate(
        trade_no=trade_no,
        status=AttemptStatus.PAID,
        provider_status="SUCCESS",
        amount_paid=MONEY["exact"],
    )
    with session_factory() as session:
        assert settle_in_one_write(session, trade_no, update)
    with session_factory() as session:
        result = outcome(session, trade_no)
    assert result["attempt"][:2] == ("paid", AMOUNT)
    assert result["checkout"][:3] == ("paid", AMOUNT, 4)
    assert [e[2:4] for e in result["events"]] == [("pending", "paid"), ("pending", "paid")]
    assert result["webhooks"] == [("checkout.paid", 4, "pending", 0, "demo")]
    assert result["payload"][0]["data"]["amount_paid"] == AMOUNT
    assert len(result["notifies"]) == 1 and result["notifies"][0][1] == "accepted"
