"""The cash-receipt tables (migration receipts_0015): one receipt per management key and
one cancel receipt per refund, whatever the worker retries."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checkout.cli import upgrade_database
from checkout.config import normalise_database_url
from checkout.domain import receipts as r
from checkout.store.models import CashReceipt, Checkout, ReceiptRequest, Store


def _url(tmp_path: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'receipts.sqlite3'}"
    url = normalise_database_url(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def _receipt(checkout_id: str, mgt_key: str) -> CashReceipt:
    amounts = r.vat_split(55_000, taxable=True)
    return CashReceipt(
        checkout_id=checkout_id,
        store_id="s",
        livemode=True,
        kind="issue",
        mgt_key=mgt_key,
        usage=r.TradeUsage.INCOME_DEDUCTION.value,
        identity_masked=r.mask_identity("01012345678"),
        total=amounts.total,
        supply_cost=amounts.supply_cost,
        tax=amounts.tax,
        service_fee=0,
        state=r.ReceiptState.PENDING.value,
    )


def test_a_management_key_holds_one_receipt(tmp_path: Path) -> None:
    url = _url(tmp_path)
    upgrade_database(url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add(Store(id="s", name="S"))
        checkout = Checkout(
            store_id="s", order_id="o", amount=55_000, currency="KRW", amount_paid=55_000,
            return_url="https://shop.example/r", expires_at=now + timedelta(hours=1),
        )  # fmt: skip
        session.add(checkout)
        session.flush()
        session.add(
            ReceiptRequest(
                checkout_id=checkout.id,
                cash_receipt_kind=r.IdentityKind.INCOME_DEDUCTION.value,
                identity_masked="*******5678",
            )
        )
        key = r.issue_mgt_key(checkout.id)
        session.add(_receipt(checkout.id, key))
        session.commit()
        stored = session.query(CashReceipt).one()
        assert stored.mgt_key == key and stored.tries == 0 and not stored.self_issued
        session.add(_receipt(checkout.id, key))  # a second decision for the same checkout
        with pytest.raises(IntegrityError):
            session.commit()
    engine.dispose()
