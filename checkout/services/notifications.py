"""Provider notifies: stored raw first, verified, applied once, then acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.domain.states import EventSource
from checkout.models import NotifyMessage, PaymentAttempt
from checkout.providers.base import Ack, NotifyError, PaymentProvider
from checkout.services.lifecycle import Verdict, apply_update

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
    instance = provider.config.name
    message = NotifyMessage(
        provider=instance,
        remote_addr=remote_addr,
        headers={_no_nul(k): _no_nul(v) for k, v in headers.items()},
        body=_no_nul(body.decode("utf-8", errors="replace")),
        verdict=Verdict.RECEIVED,
    )
    session.add(message)
    session.commit()  # the raw message is kept whatever happens next

    try:
        update = provider.parse_notify(headers, body)
    except NotifyError as error:
        return _finish(session, message, Verdict(error.verdict), error.message, error.http_status)

    message.trade_no = update.trade_no[:64]
    attempt = session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.trade_no == update.trade_no, PaymentAttempt.provider == instance)
        .with_for_update()  # concurrent duplicates queue here (PostgreSQL); SQLite serialises
    ).one_or_none()
    if attempt is None:
        return _finish(session, message, Verdict.UNKNOWN_TRADE, "no such trade number", 404)
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
        log.warning(
            "notify rejected provider=%s id=%s verdict=%s", message.provider, message.id, verdict
        )
    message.verdict = verdict
    message.detail = _no_nul(detail or "")[:500] or None
    message.response_status = response.status
    session.commit()  # the acknowledgement goes out only after this commit
    return response
