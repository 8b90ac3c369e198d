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

Refunds ride the same histories (services/refunds.py on the one ledger): the shop (API) and
operators (console) ask for random amounts, more than refundable included, with or without
an account; a second operator approves, or it is rejected or cancelled; the shopper gives a
missing account; worker rounds send them through a fake payout API that accepts, refuses,
finds the balance short, fails at once, times out or errs before or after taking the payout,
or whose worker dies before or after the call; the bank later succeeds, fails or returns
the money, told by a notify (lost, repeated, late, out of order, forged) or by a query.
After every step, besides the above:
- per checkout, refunds sent plus under way are at most what was paid (what is refundable
  is never negative), and every payout the provider holds live or paid is one of those;
- the provider saw each payout number, and each refund, in at most one create call, for
  the refund's own amount, and a refund's payout number never changes: nothing is sent
  twice;
- a refund's final status never moves (`sent` only to `returned`), and its timeline is
  moves the refund table allows, ending in its status;
- each refund's creation and each move that the shop hears of (sent, failed, rejected,
  cancelled, returned) is exactly one refund event in the checkout's one sequence, in the
  order of the timeline, showing the status it moved to.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from checkout.config import Settings, StoreConfig
from checkout.domain.account_crypto import AccountCipher
from checkout.domain.ledger import MoneyReporting, PaymentUpdate, Transfer
from checkout.domain.money import Money
from checkout.domain.refunds import (
    REFUND_DONE,
    REFUND_FINAL,
    REFUND_UNDER_WAY,
    RefundSource,
    RefundStatus,
    refund_transition,
)
from checkout.domain.states import (
    ATTEMPT_LIVE,
    AttemptStatus,
    CheckoutStatus,
    attempt_transition,
    checkout_transition,
)
from checkout.providers.base import (
    Ack,
    CreateResult,
    MethodConfig,
    Payer,
    PayerRules,
    PaymentRequest,
    ProviderConfig,
    RouteConfig,
)
from checkout.providers.errors import (
    InvalidSignature,
    OrderNotFound,
    ProviderError,
    ProviderTimeout,
)
from checkout.providers.payouts import (
    Balance,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    PayoutUpdate,
    UnsupportedBank,
)
from checkout.services import refunds as refund_service
from checkout.services.admin import (
    operator_cancel,
    operator_mark_review,
    operator_resolve_review,
    record_action,
)
from checkout.services.catalog import Catalog
from checkout.services.checkouts import NewCheckout, cancel_checkout, create_checkout
from checkout.services.errors import (
    CheckoutClosed,
    Conflict,
    InvalidRequest,
    NoRouteAvailable,
    PaymentNotStarted,
    ServiceError,
)
from checkout.services.payments import choose_another_way, start_payment
from checkout.services.provider_notifies import payin_inbound, payout_inbound, receive_notify
from checkout.services.reconcile import query_now, reconcile_due
from checkout.store.db import make_engine
from checkout.store.models import (
    Base,
    Checkout,
    PaymentAttempt,
    PaymentReceipt,
    Refund,
    StateEvent,
    WebhookEvent,
    utcnow,
)

GRACE = timedelta(minutes=15)
STORE = StoreConfig("s", "Shop", (), ("https://shop.example",), refund_daily_cap={"KRW": 100_000})
PAYER = Payer("Minsu", "Kim", "m@example.com", "01012345678", None, "203.0.113.9")
REFUND_EVENTS = {"refund.created", "refund.sent", "refund.failed"}
# Events that need not change the checkout's status, amount_paid or review flag.
EXTRA_EVENTS = {"checkout.payment_instructions_issued", *REFUND_EVENTS}
# The refund moves the shop hears of (domain/refunds.py): creation, money out, nothing out.
REFUND_EVENT_OF = {
    RefundStatus.SENT: "refund.sent",
    RefundStatus.FAILED: "refund.failed",
    RefundStatus.REJECTED: "refund.failed",
    RefundStatus.CANCELLED: "refund.failed",
    RefundStatus.RETURNED: "refund.failed",
}
API_THRESHOLD = 8_000  # API refunds above this wait for a second operator
ACCOUNT_KEY = AccountCipher.generate_key()
ACCOUNTS = {
    "good": {"bank_code": "088", "account_number": "110123456789", "holder_name": "김민수"},
    "bad": {"bank_code": "999", "account_number": "12", "holder_name": "x"},
}


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


class FakePayouts:
    """A payout API with its own books. Every create call is counted per payout number and
    per refund (its remark), whatever the call then does: a second call would be money
    sent twice (a real provider might not refuse it). The worker's round says how the
    calls go (`script`, one entry per refund it tries, shared by both instances):

    accept, short (the balance inquiry says no), balance_error, die_before (the worker
    dies after the claim, before the call), refuse, failed_at_once, timeout_before and
    error_before (nothing reached the provider), timeout_after, error_after and die_after
    (the payout exists; the answer is lost).
    """

    def __init__(self, config: ProviderConfig, script: list[str]) -> None:
        self.config = config
        self.currency = "KRW"
        self.notify_ack = Ack("OK")
        self.script = script
        self.mode = "accept"
        self.payouts: dict[str, dict[str, Any]] = {}  # payout_no -> refund, amount, status
        self.calls: Counter[str] = Counter()  # create calls per payout number
        self.calls_for: Counter[str] = Counter()  # create calls per refund
        self.query_fails = False

    def banks(self) -> None:
        return None

    def notify_kind(self, headers: Mapping[str, str], body: bytes) -> str:
        return "payout"

    def balance(self) -> Balance:
        # Called once per claimed refund, just before its create: the script's next entry.
        self.mode = self.script.pop(0) if self.script else "accept"
        if self.mode == "die_before":
            raise WorkerDied
        if self.mode == "balance_error":
            raise ProviderError(self.config.name, "500", "balance inquiry failed")
        return Balance(Money(0 if self.mode == "short" else 10**9, "KRW"))

    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        number, mode = request.payout_no, self.mode
        self.calls[number] += 1
        self.calls_for[(request.remark or "").removeprefix("refund ")] += 1
        if mode == "refuse":
            raise UnsupportedBank(self.config.name, "431", "bank not supported today")
        if mode == "timeout_before":
            raise ProviderTimeout(self.config.name, "timeout", "no answer", retryable=True)
        if mode == "error_before":
            raise ProviderError(self.config.name, "502", "bad gateway")
        status = "failed" if mode == "failed_at_once" else "accepted"
        self.payouts.setdefault(
            number,
            {
                "refund": (request.remark or "").removeprefix("refund "),
                "amount": request.amount.amount,
                "status": status,
                "notifies": [],
            },
        )
        if mode == "timeout_after":
            raise ProviderTimeout(self.config.name, "timeout", "no answer", retryable=True)
        if mode == "error_after":
            raise ProviderError(self.config.name, "500", "internal error")
        if mode == "die_after":
            raise WorkerDied
        return PayoutResult(
            number,
            PayoutStatus(status),
            "P" + number,
            status,
            failure_code="bank_closed" if status == "failed" else None,
        )

    def update_for(self, payout_no: str) -> PayoutUpdate:
        status = self.payouts[payout_no]["status"]
        return PayoutUpdate(
            payout_no,
            PayoutStatus(status),
            status,
            platform_payout_no="P" + payout_no,
            amount=Money(self.payouts[payout_no]["amount"], "KRW"),
            failure_code=status if status in ("failed", "returned") else None,
        )

    def query_payout(self, payout_no: str) -> PayoutUpdate:
        if self.query_fails:
            raise ProviderError(self.config.name, "503", "try later")
        if payout_no not in self.payouts:
            raise OrderNotFound(self.config.name, "404", "no such payout")
        return self.update_for(payout_no)

    def parse_payout_notify(self, headers: Mapping[str, str], body: bytes) -> PayoutUpdate:
        data = json.loads(body)
        if data.get("forged"):
            raise InvalidSignature(self.config.name, "bad signature")
        return PayoutUpdate(
            data["payout_no"],
            PayoutStatus(data["status"]),
            data["status"],
            platform_payout_no="P" + data["payout_no"],
            failure_code=data["status"] if data["status"] in ("failed", "returned") else None,
        )


# What the payout side's bank does next: from -> to.
BANK_MOVES = {
    "process": ({"accepted"}, "processing"),
    "succeed": ({"accepted", "processing"}, "succeeded"),
    "fail": ({"accepted", "processing"}, "failed"),
    "return": ({"succeeded"}, "returned"),
}
# How the payout calls of a worker round go, one entry per refund it sends (FakePayouts).
SCRIPTS = st.lists(
    st.sampled_from(
        [
            "accept",
            "accept",
            "accept",
            "short",
            "balance_error",
            "die_before",
            "refuse",
            "failed_at_once",
            "timeout_before",
            "timeout_after",
            "error_before",
            "error_after",
            "die_after",
        ]
    ),
    max_size=3,
)
# The refund status a payout's status at the provider comes to (domain/refunds.py).
PAYOUT_MEANS = {
    "accepted": "processing",
    "processing": "processing",
    "succeeded": "sent",
    "failed": "failed",
    "returned": "returned",
}
PAYOUTS: dict[str, FakePayouts] = {}  # the running history's, for parse_destination's banks()


@dataclass(frozen=True)
class Books:
    """One read of everything the invariants check."""

    checkouts: Sequence[Checkout]
    attempts: Sequence[PaymentAttempt]
    receipts: Sequence[PaymentReceipt]
    timeline: Sequence[StateEvent]  # by id
    events: Sequence[WebhookEvent]  # by checkout, then seq
    refunds: Sequence[Refund]  # by id


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
        # A history needs no durability: commits do not wait for the disk.
        no_fsync = (
            "PRAGMA synchronous=OFF"
            if url.startswith("sqlite")
            else "SET synchronous_commit TO off"
        )

        @sqlalchemy.event.listens_for(self.engine, "connect")
        def _no_fsync(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute(no_fsync)
            cursor.close()
            if not url.startswith("sqlite"):
                dbapi_conn.commit()

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
        # Refunds: the payout side of both instances, the settings the services read.
        self.script: list[str] = []
        self.payouts = {
            name: FakePayouts(provider.config, self.script)
            for name, provider in self.providers.items()
        }
        PAYOUTS.clear()
        PAYOUTS.update(self.payouts)
        self.settings = Settings(
            sandbox=True,
            secret_key="s" * 32,
            database_url=url,
            public_base_url="https://pay.example",
            sandbox_url="",
            proxy_fix_x_for=0,
            checkout_ttl_minutes=60,
            providers={name: p.config for name, p in self.providers.items()},
            methods={},
            stores={STORE.id: STORE},
            instance_path=Path(DATABASE["tmp"]),
            refund_account_keys=(ACCOUNT_KEY,),
            refund_approval_thresholds={"KRW": API_THRESHOLD},
        )
        self.refunds: list[str] = []  # public ids, oldest first
        self.keys: dict[str, str] = {}  # idempotency key -> the refund it made
        self.was: dict[str, tuple[str, str | None]] = {}  # refund -> (status, payout_no)

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

    @initialize(
        target=checkouts,
        method=st.sampled_from(["by_total", "by_transfer"]),
        kind=st.sampled_from(["full", "over"]),
        size=st.sampled_from(["small", "big", "all"]),
    )
    def paid_checkout_with_a_refund(self, method: str, kind: str, size: str) -> str:
        """Every history also starts with money in and a refund asked for."""
        checkout = self._new_checkout(30000)
        self.pay_then_refund(checkout, method, kind, size)
        return checkout

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
        self._refund_round([], False)  # the worker's round sends refunds too

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

    # ------------------------------------------------------------ refund rules
    @rule(
        checkout=checkouts,
        via=st.sampled_from(["api", "api", "console"]),
        size=st.sampled_from(["small", "small", "threshold", "big", "all", "over", "zero"]),
        account=st.sampled_from(["good", "good", "none", "bad"]),
        key=st.sampled_from([None, None, "k1", "k2"]),
    )
    def request_refund(
        self, checkout: str, via: str, size: str, account: str, key: str | None
    ) -> None:
        """The shop (API) or an operator (console) asks for money back."""
        self._ask_refund(checkout, via, size, account, key)

    @rule(
        checkout=checkouts,
        method=st.sampled_from(["by_total", "by_transfer"]),
        kind=st.sampled_from(["full", "over"]),
        size=st.sampled_from(["small", "big", "all"]),
    )
    def pay_then_refund(self, checkout: str, method: str, kind: str, size: str) -> None:
        """The common refund history: the shopper pays (or overpays), the shop refunds."""
        self.submit(checkout, method, "ok")
        self.provider_side(checkout, kind, True)
        self._ask_refund(checkout, "api", size, "good", None)

    def _ask_refund(
        self, checkout: str, via: str, size: str, account: str, key: str | None
    ) -> None:
        with self.session() as session:
            row = session.get(Checkout, checkout)
            assert row is not None
            left = refund_service.refundable_of(session, row).amount
            paid_by = session.scalars(
                select(PaymentAttempt.provider).where(
                    PaymentAttempt.checkout_id == checkout, PaymentAttempt.amount_paid > 0
                )
            ).first()
        amount = {
            "small": 3_000,
            "threshold": API_THRESHOLD,
            "big": API_THRESHOLD + 1_000,
            "all": left,
            "over": left + 1,
            "zero": 0,
        }[size]
        data = {"amount": amount, "reason": "excess", "destination": ACCOUNTS.get(account)}
        console = via == "console"
        key = None if console else key
        with self.session() as session:
            try:
                refund, created = refund_service.create_refund(
                    session,
                    self.settings,
                    STORE.id,
                    checkout,
                    data,
                    source=RefundSource.CONSOLE if console else RefundSource.API,
                    requested_by="alice" if console else f"api:{STORE.id}",
                    payouts=PAYOUTS,
                    idempotency_key=key,
                    audit=(
                        lambda public_id: record_action(
                            session, "alice", "refund_request", checkout, target=public_id
                        )
                    )
                    if console
                    else None,
                )
            except ServiceError as exc:
                session.rollback()
                if key in self.keys:
                    raise  # a used key answers with its refund
                expected = (
                    "invalid_amount"
                    if amount <= 0
                    else "nothing_paid"
                    if paid_by is None
                    else "invalid_bank_code"
                    if account == "bad"
                    else "exceeds_refundable"
                )
                if expected == "invalid_bank_code":  # whichever part of it is wrong
                    assert (exc.field or "").startswith("destination."), exc.code
                else:
                    assert exc.code == expected, (exc.code, expected, amount, left)
                return
            if key in self.keys:
                assert not created and refund.public_id == self.keys[key]
                return
            assert created and 0 < amount <= left and account != "bad", (amount, left)
            waits = console or amount > API_THRESHOLD
            assert refund.status == ("requested" if waits else "approved"), refund.status
            self.refunds.append(refund.public_id)
            if key is not None:
                self.keys[key] = refund.public_id

    def _a_refund(self, pick: int, fits: Callable[[Refund], bool]) -> str | None:
        """Mostly one of the refunds the step can move (newest first); picks 6 and 7 take
        any refund, so the services' refusals are tried too."""
        if not self.refunds:
            return None
        if pick < 6:
            with self.session() as session:
                rows = session.scalars(select(Refund).order_by(Refund.id)).all()
                fit = [r.public_id for r in rows if fits(r)]
            if fit:
                return fit[-1 - pick % len(fit)]
        return self.refunds[-1 - pick % len(self.refunds)]

    @rule(
        pick=st.integers(0, 7),
        decision=st.sampled_from(
            ["approve", "approve", "approve", "approve_self", "reject", "cancel"]
        ),
    )
    def operator_decides(self, pick: int, decision: str) -> None:
        """A second operator approves (or the asker tries to), rejects, or it is cancelled."""
        allowed = ("requested", "approved") if decision == "cancel" else ("requested",)
        public_id = self._a_refund(pick, lambda r: r.status in allowed)
        if public_id is None:
            return
        with self.session() as session:
            before = refund_service.get_refund(session, public_id)
            status, asker = before.status, before.requested_by
            session.rollback()
            by = {"approve_self": asker}.get(decision, "bob" if asker == "alice" else "alice")
            decide = {
                "approve": refund_service.approve,
                "approve_self": refund_service.approve,
                "reject": refund_service.reject,
                "cancel": refund_service.cancel,
            }[decision]
            audit = lambda target: record_action(  # noqa: E731
                session, by, f"refund_{decision}", before.checkout_id, target=target
            )
            try:
                after = decide(session, public_id, by, audit)
            except ServiceError as exc:
                session.rollback()
                assert status not in allowed or decision == "approve_self", (status, exc.code)
                return
            assert status in allowed and decision != "approve_self", (status, decision)
            assert (
                after.status
                == {
                    "approve": "approved",
                    "reject": "rejected",
                    "cancel": "cancelled",
                }[decision]
            )

    @rule(pick=st.integers(0, 7))
    def shopper_gives_account(self, pick: int) -> None:
        """The refund-account page: once, and only before sending."""
        public_id = self._a_refund(
            pick, lambda r: r.destination_token is None and r.status in ("requested", "approved")
        )
        if public_id is None:
            return
        with self.session() as session:
            before = refund_service.get_refund(session, public_id)
            open_ = before.destination_token is None and before.status in ("requested", "approved")
            session.rollback()
            try:
                # The account is checked against its instance's bank list: the fake's (none).
                refund_service.give_destination(
                    session, self.settings, public_id, ACCOUNTS["good"], "shopper", payouts=PAYOUTS
                )
            except Conflict:
                session.rollback()
                assert not open_
                return
            assert open_

    @rule(
        script=SCRIPTS,
        query_fails=st.booleans(),
    )
    def refund_worker_round(self, script: list[str], query_fails: bool) -> None:
        """One round of the worker's refunds step; the script says how each create goes."""
        self._refund_round(script, query_fails)

    @rule(
        script=SCRIPTS,
        minutes=st.sampled_from([1, 11]),
        outcome=st.sampled_from(["succeed", "succeed", "fail", "return"]),
        delivered=st.booleans(),
        replay=st.booleans(),
    )
    def refunds_go_out(
        self, script: list[str], minutes: int, outcome: str, delivered: bool, replay: bool
    ) -> None:
        """The common refund history: a worker round sends, the bank settles the newest
        payout (a return after its success), its first notify may come again (late, out of
        order), time passes and the next round queries."""
        self._refund_round(script, False)
        if outcome == "return":
            self.the_bank_settles_a_payout(0, "succeed", delivered)
        self.the_bank_settles_a_payout(0, outcome, delivered)
        if replay:
            self.payout_notify_again(0, 1, False)
        self.offset += timedelta(minutes=minutes)
        self._refund_round([], False)

    @rule(roll=st.integers(0, 2))
    def refunds_settle_in_time(self, roll: int) -> None:
        """Past the longest query delay, one faultless round brings every refund with a
        payout number to the provider's word, and fails those the provider never got."""
        if roll:  # rarer than the rest: two hours pass
            return
        self.offset += timedelta(hours=2)
        self._refund_round([], False)
        with self.session() as session:
            numbered = session.scalars(select(Refund).where(Refund.payout_no.is_not(None))).all()
        if len(numbered) > 20:  # more than one round's batch
            return
        for refund in numbered:
            order = next(
                (
                    p.payouts[refund.payout_no]
                    for p in self.payouts.values()
                    if refund.payout_no in p.payouts
                ),
                None,
            )
            expected = PAYOUT_MEANS[order["status"]] if order else "failed"
            if expected == "returned" and refund.status == "sent":
                continue  # sent refunds are not queried: only a notify tells of a return
            assert refund.status == expected, (refund.public_id, refund.status, order)

    def _refund_round(self, script: list[str], query_fails: bool) -> None:
        self.script[:] = script
        for payouts in self.payouts.values():
            payouts.query_fails = query_fails
        try:
            report = refund_service.send_refunds(
                self.factory, self.settings, now=self.now(), payouts_for=self.payouts.__getitem__
            )
        except WorkerDied:
            return
        finally:
            self.script.clear()
            for payouts in self.payouts.values():
                payouts.query_fails = False
        assert not report.errors, report.errors

    @rule(
        pick=st.integers(0, 5),
        outcome=st.sampled_from(["process", "succeed", "succeed", "fail", "return"]),
        delivered=st.booleans(),
    )
    def the_bank_settles_a_payout(self, pick: int, outcome: str, delivered: bool) -> None:
        """At the provider a payout moves on; its notify may be lost."""
        starts, to = BANK_MOVES[outcome]
        made = [
            (p, n)
            for p in self.payouts.values()
            for n, o in p.payouts.items()
            if o["status"] in starts
        ]
        if not made:
            return
        payouts, number = made[-1 - pick % len(made)]
        order = payouts.payouts[number]
        order["status"] = to
        body = json.dumps({"payout_no": number, "status": to}).encode()
        order["notifies"].append(body)
        if delivered:
            self._deliver_payout(payouts, body)

    @rule(pick=st.integers(0, 5), which=st.integers(0, 3), forged=st.booleans())
    def payout_notify_again(self, pick: int, which: int, forged: bool) -> None:
        """A payout notify repeated, late and out of order (any earlier one), or forged."""
        made = [(p, n) for p in self.payouts.values() for n in p.payouts]
        if not made:
            return
        payouts, number = made[-1 - pick % len(made)]
        sent = payouts.payouts[number]["notifies"]
        if forged:
            body = json.dumps({"payout_no": number, "status": "succeeded", "forged": True})
            answer = self._deliver_payout(payouts, body.encode())
            assert answer.verdict == "bad_signature", answer
        elif sent:
            self._deliver_payout(payouts, sent[-1 - which % len(sent)])

    def _deliver_payout(self, payouts: FakePayouts, body: bytes) -> Any:
        with self.session() as session:
            answer = receive_notify(
                session,
                payout_inbound(payouts.config.name, payouts),  # type: ignore[arg-type]
                {},
                body,
                "198.51.100.8",
            )
        assert answer.verdict in ("accepted", "duplicate", "conflict", "bad_signature"), answer
        return answer

    def _an_attempt(self, checkout: str) -> PaymentAttempt | None:
        with self.session() as session:
            return session.scalars(
                select(PaymentAttempt)
                .where(PaymentAttempt.checkout_id == checkout)
                .order_by(PaymentAttempt.id.desc())
            ).first()

    def _deliver(self, provider: FakeProvider, body: bytes) -> None:
        with self.session() as session:
            inbound = payin_inbound(provider)  # type: ignore[arg-type]
            receive_notify(session, inbound, {}, body, "198.51.100.7")

    # ------------------------------------------------------------ invariants
    @invariant()
    def the_books_hold(self) -> None:
        """Every check below, on one consistent read of the books (a query per table)."""
        with self.session() as session:
            books = Books(
                session.scalars(select(Checkout).order_by(Checkout.id)).all(),
                session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)).all(),
                session.scalars(select(PaymentReceipt)).all(),
                session.scalars(select(StateEvent).order_by(StateEvent.id)).all(),
                session.scalars(
                    select(WebhookEvent).order_by(WebhookEvent.checkout_id, WebhookEvent.seq)
                ).all(),
                session.scalars(select(Refund).order_by(Refund.id)).all(),
            )
        self.money_is_the_sum_of_its_rows(books)
        self.the_timeline_only_makes_allowed_moves(books)
        self.the_shop_hears_every_change_once(books)
        self.refunds_never_send_more_than_was_paid_nor_twice(books)
        self.refund_moves_are_allowed_and_each_told_once(books)

    def money_is_the_sum_of_its_rows(self, books: Books) -> None:
        by_attempt: Counter[int] = Counter()
        by_checkout: Counter[str] = Counter()
        for receipt in books.receipts:
            by_attempt[receipt.attempt_id] += receipt.amount
            by_checkout[receipt.checkout_id] += receipt.amount
        for attempt in books.attempts:
            assert (attempt.amount_paid or 0) == by_attempt[attempt.id], attempt.trade_no
            # No money the provider has and we were told of is missing: what the books of
            # delivered notifies say is at most what we hold.
            order = self.providers[attempt.provider].orders.get(attempt.trade_no)
            provider_total = sum(a for _t, a in order["transfers"]) if order else 0
            assert (attempt.amount_paid or 0) <= provider_total
        for checkout in books.checkouts:
            assert checkout.amount_paid == by_checkout[checkout.id], checkout.id

    def the_timeline_only_makes_allowed_moves(self, books: Books) -> None:
        last: dict[tuple[str, Any], str] = {}
        for event in books.timeline:
            if event.kind == "refund":
                continue  # refund_moves_are_allowed_and_each_told_once
            key = (event.kind, event.attempt_id if event.kind == "attempt" else event.checkout_id)
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
        for checkout in books.checkouts:
            assert last.get(("checkout", checkout.id), "open") == checkout.status
        for attempt in books.attempts:
            assert last[("attempt", attempt.id)] == attempt.status

    def the_shop_hears_every_change_once(self, books: Books) -> None:
        events: dict[str, list[WebhookEvent]] = {}
        for event in books.events:
            events.setdefault(event.checkout_id, []).append(event)
        for checkout in books.checkouts:
            mine = events.get(checkout.id, [])
            # One sequence for checkout and refund events: 1..n, no gaps, no repeats.
            assert [e.seq for e in mine] == list(range(1, len(mine) + 1))
            assert checkout.event_seq == len(mine)
            seen = ("open", 0, None)
            for event in mine:
                if event.type in EXTRA_EVENTS:
                    continue
                data = event.payload["data"]
                now = (data["status"], data["amount_paid"], data["review_reason"])
                assert now != seen, f"{event.type} seq {event.seq} changes nothing"
                seen = now
            assert seen == (checkout.status, checkout.amount_paid, checkout.review_reason)

    def refunds_never_send_more_than_was_paid_nor_twice(self, books: Books) -> None:
        paid = {c.id: c.amount_paid or 0 for c in books.checkouts}
        by_payout = {r.payout_no: r for r in books.refunds if r.payout_no}
        out: Counter[str] = Counter()  # sent or under way, by checkout
        for refund in books.refunds:
            status = RefundStatus(refund.status)
            if status in REFUND_UNDER_WAY or status in REFUND_DONE:
                out[refund.checkout_id] += refund.amount
            # A final status never moves (sent only to returned); the payout number, once
            # given, never changes.
            was, number = self.was.get(refund.public_id, (None, None))
            if was in REFUND_FINAL:
                assert status == was, (refund.public_id, was, status)
            if was == RefundStatus.SENT:
                assert status in (RefundStatus.SENT, RefundStatus.RETURNED), status
            if number is not None:
                assert refund.payout_no == number, (refund.public_id, number)
            self.was[refund.public_id] = (status, refund.payout_no)
        for checkout_id, amount in out.items():
            assert amount <= paid[checkout_id], (checkout_id, amount, paid[checkout_id])
        live: Counter[str] = Counter()  # what the provider holds live or paid out
        for payouts in self.payouts.values():
            assert all(n == 1 for n in payouts.calls.values()), payouts.calls
            assert all(n == 1 for n in payouts.calls_for.values()), payouts.calls_for
            for number, order in payouts.payouts.items():
                refund = by_payout[number]
                assert order["refund"] == refund.public_id
                assert order["amount"] == refund.amount
                if order["status"] in ("accepted", "processing", "succeeded"):
                    status = RefundStatus(refund.status)
                    assert status in REFUND_UNDER_WAY or status in REFUND_DONE, (
                        f"{number} is {order['status']} at the provider, "
                        f"{refund.status} in our books"
                    )
                    live[refund.checkout_id] += order["amount"]
        for checkout_id, amount in live.items():
            assert amount <= paid[checkout_id], (checkout_id, amount)

    def refund_moves_are_allowed_and_each_told_once(self, books: Books) -> None:
        refunds = {r.id: r for r in books.refunds}
        last: dict[int, RefundStatus] = {}
        told: dict[str, list[tuple[str, str, str]]] = {}  # checkout -> expected events
        for event in books.timeline:
            if event.kind != "refund":
                continue
            assert event.refund_id is not None
            refund = refunds[event.refund_id]
            to = RefundStatus(event.to_status)
            if event.from_status is None:
                assert event.refund_id not in last
                assert to in (RefundStatus.REQUESTED, RefundStatus.APPROVED), to
                told.setdefault(refund.checkout_id, []).append(
                    (refund.public_id, "refund.created", str(to))
                )
            else:
                previous = last.get(event.refund_id)
                assert event.from_status == previous, (refund.public_id, event.from_status)
                if event.from_status == event.to_status:  # a note: the account given
                    assert event.source == "shopper" and event.detail
                else:
                    assert refund_transition(RefundStatus(event.from_status), to)
                    if to in REFUND_EVENT_OF:
                        told.setdefault(refund.checkout_id, []).append(
                            (refund.public_id, REFUND_EVENT_OF[to], str(to))
                        )
            last[event.refund_id] = to
        for refund in books.refunds:
            assert last[refund.id] == refund.status, (refund.public_id, refund.status)
        heard: dict[str, list[tuple[str, str, str]]] = {}
        for event in books.events:
            if event.type not in REFUND_EVENTS:
                continue
            said = event.payload["data"]["refund"]
            assert event.payload["type"] == event.type and event.payload["seq"] == event.seq
            heard.setdefault(event.checkout_id, []).append((said["id"], event.type, said["status"]))
        assert heard == told


DATABASE: dict[str, Any] = {}


@pytest.mark.parametrize("_", [0])
def test_invariants_hold_over_random_histories(
    tmp_path: Path, _: int, monkeypatch: pytest.MonkeyPatch
) -> None:
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
