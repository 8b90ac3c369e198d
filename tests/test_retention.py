"""Retention of raw notifies: bodies and headers go, the audit trail stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from checkout.config import retention_days
from checkout.services.retention import (
    PURGED_MARKER,
    purge_notify_bodies,
    purged_detail,
)
from checkout.store.models import NotifyMessage, utcnow
from tests.conftest import LiveApp

BODY = '{"tradeNo": "T1", "payer": "minsu@example.com"}'


def _add(live_app: LiveApp, age: timedelta, detail: str | None = None) -> int:
    with live_app.session() as session:
        message = NotifyMessage(
            provider="paypro_kr",
            received_at=utcnow() - age,
            remote_addr="127.0.0.1",
            headers={"Content-Type": "application/json", "X-Forwarded-For": "10.0.0.1"},
            body=BODY,
            trade_no="T1",
            verdict="accepted",
            detail=detail,
            response_status=200,
        )
        session.add(message)
        session.commit()
        return message.id


def _get(live_app: LiveApp, message_id: int) -> NotifyMessage:
    with live_app.session() as session:
        return session.scalars(select(NotifyMessage).where(NotifyMessage.id == message_id)).one()


def test_purge_blanks_old_bodies_and_keeps_the_audit_trail(live_app: LiveApp) -> None:
    old = _add(live_app, timedelta(days=100), detail="overpaid: KRW 20000 received")
    older = _add(live_app, timedelta(days=400))
    fresh = _add(live_app, timedelta(days=10))
    before = _get(live_app, old)

    with live_app.session() as session:
        assert purge_notify_bodies(session, timedelta(days=90), utcnow()) == 2

    for message_id in (old, older):
        purged = _get(live_app, message_id)
        assert purged.body == "" and purged.headers == {}
        assert purged.detail is not None and purged.detail.endswith(PURGED_MARKER)
        # What the audit needs is untouched.
        assert (purged.verdict, purged.trade_no, purged.response_status) == ("accepted", "T1", 200)
        assert purged.provider == "paypro_kr" and purged.remote_addr == "127.0.0.1"
    assert _get(live_app, old).received_at == before.received_at
    assert _get(live_app, old).detail == f"overpaid: KRW 20000 received {PURGED_MARKER}"
    kept = _get(live_app, fresh)
    assert kept.body == BODY and kept.headers and kept.detail is None

    # Idempotent: a second run purges nothing and does not stack markers.
    with live_app.session() as session:
        assert purge_notify_bodies(session, timedelta(days=90), utcnow()) == 0
    assert _get(live_app, old).detail == f"overpaid: KRW 20000 received {PURGED_MARKER}"


def test_purge_refuses_a_non_positive_limit(live_app: LiveApp) -> None:
    with live_app.session() as session, pytest.raises(ValueError):
        purge_notify_bodies(session, timedelta(0), utcnow())


def test_cli_purge_notifies_days_and_config_default(live_app: LiveApp) -> None:
    month_old = _add(live_app, timedelta(days=31))
    quarter_old = _add(live_app, timedelta(days=91))
    runner = live_app.app.test_cli_runner()

    result = runner.invoke(args=["purge-notifies"])  # default: 90 days
    assert result.exit_code == 0, result.output
    assert "purged 1 notify message(s) older than 90 day(s)" in result.output
    assert _get(live_app, quarter_old).body == ""
    assert _get(live_app, month_old).body == BODY

    result = runner.invoke(args=["purge-notifies", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "purged 1 notify message(s)" in result.output
    assert _get(live_app, month_old).body == ""

    assert runner.invoke(args=["purge-notifies", "--days", "0"]).exit_code != 0


@pytest.mark.app_config(notify_retention_days=7)
def test_cli_uses_configured_retention(live_app: LiveApp) -> None:
    week_old = _add(live_app, timedelta(days=8))
    result = live_app.app.test_cli_runner().invoke(args=["purge-notifies"])
    assert "older than 7 day(s)" in result.output
    assert _get(live_app, week_old).body == ""


def test_retention_days_validation() -> None:
    assert retention_days(None) == 90
    assert retention_days("30") == 30
    for bad in (0, -1, "soon", 1.5, True):
        with pytest.raises(ValueError):
            retention_days(bad)


def test_purged_detail_fits_the_column() -> None:
    assert purged_detail(None) == PURGED_MARKER
    long = purged_detail("x" * 500)
    assert len(long) <= 500 and long.endswith(PURGED_MARKER)
