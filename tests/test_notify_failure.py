"""A notify whose processing fails midway: kept raw, answered with an error, applied on retry.

The message and its effects share one transaction; when processing raises, that transaction
is rolled back and the raw message is stored on its own, so the inbox still shows every
notify that reached us, and nothing half-applied is left behind.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from checkout.store import ledger
from checkout.store.models import NotifyMessage, PaymentAttempt, StateEvent, WebhookEvent
from tests.conftest import LiveApp
from tests.support import creds
from tests.support.shopper import KR_PAYER, Shopper, create_checkout, get_checkout
from tests.test_concurrent_notify import AMOUNT, paid_notify


def test_failed_processing_keeps_the_raw_message_and_changes_nothing(
    live_app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one writer (store/ledger.py) wrote every effect, then the process failed before
    the commit: nothing of it is left. (On PostgreSQL the COMMIT goes in the write's round
    trip; here the statements run and the COMMIT never does.)"""
    checkout = create_checkout(live_app.url, amount=AMOUNT, currency="KRW")
    assert Shopper(checkout["url"]).submit("kakaopay", KR_PAYER).status_code == 303
    [order] = live_app.sandbox.state.orders.values()
    body, headers = paid_notify(order.trade_no, order.id, creds.PAYPRO_APP_SECRET)
    url = f"{live_app.url}/notify/paypro_kr"
    real_run = ledger._run

    def failing_run(session, parts, *, commit=False):  # type: ignore[no-untyped-def]
        assert commit  # a notify's plan is its transaction's last write
        real_run(session, parts)  # written, then a crash before the commit
        raise RuntimeError("database went away")

    monkeypatch.setattr(ledger, "_run", failing_run)
    first = requests.post(url, data=body, headers=headers, timeout=10)
    assert first.status_code == 500  # not the ack: the provider retries

    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"
    with live_app.session() as session:
        [kept] = session.scalars(select(NotifyMessage)).all()
        assert kept.body == body.decode() and kept.verdict == "received"
        assert kept.detail == "processing failed; the provider will retry"
        attempt = session.scalars(select(PaymentAttempt)).one()
        assert attempt.status == "pending" and attempt.amount_paid in (None, 0)
        assert not session.scalars(select(StateEvent).where(StateEvent.to_status == "paid")).all()
        assert not session.scalars(
            select(WebhookEvent).where(WebhookEvent.type == "checkout.paid")
        ).all()

    monkeypatch.undo()
    retry = requests.post(url, data=body, headers=headers, timeout=10)
    assert (retry.status_code, retry.text) == (200, "OK")
    assert get_checkout(live_app.url, checkout["id"])["status"] == "paid"
    with live_app.session() as session:
        verdicts = session.scalars(select(NotifyMessage.verdict).order_by(NotifyMessage.id))
        assert list(verdicts) == ["received", "accepted"]
