"""Provider notifies: stored raw with their verdict, verified, applied once, then acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from checkout.domain.states import EventSource
from checkout.models import NotifyMessage, PaymentAttempt
from checkout.providers.base import Ack, NotifyError, PaymentProvider
from checkout.services.lifecycle import Verdict, apply_update, mark_checkout_locked

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
    message = _raw_message(provider.config.name, headers, body, remote_addr)
    session.add(message)
    try:
        return _process(session, provider, message, headers, body)
    except Exception:
        session.rollback()
        kept = _raw_message(provider.config.name, headers, body, remote_addr)
        kept.detail = "processing failed; the provider will retry"
        session.add(kept)
        session.commit()
        raise


def _raw_message(
    instance: str, headers: Mapping[str, str], body: bytes, remote_addr: str | None
) -> NotifyMessage:
    return NotifyMessage(
        provider=instance,
        remote_addr=remote_addr,
        headers={_no_nul(k): _no_nul(v) for k, v in headers.items()},
        body=_no_nul(body.decode("utf-8", errors="replace")),
        verdict=Verdict.RECEIVED,
    )


def _process(
    session: Session,
    provider: PaymentProvider,
    message: NotifyMessage,
    headers: Mapping[str, str],
    body: bytes,
) -> NotifyResponse:
    instance = provider.config.name
    try:
        update = provider.parse_notify(headers, body)
    except NotifyError as error:
        return _finish(session, message, Verdict(error.verdict), error.message, error.http_status)

    message.trade_no = update.trade_no[:64]
    # The attempt and its checkout in one query, both rows locked (concurrent duplicates
    # queue here on PostgreSQL; SQLite serialises writers). The message is flushed with
    # everything else at commit, not before this query.
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
    return _finish(session, message, verdict, detail, None, provider.notify_ack)


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
    session.commit()  # the acknowledgement goes out only after this commit
    if response.verdict not in ACKNOWLEDGED or ack is None:
        log.warning(
            "notify rejected provider=%s id=%s verdict=%s", message.provider, message.id, verdict
        )
    return response
