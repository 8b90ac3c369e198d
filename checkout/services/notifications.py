"""Provider notifies: stored raw with their verdict, verified, applied once, then acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from checkout.domain.states import EventSource
from checkout.models import NotifyMessage, PaymentAttempt, utcnow
from checkout.providers.base import Ack, NotifyError, PaymentProvider, freshness_fields
from checkout.services.lifecycle import Verdict, apply_update, mark_checkout_locked
from checkout.services.settle import plan_settlement, read_locked, write_settlement

log = logging.getLogger(__name__)

# Verdicts after which the provider must stop retrying: we have the message.
ACKNOWLEDGED = frozenset(
    {
        Verdict.ACCEPTED,
        Verdict.NO_CHANGE,
        Verdict.DUPLICATE,
        Verdict.CONFLICT,
        Verdict.AMOUNT_MISMATCH,
    }
)


@dataclass(frozen=True)
class NotifyResponse:
    status: int
    body: str
    content_type: str
    verdict: Verdict


def receive_notify(
    session: Session,
    provider: PaymentProvider,
    headers: Mapping[str, str],
    body: bytes,
    remote_addr: str | None,
) -> NotifyResponse:
    """Store, verify and apply one notify in one transaction; the answer follows its commit.

    The raw message is written in the same transaction as its effects (one commit, not two).
    If processing fails, that transaction is rolled back and the raw message is stored on its
    own, unprocessed, before the error propagates: every notify that reached us is kept, and
    the provider, answered with an error, sends it again.
    """
    raw = _raw_fields(provider, headers, body, remote_addr)
    try:
        return _process(session, provider, raw, headers, body)
    except Exception:
        session.rollback()
        kept = NotifyMessage(
            **raw,
            claimed_trade_no=_claimed_trade_no(provider, headers, body),
            detail="processing failed; the provider will retry",
        )
        session.add(kept)
        session.commit()
        raise


def _raw_fields(
    provider: PaymentProvider, headers: Mapping[str, str], body: bytes, remote_addr: str | None
) -> dict[str, Any]:
    """The notify as received (NotifyMessage's columns), before any verdict. The trade
    number it claims is added where it is stored: a verified notify names its own, any other
    is read from the body without trusting it (_claimed_trade_no)."""
    return {
        "provider": provider.config.name,
        "remote_addr": remote_addr,
        "headers": {_no_nul(k): _no_nul(v) for k, v in headers.items()},
        "body": _no_nul(body.decode("utf-8", errors="replace")),
        "verdict": Verdict.RECEIVED,
        **freshness_fields(provider, headers),  # TeemoPay's timestamp and nonce headers
    }


def _stored(session: Session, raw: dict[str, Any], **more: Any) -> NotifyMessage:
    """The notify as an ORM row of this transaction (written at its commit)."""
    message = NotifyMessage(**raw, **more)
    session.add(message)
    return message


def _claimed_trade_no(
    provider: PaymentProvider, headers: Mapping[str, str], body: bytes
) -> str | None:
    """What the body says it is about, before any check: the inbox shows a forged or
    misrouted notify on the checkout it names. Best effort; it must never stop the store."""
    try:
        claimed = provider.claimed_trade_no(headers, body)
    except Exception:
        log.warning("claimed trade number unreadable provider=%s", provider.config.name)
        return None
    return _no_nul(claimed)[:64] if claimed else None


def _process(
    session: Session,
    provider: PaymentProvider,
    raw: dict[str, Any],
    headers: Mapping[str, str],
    body: bytes,
) -> NotifyResponse:
    instance = provider.config.name
    try:
        update = provider.parse_notify(headers, body)
    except NotifyError as error:
        claimed = _claimed_trade_no(provider, headers, body)
        message = _stored(session, raw, claimed_trade_no=claimed)
        return _finish(session, message, Verdict(error.verdict), error.message, error.http_status)

    trade_no = update.trade_no[:64]
    # The attempt and its checkout, both rows locked (concurrent duplicates queue here on
    # PostgreSQL; SQLite serialises writers). Expected money for a live attempt, nearly
    # every notify on a busy day, is settled and stored in one write (services/settle.py).
    row = read_locked(session, instance, update.trade_no)
    if row is None:
        message = _stored(session, raw, trade_no=trade_no, claimed_trade_no=trade_no)
        return _finish(session, message, Verdict.UNKNOWN_TRADE, "no such trade number", 404)
    ack = provider.notify_ack
    settlement = plan_settlement(row, update)
    # The one-write settlement's insert has no freshness columns yet: such notifies take the
    # general path, which leaves the same rows (tests/test_settle.py) and stores them.
    if settlement is not None and ack is not None and "header_nonce" not in raw:
        stored = {
            **raw,
            "trade_no": trade_no,
            "claimed_trade_no": trade_no,
            "verdict": Verdict.ACCEPTED,
            "response_status": ack.status,
            "response_body": ack.body[:1000],
        }
        write_settlement(session, settlement, stored, utcnow())
        session.commit()  # the acknowledgement goes out only after this commit
        log.info(
            "notify provider=%s trade_no=%s status=%s verdict=%s",
            instance,
            trade_no,
            update.status,
            Verdict.ACCEPTED,
        )
        return NotifyResponse(ack.status, ack.body, ack.content_type, Verdict.ACCEPTED)

    # Everything else goes through the general path (lifecycle.apply_update).
    message = _stored(session, raw, trade_no=trade_no, claimed_trade_no=trade_no)
    with session.no_autoflush:
        attempt = session.scalars(
            select(PaymentAttempt)
            .where(PaymentAttempt.trade_no == update.trade_no, PaymentAttempt.provider == instance)
            .options(joinedload(PaymentAttempt.checkout, innerjoin=True))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
    if attempt is None:
        return _finish(session, message, Verdict.UNKNOWN_TRADE, "no such trade number", 404)
    mark_checkout_locked(session, attempt.checkout)
    message.attempt_id = attempt.id
    verdict = apply_update(session, attempt, update, source=EventSource.NOTIFY)
    detail = (
        attempt.review_reason if verdict in (Verdict.CONFLICT, Verdict.AMOUNT_MISMATCH) else None
    )
    log.info(
        "notify provider=%s trade_no=%s status=%s verdict=%s",
        instance,
        attempt.trade_no,
        update.status,
        verdict,
    )
    return _finish(session, message, verdict, detail, None, ack)


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL: a forged body with one must not make a 500.

    No provider sends NUL; U+FFFD marks where it was, as for undecodable bytes.
    """
    return text.replace("\x00", "\ufffd")


def _finish(
    session: Session,
    message: NotifyMessage,
    verdict: Verdict,
    detail: str | None,
    status: int | None,
    ack: Ack | None = None,
) -> NotifyResponse:
    if verdict in ACKNOWLEDGED and ack is not None:
        response = NotifyResponse(ack.status, ack.body, ack.content_type, verdict)
    else:
        response = NotifyResponse(
            status or 400, verdict.value.replace("_", " "), "text/plain; charset=utf-8", verdict
        )
    message.verdict = verdict
    message.detail = _no_nul(detail or "")[:500] or None
    message.response_status = response.status
    message.response_body = response.body[:1000]  # what the provider got from us
    session.commit()  # the acknowledgement goes out only after this commit
    if response.verdict not in ACKNOWLEDGED or ack is None:
        log.warning(
            "notify rejected provider=%s id=%s verdict=%s", message.provider, message.id, verdict
        )
    return response
