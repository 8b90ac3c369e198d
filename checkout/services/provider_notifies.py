"""Provider notifies, pay-ins and payouts alike: one pipeline.

Route (the web layer picks the `Inbound`: a pay-in URL, PayPro's shared one, or a payout
URL), read once (`read_notify`: the provider verifies the raw body and maps it, one parse),
then `receive_notify`: decide with the pure rule (`domain.ledger.provider_reported` for a
pay-in, `domain.refunds.payout_reported` for a payout), write with the one ledger writer
and the stored message in one transaction, and answer from the one verdict table
(`domain.ledger.Verdict`, README "Each stored notify has a verdict") only after its commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.domain import refunds as refund_rules
from checkout.domain.ledger import MoneyReporting, PaymentUpdate, Verdict, provider_reported
from checkout.domain.refunds import RefundError
from checkout.domain.states import EventSource
from checkout.providers.base import Ack, PaymentProvider, freshness_fields
from checkout.providers.errors import NotifyError
from checkout.providers.payouts import PayoutProvider, PayoutUpdate
from checkout.store.db import is_lock_timeout
from checkout.store.ledger import (
    load_refunds,
    load_state_for_trade,
    write_plan,
    write_refund_plan,
)
from checkout.store.models import Checkout, NotifyMessage, Refund, utcnow

log = logging.getLogger(__name__)

# Verdicts after which the provider must stop retrying: we have the message.
ACKNOWLEDGED = frozenset(
    {
        Verdict.ACCEPTED,
        Verdict.NO_CHANGE,
        Verdict.DUPLICATE,
        Verdict.STALE,
        Verdict.CONFLICT,
        Verdict.AMOUNT_MISMATCH,
    }
)
# Verdicts whose stored row says why (what the rule saw), for the operators' inbox.
EXPLAINED = frozenset({Verdict.CONFLICT, Verdict.AMOUNT_MISMATCH, Verdict.STALE})
# Verdicts of a notify that may not verify: the only ones counted against its source.
UNVERIFIED = frozenset({Verdict.BAD_SIGNATURE, Verdict.MALFORMED})


# A notify whose rows stayed locked past the lock timeout: stored unprocessed, and the
# provider told to retry (every provider retries a non-2xx answer).
BUSY_STATUS = 503
BUSY_BODY = "busy, retry later"
BUSY_DETAIL = "rows locked past the lock timeout; the provider will retry"

Update = PaymentUpdate | PayoutUpdate


@dataclass(frozen=True)
class Inbound:
    """Where a notify came in: the instance, how its URL's notifies are read (verified and
    mapped in one parse), and the acknowledgement that URL's provider expects."""

    instance: str
    read: Callable[[Mapping[str, str], bytes], Update]
    claimed_trade_no: Callable[[Mapping[str, str], bytes], str | None]
    ack: Ack
    money_reporting: MoneyReporting
    provider: Any  # the client, for its freshness headers (TeemoPay's timestamp and nonce)


def payin_inbound(provider: PaymentProvider) -> Inbound:
    """`/notify/<instance>`. A provider whose one URL carries pay-in and payout results
    (PayPro) reads both there with its `parse_shared_notify`, verified and parsed once."""
    shared = getattr(provider, "parse_shared_notify", None)
    return Inbound(
        provider.config.name,
        shared or provider.parse_notify,
        provider.claimed_trade_no,
        provider.notify_ack,
        provider.money_reporting,
        provider,
    )


def payout_inbound(instance: str, payouts: PayoutProvider) -> Inbound:
    """`/notify/<instance>/payout`: payout results only."""
    return Inbound(
        instance,
        payouts.parse_payout_notify,
        lambda headers, body: None,  # a refused payout notify names nothing we search by
        payouts.notify_ack,
        MoneyReporting.TOTAL,  # unused: payouts move no money in
        payouts,
    )


@dataclass(frozen=True)
class NotifyReading:
    """A notify read once: the provider's word (`update`) or why it was refused."""

    update: Update | None
    error: NotifyError | None = None
    unreadable: str | None = None  # what made the parser fail (not a NotifyError)

    @property
    def verified(self) -> bool:
        """The provider signed it (even if it cannot be mapped): never counted against its
        source, never refused by the notify limit."""
        return self.update is not None or (self.error is not None and self.error.verified)


def read_notify(inbound: Inbound, headers: Mapping[str, str], body: bytes) -> NotifyReading:
    """Verify and map the raw body, once. Nothing is stored and no row is read."""
    try:
        return NotifyReading(inbound.read(headers, body))
    except NotifyError as error:
        return NotifyReading(None, error=error)
    except Exception as error:  # untrusted bytes: whatever a parser does, it is "malformed"
        # RecursionError, a mapping's TypeError on a strange shape, ...: never a 500 with
        # a traceback per request; a 400 counted against the source's notify limit.
        log.warning(
            "notify unreadable provider=%s error=%s", inbound.instance, type(error).__name__
        )
        return NotifyReading(None, unreadable=type(error).__name__)


@dataclass(frozen=True)
class NotifyResponse:
    status: int
    body: str
    content_type: str
    verdict: Verdict


def receive_notify(
    session: Session,
    inbound: Inbound,
    headers: Mapping[str, str],
    body: bytes,
    remote_addr: str | None,
    reading: NotifyReading | None = None,
) -> NotifyResponse:
    """Store, decide and apply one notify in one transaction; the answer follows its commit.

    `reading`: the body as `read_notify` read it (the web layer reads it first, for the
    notify limit); read here otherwise. The raw message is written in the same transaction
    as its effects (one commit). If processing fails, that transaction is rolled back and
    the raw message is stored on its own, unprocessed, before the error propagates: every
    notify that reached us is kept, and the provider, answered with an error, sends it
    again. Rows locked past the lock timeout are such a failure, answered at once with a
    retryable 503 (BUSY_STATUS).
    """
    if reading is None:
        reading = read_notify(inbound, headers, body)
    raw = _raw_fields(inbound, headers, body, remote_addr)
    try:
        return _process(session, inbound, raw, reading, headers, body)
    except Exception as error:
        session.rollback()
        busy = is_lock_timeout(error)
        kept = NotifyMessage(
            **raw,
            claimed_trade_no=_claimed(inbound, reading, headers, body),
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
        log.warning("notify busy provider=%s id=%s: rows locked", inbound.instance, kept.id)
        return NotifyResponse(BUSY_STATUS, BUSY_BODY, "text/plain; charset=utf-8", Verdict.RECEIVED)


def _raw_fields(
    inbound: Inbound, headers: Mapping[str, str], body: bytes, remote_addr: str | None
) -> dict[str, Any]:
    """The notify as received (NotifyMessage's columns), before any verdict. The trade
    number it claims is added where it is stored: a verified notify names its own, any other
    is read from the body without trusting it (_claimed)."""
    return {
        "provider": inbound.instance,
        "remote_addr": remote_addr,
        "headers": {_no_nul(k): _no_nul(v) for k, v in headers.items()},
        "body": _no_nul(body.decode("utf-8", errors="replace")),
        "verdict": Verdict.RECEIVED,
        **freshness_fields(inbound.provider, headers),  # TeemoPay's timestamp and nonce
    }


def _stored(session: Session, raw: dict[str, Any], **more: Any) -> NotifyMessage:
    """The notify as an ORM row of this transaction (written at its commit)."""
    message = NotifyMessage(**{**raw, **more})
    session.add(message)
    return message


def _claimed(
    inbound: Inbound, reading: NotifyReading, headers: Mapping[str, str], body: bytes
) -> str | None:
    """What the body says it is about, before any check: the inbox shows a forged or
    misrouted notify on the checkout it names. Taken from the one read where the parser got
    that far; else best effort; it must never stop the store."""
    if reading.update is not None:
        return _no_nul(_trade_no(reading.update))[:64] or None
    if reading.error is not None and reading.error.body_read:
        claimed = reading.error.claimed_trade_no
    else:
        try:
            claimed = inbound.claimed_trade_no(headers, body)
        except Exception:
            log.warning("claimed trade number unreadable provider=%s", inbound.instance)
            return None
    return _no_nul(claimed)[:64] if claimed else None


def _trade_no(update: Update) -> str:
    return str(update.payout_no if isinstance(update, PayoutUpdate) else update.trade_no)


def _process(
    session: Session,
    inbound: Inbound,
    raw: dict[str, Any],
    reading: NotifyReading,
    headers: Mapping[str, str],
    body: bytes,
) -> NotifyResponse:
    update = reading.update
    if update is None:
        message = _stored(session, raw, claimed_trade_no=_claimed(inbound, reading, headers, body))
        if reading.error is not None:
            error = reading.error
            return _finish(session, message, _refusal(error), error.message, error)
        detail = f"unreadable notify ({reading.unreadable})"
        return _finish(session, message, Verdict.MALFORMED, detail, None)
    if isinstance(update, PayoutUpdate):
        return _payout_reported(session, inbound, raw, update)
    return _payment_reported(session, inbound, raw, update)


def _refusal(error: NotifyError) -> Verdict:
    """The verdict a provider's refusal names (InvalidSignature, MalformedNotify)."""
    try:
        return Verdict(error.verdict)
    except ValueError:  # a NotifyError of no known kind: not the provider's format
        return Verdict.MALFORMED


def _payment_reported(
    session: Session, inbound: Inbound, raw: dict[str, Any], update: PaymentUpdate
) -> NotifyResponse:
    instance = inbound.instance
    trade_no = _no_nul(update.trade_no)[:64]
    # The checkout, its attempts and money under the checkout's row lock (concurrent
    # duplicates queue here on PostgreSQL; SQLite serialises writers); the rule decides; the
    # ledger writes every effect and the stored notify together (one statement on PostgreSQL).
    found = load_state_for_trade(session, instance, update.trade_no)
    if found is None:
        message = _stored(session, raw, trade_no=trade_no, claimed_trade_no=trade_no)
        return _finish(session, message, Verdict.UNKNOWN_TRADE, "no such trade number", None)
    state, attempt_id = found
    now = utcnow()
    plan = provider_reported(
        state, attempt_id, update, inbound.money_reporting, EventSource.NOTIFY, now
    )
    response = _response(plan.verdict, None, inbound.ack)
    stored = {
        **raw,
        "received_at": now,
        "trade_no": trade_no,
        "claimed_trade_no": trade_no,
        "attempt_id": attempt_id,
        **_outcome(plan.verdict, plan.detail, response),
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


def _payout_reported(
    session: Session, inbound: Inbound, raw: dict[str, Any], update: PayoutUpdate
) -> NotifyResponse:
    """A payout's result: the refund rule decides under the checkout's row lock, the ledger
    writes it, the stored notify joins the same transaction (one commit)."""
    instance = inbound.instance
    payout_no = _no_nul(str(update.payout_no or ""))[:64]
    found = session.execute(
        select(Refund.id, Refund.checkout_id, Checkout.store_id, Checkout.order_id)
        .join(Checkout, Checkout.id == Refund.checkout_id)
        .where(Refund.payout_no == payout_no, Refund.provider == instance)
    ).first()
    if found is None:
        message = _stored(session, raw, trade_no=payout_no, claimed_trade_no=payout_no)
        return _finish(session, message, Verdict.UNKNOWN_TRADE, "no refund has this payout", None)
    loaded = load_refunds(session, found.checkout_id)  # the checkout's row lock
    assert loaded is not None
    money, refunds = loaded
    refund = next(r for r in refunds if r.id == found.id)
    now = utcnow()
    try:
        plan = refund_rules.payout_reported(
            money,
            refund,
            str(update.status),
            str(EventSource.NOTIFY),
            now,
            platform_payout_no=update.platform_payout_no,
            failure_code=update.failure_code,
            failure_message=update.failure_message,
        )
    except RefundError as error:  # a payout status the rule does not know
        message = _stored(session, raw, trade_no=payout_no, claimed_trade_no=payout_no)
        return _finish(session, message, Verdict.MALFORMED, error.message, None)
    if plan.changes_anything or plan.review_reason != money.review_reason:
        write_refund_plan(session, money, found.store_id, found.order_id, plan, now)
    verdict = refund_rules.notify_verdict(plan)
    response = _response(verdict, None, inbound.ack)
    detail = plan.detail if verdict == Verdict.CONFLICT else None
    _stored(
        session,
        raw,
        received_at=now,
        trade_no=payout_no,
        claimed_trade_no=payout_no,
        **_outcome(verdict, detail, response),
    )
    session.commit()  # the acknowledgement goes out only after this commit
    log.info(
        "payout notify provider=%s payout_no=%s status=%s verdict=%s",
        instance,
        payout_no,
        update.status,
        verdict,
    )
    return response


def _outcome(verdict: Verdict, detail: str | None, response: NotifyResponse) -> dict[str, Any]:
    """A stored notify's verdict and our answer (the same columns on every path)."""
    shown = (
        detail if verdict in (Verdict.CONFLICT, Verdict.AMOUNT_MISMATCH, Verdict.STALE) else None
    )
    return {
        "verdict": verdict,
        "detail": _no_nul(shown or "")[:500] or None,
        "response_status": response.status,
        "response_body": response.body[:1000],  # what the provider got from us
    }


def _response(verdict: Verdict, error: NotifyError | None, ack: Ack | None) -> NotifyResponse:
    """The one verdict table's answer: the provider's ack for a message we have, else the
    status the table gives (README "Each stored notify has a verdict")."""
    if verdict in ACKNOWLEDGED and ack is not None:
        return NotifyResponse(ack.status, ack.body, ack.content_type, verdict)
    status = error.http_status if error is not None else REFUSED_STATUS.get(verdict, 400)
    return NotifyResponse(
        status, verdict.value.replace("_", " "), "text/plain; charset=utf-8", verdict
    )


# Answers of the verdicts that refuse a message (InvalidSignature says 401 itself).
REFUSED_STATUS = {Verdict.BAD_SIGNATURE: 401, Verdict.MALFORMED: 400, Verdict.UNKNOWN_TRADE: 404}


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
    error: NotifyError | None,
) -> NotifyResponse:
    """A notify refused or about nothing we have: stored with its verdict, committed, then
    answered."""
    response = _response(verdict, error, None)
    message.verdict = verdict
    message.detail = _no_nul(detail or "")[:500] or None
    message.response_status = response.status
    message.response_body = response.body[:1000]  # what the provider got from us
    session.commit()  # the answer goes out only after this commit
    log.warning(
        "notify rejected provider=%s id=%s verdict=%s", message.provider, message.id, verdict
    )
    return response
