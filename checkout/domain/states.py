"""The one state machine for checkouts and payment attempts.

Every status change goes through `attempt_transition` / `checkout_transition`;
a final status never moves, with one exception: money is never dropped. Money that the
provider reports after an attempt expired or failed is kept, so an EXPIRED or FAILED
attempt may still become PAID or PARTIALLY_PAID ("paid late", "paid after failed", both
flagged for review), an EXPIRED checkout may still become PAID or PARTIALLY_PAID, and a
PARTIALLY_PAID attempt or checkout becomes PAID when the rest of the money arrives.
An operator may cancel a PENDING checkout with nothing paid (its live attempt is still
reconciled; money arriving later is kept on the cancelled checkout and flagged).
Repeating the current status is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from checkout.domain.errors import TransitionError


class _HasStatus(Protocol):
    @property
    def status(self) -> Any: ...


_A = TypeVar("_A", bound=_HasStatus)


class AttemptStatus(StrEnum):
    CREATING = "creating"  # row written, provider not yet answered
    # The create call timed out: the payment may exist at the provider. Live (it blocks a
    # second attempt) until a query or notify says what became of it.
    UNKNOWN = "unknown"
    PENDING = "pending"  # provider accepted; waiting for the shopper or the deposit
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    FAILED = "failed"
    EXPIRED = "expired"


class CheckoutStatus(StrEnum):
    OPEN = "open"  # no live attempt: the shopper may start one
    PENDING = "pending"  # one attempt is live
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


ATTEMPT_FINAL = frozenset(
    {
        AttemptStatus.PAID,
        AttemptStatus.PARTIALLY_PAID,
        AttemptStatus.FAILED,
        AttemptStatus.EXPIRED,
    }
)
ATTEMPT_LIVE = frozenset({AttemptStatus.CREATING, AttemptStatus.UNKNOWN, AttemptStatus.PENDING})
# Attempts whose outcome we must go and ask the provider about (reconciliation).
ATTEMPT_QUERYABLE = frozenset({AttemptStatus.UNKNOWN, AttemptStatus.PENDING})

CHECKOUT_FINAL = frozenset(
    {
        CheckoutStatus.PAID,
        CheckoutStatus.PARTIALLY_PAID,
        CheckoutStatus.EXPIRED,
        CheckoutStatus.CANCELLED,
    }
)

_ATTEMPT_ALLOWED: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.CREATING: frozenset(
        {
            AttemptStatus.UNKNOWN,
            AttemptStatus.PENDING,
            AttemptStatus.PAID,
            AttemptStatus.PARTIALLY_PAID,
            AttemptStatus.FAILED,
        }
    ),
    AttemptStatus.UNKNOWN: frozenset(
        {
            AttemptStatus.PENDING,
            AttemptStatus.PAID,
            AttemptStatus.PARTIALLY_PAID,
            AttemptStatus.FAILED,
            AttemptStatus.EXPIRED,
        }
    ),
    AttemptStatus.PENDING: frozenset(
        {
            AttemptStatus.PAID,
            AttemptStatus.PARTIALLY_PAID,
            AttemptStatus.FAILED,
            AttemptStatus.EXPIRED,
        }
    ),
    # More money for a part-paid order (a second transfer into the same VA).
    AttemptStatus.PARTIALLY_PAID: frozenset({AttemptStatus.PAID}),
    # A deposit that lands after the VA expired is still the shopper's money: kept, flagged.
    AttemptStatus.EXPIRED: frozenset({AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID}),
    # So is money the provider reports for an attempt we had marked failed (a create answer
    # we could not read, a failure notify contradicted later): kept, flagged.
    AttemptStatus.FAILED: frozenset({AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID}),
}

_CHECKOUT_ALLOWED: dict[CheckoutStatus, frozenset[CheckoutStatus]] = {
    # OPEN -> PAID: money for an earlier attempt arrives after the checkout reopened.
    CheckoutStatus.OPEN: frozenset(
        {
            CheckoutStatus.PENDING,
            CheckoutStatus.PAID,
            CheckoutStatus.PARTIALLY_PAID,
            CheckoutStatus.EXPIRED,
            CheckoutStatus.CANCELLED,
        }
    ),
    # A failed attempt puts the checkout back to OPEN so the shopper can retry. An operator
    # may cancel it while nothing is paid (the service checks amount_paid under the lock).
    CheckoutStatus.PENDING: frozenset(
        {
            CheckoutStatus.OPEN,
            CheckoutStatus.PAID,
            CheckoutStatus.PARTIALLY_PAID,
            CheckoutStatus.EXPIRED,
            CheckoutStatus.CANCELLED,
        }
    ),
    # Paid late: money for an attempt that was live when the checkout expired.
    CheckoutStatus.EXPIRED: frozenset({CheckoutStatus.PAID, CheckoutStatus.PARTIALLY_PAID}),
    # The rest of the money arrives (a second transfer): never dropped.
    CheckoutStatus.PARTIALLY_PAID: frozenset({CheckoutStatus.PAID}),
}


class WebhookStatus(StrEnum):
    """Where a webhook event stands in the outbox (WebhookEvent.status)."""

    PENDING = "pending"  # due now or at next_attempt_at
    DELIVERED = "delivered"  # a 2xx answer came back
    FAILED = "failed"  # the retry schedule ran out (an operator may resend)
    SKIPPED = "skipped"  # the store has no webhook_url: kept as the audit trail


class EventSource(StrEnum):
    """Who or what caused a status change (the `state_events.source` column)."""

    CREATE = "create"  # the provider's answer to the create call (or its timeout)
    NOTIFY = "notify"  # a provider notify
    QUERY = "query"  # our query to the provider (reconciliation, return page)
    EXPIRY = "expiry"  # a deadline passed
    OPERATOR = "operator"  # an operator's command in the console
    API = "api"  # the shop, through its API key
    SHOPPER = "shopper"  # the shopper started a payment


def attempt_transition(current: AttemptStatus, target: AttemptStatus) -> bool:
    """Return True if the status changes, False for a repeat; raise if not allowed."""
    if current == target:
        return False
    if target not in _ATTEMPT_ALLOWED.get(current, frozenset()):
        raise TransitionError("attempt", current, target)
    return True


def checkout_transition(current: CheckoutStatus, target: CheckoutStatus) -> bool:
    """Return True if the status changes, False for a repeat; raise if not allowed."""
    if current == target:
        return False
    if target not in _CHECKOUT_ALLOWED.get(current, frozenset()):
        raise TransitionError("checkout", current, target)
    return True


def live_of(attempts: Sequence[_A]) -> _A | None:
    """The attempt that holds the checkout: the newest live one the shopper has not
    abandoned for another way to pay (an abandoned one is still reconciled), if any."""
    live = [
        a for a in attempts if a.status in ATTEMPT_LIVE and getattr(a, "abandoned_at", None) is None
    ]
    return live[-1] if live else None


def latest_of(attempts: Sequence[_A]) -> _A | None:
    """The newest attempt, if any (attempts are kept oldest first)."""
    return attempts[-1] if attempts else None
