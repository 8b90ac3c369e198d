"""Invariants over random histories (hypothesis stateful testing), on SQLite and on the
PostgreSQL of TEST_DATABASE_URL.

The services run for real on a real database; the providers are in-process fakes with their
own books (what was created, what each order received), so a history can pay, part-pay,
overpay, send a second transfer, fail, repeat a notify, lose it, forge one, time out or die
during a create, and let deadlines pass. After every step:
- every attempt's and checkout's `amount_paid` is the sum of its distinct money rows, and no
  money the provider reported and we heard of is missing;
- every timeline entry is a move the transition table allows, continuing from the last one
  (so no final status moves but by the allowed late-money moves);
- the shop's events are numbered 1..n, each one (but the extra kinds) changes the checkout's
  status, amount_paid or review flag, and the last one shows the checkout as it is now: every
  change reached the shop, exactly once;
- after a reconcile pass, no attempt is live past its deadline plus the grace;
- nothing raises but the services' own refusals.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from checkout.config import StoreConfig
from checkout.db import make_engine
from checkout.domain.ledger import MoneyReporting, PaymentUpdate, Transfer
from checkout.domain.money import Money
from checkout.domain.states import (
    ATTEMPT_LIVE,
    AttemptStatus,
    CheckoutStatus,
    attempt_transition,
    checkout_transition,
)
from checkout.models import (
    Base,
    Checkout,
    PaymentAttempt,
    PaymentReceipt,
    StateEvent,
    WebhookEvent,
    utcnow,
)
from checkout.providers.base import (
    Ack,
    CreateResult,
    InvalidSignature,
    MethodConfig,
    OrderNotFound,
    Payer,
    PayerRules,
    PaymentRequest,
    ProviderConfig,
    ProviderError,
    ProviderTimeout,
    RouteConfig,
)
from checkout.services.admin import operator_cancel, operator_mark_review, operator_resolve_review
from checkout.services.catalog import Catalog
from checkout.services.checkouts import NewCheckout, cancel_checkout, create_checkout
from checkout.services.errors import CheckoutClosed, Conflict, InvalidRequest
from checkout.services.notifications import receive_notify
from checkout.services.payments import (
    NoRouteAvailable,
    PaymentNotStarted,
    choose_another_way,
    start_payment,
)
from checkout.services.reconcile import query_now, reconcile_due

GRACE = timedelta(minutes=15)
STORE = StoreConfig("s", "Shop", (), ("https://shop.example",))
PAYER = Payer("Minsu", "Kim", "m@example.com", "01012345678", None, "203.0.113.9")
EXTRA_EVENTS = {"checkout.payment_instructions_issued"}


class WorkerDied(BaseException):
    """The process making a create call was killed (nothing after the call runs)."""


class FakeProvider:
    """A provider with its own books; notifies are JSON it signs by not saying "forged"."""

    def __init__(self, name: str, reporting: MoneyReporting) -> None:
        self.config = ProviderConfig(name, "fake", "fake", {}, connect_timeout=1, read_timeout=1)
        self.currency = "KRW"
        self.notify_ack = Ack("OK")
        self.money_reporting = reporting
        self.orders: dict[str, dict[str, Any]] = {}
        self.next_create = "ok"

    def payer_rules(self, method: MethodConfig) -> PayerRules:
        return PayerRules()

    def supports_amount(self, amount: Money) -> bool:
        return True

    def refusal_created_nothing(self, code: str, message: str) -> bool:
        return code == "refuse_nothing"  # the same submit fails over to the next route

    def create_payment(self, request: PaymentRequest) -> CreateResult:
        mode, self.next_create = self.next_create, "ok"
        if mode in ("refuse", "refuse_nothing"):  # the latter proves nothing was created
            raise ProviderError(self.config.name, mode, "not today")
        self.orders[request.trade_no] = {"amount": request.amount.amount, "transfers": []}
        self.orders[request.trade_no]["status"] = "pending"
        if mode == "timeout":
            raise ProviderTimeout(self.config.name, "timeout", "no answer", retryable=True)
        if mode == "die":
            raise WorkerDied
        return CreateResult(
            AttemptStatus.PENDING, "P" + request.trade_no, "https://cashier.example/"
        )

    def update_for(self, trade_no: str, last_transfer_only: bool) -> PaymentUpdate:
        order = self.orders[trade_no]
        transfers = order["transfers"]
        total = sum(a for _t, a in transfers)
        if order["status"] == "failed":
            return PaymentUpdate(trade_no, AttemptStatus.FAILED, "3", None)
        if not transfers:
            return PaymentUpdate(trade_no, AttemptStatus.PENDING, "1", None)
        if self.money_reporting == MoneyReporting.TRANSFERS:
            listed = transfers[-1:] if last_transfer_only else transfers
            amount = listed[-1][1] if last_transfer_only else total
            return PaymentUpdate(
                trade_no,
                AttemptStatus.PAID,
                "2",
                Money(amount, "KRW"),
                transfers=tuple(Transfer(t, Money(a, "KRW")) for t, a in listed),
            )
        status = AttemptStatus.PAID if total >= order["amount"] else AttemptStatus.PARTIALLY_PAID
        return PaymentUpdate(trade_no, status, "0000", Money(total, "KRW"))

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentUpdate:
        data = json.loads(body)
        if data.get("forged"):
            raise InvalidSignature(self.config.name, "bad signature")
        return PaymentUpdate(
            data["trade_no"],
            AttemptStatus(data["status"]),
            "x",
            Money(data["amount"], "KRW") if data.get("amount") is not None else None,
            transfers=tuple(Transfer(t, Money(a, "KRW")) for t, a in data.get("transfers", [])),
        )

    def claimed_trade_no(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return None

    def query_payment(self, trade_no: str, platform_trade_no: str | None) -> PaymentUpdate:
        if trade_no not in self.orders:
            raise OrderNotFound(self.config.name, "404", "no such order")
        return self.update_for(trade_no, last_transfer_only=False)


def notify_body(update: PaymentUpdate) -> bytes:
    return json.dumps(
        {
            "trade_no": update.trade_no,
            "status": str(update.status),
            "amount": update.amount_paid.amount if update.amount_paid else None,
            "transfers": [[t.transfer_id, t.amount.amount] for t in update.transfers],
        }
    ).encode()


class LedgerHistories(RuleBasedStateMachine):
    checkouts = Bundle("checkouts")

    def __init__(self) -> None:
        super().__init__()
        url = DATABASE["url"]
        if url.startswith("postgresql"):
            from tests.conftest import _database_url

            url = _database_url(Path(DATABASE["tmp"]))
        else:
            DATABASE["n"] += 1
            url = f"sqlite:///{DATABASE['tmp']}/h{DATABASE['n']}.sqlite3"
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self.factory = sessionmaker(self.engine, expire_on_commit=False)
        self.providers = {
            "total": FakeProvider("total", MoneyReporting.TOTAL),
            "transfers": FakeProvider("transfers", MoneyReporting.TRANSFERS),
        }
        self.catalog = Catalog(
            self.providers,  # type: ignore[arg-type]
            {
                "by_total": MethodConfig("by_total", "total", "Total"),
                "by_transfer": MethodConfig("by_transfer", "transfers", "Transfers"),
                "routed": MethodConfig(
                    "routed",
                    "total",
                    "Routed",
                    routes=(RouteConfig("total", {}), RouteConfig("transfers", {})),
                ),
            },
        )
        self.offset = timedelta(0)
        self.orders = 0
        self.sent: dict[str, bytes] = {}  # the last notify body per trade number
        self.transfer_no = 0

    def teardown(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self.factory()

    def now(self):  # type: ignore[no-untyped-def]
        return utcnow() + self.offset

    # ------------------------------------------------------------ rules
    @initialize(target=checkouts)
    def first_checkout(self) -> str:
        return self._new_checkout(10000)

    @rule(target=checkouts, amount=st.sampled_from([10000, 15000, 30000]))
    def new_checkout(self, amount: int) -> str:
        return self._new_checkout(amount)

    @rule(checkout=checkouts, method=st.sampled_from(["by_total", "by_transfer"]))
    def submit_and_pay(self, checkout: str, method: str) -> None:
        """The common history: a payment starts and the shopper pays part or all of it."""
        self.submit(checkout, method, "ok")
        self.provider_side(checkout, "part", True)

    def _new_checkout(self, amount: int) -> str:
        self.orders += 1
        new = NewCheckout(
            f"o{self.orders}", Money(amount, "KRW"), "https://shop.example/", None, None, None
        )
        with self.session() as session:
            checkout, _created = create_checkout(session, STORE, new, timedelta(hours=1))
            return checkout.id

    @rule(
        checkout=checkouts,
        method=st.sampled_from(["by_total", "by_transfer", "routed"]),
        mode=st.sampled_from(["ok", "ok", "ok", "refuse", "refuse_nothing", "timeout", "die"]),
    )
    def submit(self, checkout: str, method: str, mode: str) -> None:
        provider = self.providers["transfers" if method == "by_transfer" else "total"]
        provider.next_create = mode
        with self.session() as session:
            try:
                start_payment(
                    session, self.catalog, checkout, method, PAYER, "https://x/n", "https://x/r"
                )
            except (
                CheckoutClosed,
                PaymentNotStarted,
                InvalidRequest,
                NoRouteAvailable,
                WorkerDied,
            ):
                session.rollback()
        provider.next_create = "ok"

    @rule(
        checkout=checkouts,
        kind=st.sampled_from(["full", "part", "over", "second", "fail"]),
        delivered=st.booleans(),
    )
    def provider_side(self, checkout: str, kind: str, delivered: bool) -> None:
        """The shopper pays (or the payment fails) at the provider; the notify may be lost."""
        attempt = self._an_attempt(checkout)
        if attempt is None:
            return
        provider = self.providers[attempt.provider]
        order = provider.orders.get(attempt.trade_no)
        if order is None or order["status"] == "failed":
            return
        paid = sum(a for _t, a in order["transfers"])
        if kind == "fail":
            if paid:
                return
            order["status"] = "failed"
        else:
            amount = {
                "full": max(order["amount"] - paid, 1000),
                "part": order["amount"] // 2,
                "over": order["amount"] + 1000,
                "second": order["amount"] // 3,
            }[kind]
            self.transfer_no += 1
            order["transfers"].append((f"X{self.transfer_no}", amount))
        body = notify_body(provider.update_for(attempt.trade_no, last_transfer_only=True))
        self.sent[attempt.trade_no] = body
        if delivered:
            self._deliver(provider, body)

    @rule(checkout=checkouts)
    def repeat_notify(self, checkout: str) -> None:
        attempt = self._an_attempt(checkout)
        if attempt is not None and attempt.trade_no in self.sent:
            self._deliver(self.providers[attempt.provider], self.sent[attempt.trade_no])

    @rule(
        provider=st.sampled_from(["total", "transfers"]), checkout=checkouts, roll=st.integers(0, 2)
    )
    def forged_notify(self, provider: str, checkout: str, roll: int) -> None:
        if roll:
            return
        attempt = self._an_attempt(checkout)
        trade_no = attempt.trade_no if attempt is not None else "nope"
        body = json.dumps({"trade_no": trade_no, "status": "paid", "amount": 10**9, "forged": True})
        self._deliver(self.providers[provider], body.encode())

    @rule(checkout=checkouts)
    def operator_queries(self, checkout: str) -> None:
        attempt = self._an_attempt(checkout)
        if attempt is None:
            return
        with self.session() as session:
            query_now(session, self.catalog, attempt, grace=GRACE, now=self.now())

    @rule(minutes=st.sampled_from([1, 10, 45, 120]))
    def time_passes_and_reconcile(self, minutes: int) -> None:
        self.offset += timedelta(minutes=minutes)
        now = self.now()
        reconcile_due(self.factory, self.catalog, now, after=timedelta(0), grace=GRACE)
        with self.session() as session:
            live = session.scalars(
                select(PaymentAttempt).where(
                    PaymentAttempt.status.in_([str(s) for s in ATTEMPT_LIVE])
                )
            ).all()
            for attempt in live:
                assert attempt.deadline_at is None or attempt.deadline_at + GRACE > now, (
                    f"{attempt.trade_no} {attempt.status} live past its deadline"
                )

    @rule(checkout=checkouts, by_operator=st.booleans(), roll=st.integers(0, 3))
    def cancel(self, checkout: str, by_operator: bool, roll: int) -> None:
        if roll:  # rarer than payments, or few histories would get to pay
            return
        with self.session() as session:
            if by_operator:
                operator_cancel(session, "alice", checkout)
                return
            with contextlib.suppress(Conflict):
                cancel_checkout(session, checkout, STORE.id)

    @rule(checkout=checkouts)
    def pay_another_way(self, checkout: str) -> None:
        """The shopper leaves the live attempt to choose again (it is still reconciled)."""
        with self.session() as session:
            choose_another_way(session, checkout)

    @rule(checkout=checkouts, resolve=st.booleans())
    def operator_review(self, checkout: str, resolve: bool) -> None:
        with self.session() as session:
            if resolve:
                operator_resolve_review(session, "bob", checkout, "")
            else:
                operator_mark_review(session, "bob", checkout, "customer called")

    def _an_attempt(self, checkout: str) -> PaymentAttempt | None:
        with self.session() as session:
            return session.scalars(
                select(PaymentAttempt)
                .where(PaymentAttempt.checkout_id == checkout)
                .order_by(PaymentAttempt.id.desc())
            ).first()

    def _deliver(self, provider: FakeProvider, body: bytes) -> None:
        with self.session() as session:
            receive_notify(session, provider, {}, body, "198.51.100.7")  # type: ignore[arg-type]

    # ------------------------------------------------------------ invariants
    @invariant()
    def money_is_the_sum_of_its_rows(self) -> None:
        with self.session() as session:
            receipts = session.scalars(select(PaymentReceipt)).all()
            for attempt in session.scalars(select(PaymentAttempt)).all():
                rows = sum(r.amount for r in receipts if r.attempt_id == attempt.id)
                assert (attempt.amount_paid or 0) == rows, attempt.trade_no
            for checkout in session.scalars(select(Checkout)).all():
                rows = sum(r.amount for r in receipts if r.checkout_id == checkout.id)
                assert checkout.amount_paid == rows, checkout.id
                # No money the provider has and we were told of is missing: what the
                # books of delivered notifies say is at most what we hold.
                for attempt in session.scalars(
                    select(PaymentAttempt).where(PaymentAttempt.checkout_id == checkout.id)
                ).all():
                    order = self.providers[attempt.provider].orders.get(attempt.trade_no)
                    provider_total = sum(a for _t, a in order["transfers"]) if order else 0
                    assert (attempt.amount_paid or 0) <= provider_total

    @invariant()
    def the_timeline_only_makes_allowed_moves(self) -> None:
        with self.session() as session:
            last: dict[tuple[str, Any], str] = {}
            for event in session.scalars(select(StateEvent).order_by(StateEvent.id)).all():
                key = (
                    event.kind,
                    event.attempt_id if event.kind == "attempt" else event.checkout_id,
                )
                if event.from_status is None:
                    assert key not in last and event.to_status == "creating"
                else:
                    previous = last.get(key, "open" if event.kind == "checkout" else None)
                    assert event.from_status == previous, (key, event.from_status, previous)
                    if event.from_status == event.to_status:  # a note (an abandonment)
                        assert event.kind == "attempt" and event.detail
                    elif event.kind == "attempt":
                        assert attempt_transition(
                            AttemptStatus(event.from_status), AttemptStatus(event.to_status)
                        )
                    else:
                        assert checkout_transition(
                            CheckoutStatus(event.from_status), CheckoutStatus(event.to_status)
                        )
                last[key] = event.to_status
            for checkout in session.scalars(select(Checkout)).all():
                assert last.get(("checkout", checkout.id), "open") == checkout.status
            for attempt in session.scalars(select(PaymentAttempt)).all():
                assert last[("attempt", attempt.id)] == attempt.status

    @invariant()
    def the_shop_hears_every_change_once(self) -> None:
        with self.session() as session:
            for checkout in session.scalars(select(Checkout)).all():
                events = session.scalars(
                    select(WebhookEvent)
                    .where(WebhookEvent.checkout_id == checkout.id)
                    .order_by(WebhookEvent.seq)
                ).all()
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
                assert checkout.event_seq == len(events)
                seen = ("open", 0, None)
                for event in events:
                    if event.type in EXTRA_EVENTS:
                        continue
                    data = event.payload["data"]
                    now = (data["status"], data["amount_paid"], data["review_reason"])
                    assert now != seen, f"{event.type} seq {event.seq} changes nothing"
                    seen = now
                assert seen == (checkout.status, checkout.amount_paid, checkout.review_reason)


DATABASE: dict[str, Any] = {}


@pytest.mark.parametrize("_", [0])
def test_invariants_hold_over_random_histories(tmp_path: Path, _: int) -> None:
    import os

    DATABASE.update(url=os.environ.get("TEST_DATABASE_URL", "sqlite"), tmp=str(tmp_path), n=0)
    LedgerHistories.TestCase.settings = settings(
        max_examples=int(os.environ.get("LEDGER_HISTORIES", "25")),
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        derandomize=True,
    )
    LedgerHistories.TestCase().runTest()
