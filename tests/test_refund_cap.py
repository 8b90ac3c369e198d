"""The store's daily refund cap as the worker applies it (services/refunds.send_refunds), on
a database (SQLite, or the PostgreSQL of TEST_DATABASE_URL): the day's refunds are read by
store/ledger.load_cap_day and decided by domain/refunds.check_daily_cap alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from checkout.config import Settings, StoreConfig
from checkout.domain.account_crypto import AccountCipher
from checkout.domain.money import Money
from checkout.domain.refunds import (
    CapRefund,
    RefundStatus,
    check_daily_cap,
    store_day_bounds,
)
from checkout.providers.base import Ack, ProviderConfig
from checkout.providers.payouts import (
    Balance,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
)
from checkout.services.refunds import send_refunds
from checkout.store.db import make_engine
from checkout.store.ledger import load_cap_day
from checkout.store.models import Base, Checkout, Refund, Store, new_public_id, utcnow
from tests.conftest import _database_url

KEY = AccountCipher.generate_key()
STORE = StoreConfig("shop", "Shop", (), ("https://shop.example",), refund_daily_cap={"KRW": 15_000})
PROVIDER = ProviderConfig("payouts", "fake", "https://payouts.example", {})
ACCOUNT = {
    "bank_code": "088",
    "account_number": "110123456789",
    "holder_name": "김민수",
    "account_type": "bank_account",
}


class AcceptingPayouts:
    """A payout API that takes every payout (and counts them)."""

    config = PROVIDER
    currency = "KRW"
    notify_ack = Ack("OK")

    def __init__(self) -> None:
        self.created: list[PayoutRequest] = []

    def banks(self) -> None:
        return None

    def balance(self) -> Balance:
        return Balance(Money(10**9, "KRW"))

    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        self.created.append(request)
        return PayoutResult(request.payout_no, PayoutStatus.ACCEPTED, "P1", "accepted")


@dataclass
class Db:
    factory: sessionmaker[Session]
    settings: Settings

    def refund(
        self, livemode: bool, status: RefundStatus, amount: int, sending_at: datetime | None
    ) -> str:
        """A paid checkout of `livemode` with one refund in `status`."""
        with self.factory() as session:
            checkout = Checkout(
                store_id=STORE.id,
                order_id=new_public_id("o"),
                livemode=livemode,
                amount=50_000,
                currency="KRW",
                amount_paid=50_000,
                return_url="https://shop.example/back",
                status="paid",
                expires_at=utcnow() + timedelta(hours=1),
            )
            session.add(checkout)
            session.flush()
            refund = Refund(
                public_id=new_public_id("re"),
                checkout_id=checkout.id,
                store_id=STORE.id,
                amount=amount,
                currency="KRW",
                reason="test",
                status=str(status),
                source="api",
                provider=PROVIDER.name,
                destination_token=AccountCipher([KEY]).encrypt_json(ACCOUNT),
                destination_masked="088 ****6789",
                payout_no=new_public_id("po")[:32] if sending_at else None,
                requested_by="api:shop",
                sending_at=sending_at,
            )
            session.add(refund)
            session.commit()
            return refund.public_id

    def status(self, public_id: str) -> tuple[str, str | None]:
        with self.factory() as session:
            row = session.query(Refund).filter_by(public_id=public_id).one()
            return row.status, row.hold_reason


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    url = _database_url(tmp_path)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        session.add(Store(id=STORE.id, name=STORE.name))
        session.commit()
    settings = Settings(
        sandbox=True,
        secret_key="s" * 32,
        database_url=url,
        public_base_url="https://pay.example",
        sandbox_url="",
        proxy_fix_x_for=0,
        checkout_ttl_minutes=60,
        providers={PROVIDER.name: PROVIDER},
        methods={},
        stores={STORE.id: STORE},
        instance_path=tmp_path,
        refund_account_keys=(KEY,),
    )
    try:
        yield Db(factory, settings)
    finally:
        engine.dispose()


def send(db: Db) -> tuple[AcceptingPayouts, object]:
    payouts = AcceptingPayouts()
    report = send_refunds(db.factory, db.settings, payouts_for=lambda _name: payouts)
    return payouts, report


def test_a_sent_test_refund_never_uses_up_the_live_cap(db: Db) -> None:
    """Issue 22: a test refund sent today held every live refund as over the cap."""
    db.refund(False, RefundStatus.SENT, 10_000, utcnow() - timedelta(minutes=1))
    live = db.refund(True, RefundStatus.APPROVED, 10_000, None)
    payouts, report = send(db)
    assert (report.claimed, report.held) == (1, 0), report  # type: ignore[attr-defined]
    assert db.status(live) == ("processing", None)
    assert [p.amount for p in payouts.created] == [Money(10_000, "KRW")]


def test_a_test_refund_has_its_own_cap(db: Db) -> None:
    db.refund(True, RefundStatus.SENT, 10_000, utcnow() - timedelta(minutes=1))
    test = db.refund(False, RefundStatus.APPROVED, 10_000, None)
    _payouts, report = send(db)
    assert (report.claimed, report.held) == (1, 0), report  # type: ignore[attr-defined]
    assert db.status(test)[0] == "processing"


def test_a_live_refund_over_the_live_cap_waits_with_the_reason(db: Db) -> None:
    db.refund(True, RefundStatus.SENT, 10_000, utcnow() - timedelta(minutes=1))
    live = db.refund(True, RefundStatus.APPROVED, 10_000, None)
    payouts, report = send(db)
    assert (report.claimed, report.held) == (0, 1), report  # type: ignore[attr-defined]
    status, reason = db.status(live)
    assert status == "approved"
    assert "cap" in (reason or "") and "5,000" in (reason or "").replace("5000", "5,000")
    assert payouts.created == []


def test_the_cap_reads_this_store_day_in_one_mode_and_currency(db: Db) -> None:
    """What production feeds the rule: load_cap_day's answer, nothing else."""
    now = datetime.now(UTC)
    start, end = store_day_bounds(now, STORE.timezone)
    db.refund(True, RefundStatus.SENT, 4_000, start)  # the store day's first moment
    db.refund(True, RefundStatus.FAILED, 5_000, start + timedelta(seconds=1))
    db.refund(True, RefundStatus.SENT, 6_000, start - timedelta(seconds=1))  # yesterday
    db.refund(True, RefundStatus.SENT, 7_000, end)  # tomorrow
    db.refund(False, RefundStatus.SENT, 8_000, start + timedelta(seconds=2))  # test mode
    db.refund(True, RefundStatus.APPROVED, 9_000, None)  # not claimed
    with db.factory() as session:
        read = load_cap_day(session, STORE.id, True, "KRW", (start, end))
    assert [(r.status, r.amount.amount, r.livemode) for r in read] == [
        (RefundStatus.SENT, 4_000, True),
        (RefundStatus.FAILED, 5_000, True),
    ]
    assert all(isinstance(r, CapRefund) and r.sending_at is not None for r in read)
    cap = Money(15_000, "KRW")
    check_daily_cap(Money(11_000, "KRW"), True, read, cap, now, STORE.timezone)
    with pytest.raises(ValueError, match="leaves"):
        check_daily_cap(Money(11_001, "KRW"), True, read, cap, now, STORE.timezone)
