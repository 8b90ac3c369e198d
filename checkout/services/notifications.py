"""Provider notifies: stored raw with their verdict, verified, applied once, then acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from checkout.db import is_lock_timeout
from checkout.domain.ledger import Verdict, provider_reported
from checkout.domain.states import EventSource
from checkout.models import NotifyMessage, utcnow
from checkout.providers.base import Ack, PaymentProvider, freshness_fields
from checkout.providers.errors import NotifyError
from checkout.services.ledger import load_state_for_trade, write_plan

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


# A notify whose rows stayed locked past the lock timeout: stored unprocessed, and the
# provider told to retry (every provider retries a non-2xx answer).
BUSY_STATUS = 503
BUSY_BODY = "busy, retry later"
BUSY_DETAIL = "rows locked past the lock timeout; the provider will retry"


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
    the provider, answered with an error, sends it again. Rows locked past the lock timeout
    are such a failure, answered at once with a retryable 503 (BUSY_STATUS).
    """
    raw = _raw_fields(provider, headers, body, remote_addr)
    try:
        return _process(session, provider, raw, headers, body)
    except Exception as error:
        session.rollback()
        busy = is_lock_timeout(error)
        kept = NotifyMessage(
            **raw,
            claimed_trade_no=_claimed_trade_no(provider, headers, body),
            detail=BUSY_DETAIL if busy else "processing failed; the provider will retry",
        )
        if busy:
            kept.response_status, kept.response_body = BUSY_STATUS, BUSY_BODY
        session.add(kept)
        try:
            session.commit()
        except Exception as store_error:
            # SQLite held by a writer outside this app: not even the raw message can be
            # written. The provider is told to retry; it still has the message.
            session.rollback()
            if not (busy and is_lock_timeout(store_error)):
                raise
            log.warning("notify busy provider=%s: not stored, database locked", kept.provider)
            return NotifyResponse(
                BUSY_STATUS, BUSY_BODY, "text/plain; charset=utf-8", Verdict.RECEIVED
            )
        if not busy:
            raise
        # Its rows were locked past lock_timeout (db.DatabaseTimeouts): answered at once
        # with a retryable error, the message kept unprocessed; the provider sends it again.
        log.warning("notify busy provider=%s id=%s: rows locked", provider.config.name, kept.id)
        return NotifyResponse(BUSY_STATUS, BUSY_BODY, "text/plain; charset=utf-8", Verdict.RECEIVED)


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
    except Exception as error:  # untrusted bytes: any failure is "malformed"
        # RecursionError, a mapping's TypeError on a strange shape, ...: never a 500 with
        # a traceback per request; a 400 counted against the source's notify limit.
        log.warning("notify unreadable provider=%s error=%s", instance, type(error).__name__)
        claimed = _claimed_trade_no(provider, headers, body)
        message = _stored(session, raw, claimed_trade_no=claimed)
        detail = f"unreadable notify ({type(error).__name__})"
        return _finish(session, message, Verdict.MALFORMED, detail, 400)

    trade_no = update.trade_no[:64]
    # The checkout, its attempts and money under the checkout's row lock (concurrent
    # duplicates queue here on PostgreSQL; SQLite serialises writers); the rule decides; the
    # ledger writes every effect and the stored notify together (one statement on PostgreSQL).
    found = load_state_for_trade(session, instance, update.trade_no)
    if found is None:
        message = _stored(session, raw, trade_no=trade_no, claimed_trade_no=trade_no)
        return _finish(session, message, Verdict.UNKNOWN_TRADE, "no such trade number", 404)
    state, attempt_id = found
    now = utcnow()
    plan = provider_reported(
        state, attempt_id, update, provider.money_reporting, EventSource.NOTIFY, now
    )
    response = _response(plan.verdict, None, provider.notify_ack)
    detail = plan.detail if plan.verdict in (Verdict.CONFLICT, Verdict.AMOUNT_MISMATCH) else None
    stored = {
        **raw,
        "received_at": now,
        "trade_no": trade_no,
        "claimed_trade_no": trade_no,
        "attempt_id": attempt_id,
        "verdict": plan.verdict,
        "detail": _no_nul(detail or "")[:500] or None,
        "response_status": response.status,
        "response_body": response.body[:1000],
    }
    # Committed here, the COMMIT in the write's round trip: the acknowledgement goes out
    # only after it.
    write_plan(session, state, plan, now, notify=stored, commit=True)
    log.info(
        "notify provider=%s trade_no=%s status=%s verdict=%s",
        instance,
        trade_no,
        update.status,
        plan.verdict,
    )
    return response


def _response(verdict: Verdict, status: int | None, ack: Ack | None) -> NotifyResponse:
    if verdict in ACKNOWLEDGED and ack is not None:
        return NotifyResponse(ack.status, ack.body, ack.content_type, verdict)
    return NotifyResponse(
        status or 400, verdict.value.replace("_", " "), "text/plain; charset=utf-8", verdict
    )


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
    response = _response(verdict, status, ack)
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
