"""The operator console's use cases, one module per feature of the console; the names are
also here for the CLI, the metrics and the tests.

May import what the services may (checkout/services/__init__.py) and the other use cases.
"""

from __future__ import annotations

from checkout.services.admin.actions import (
    operator_cancel,
    operator_mark_review,
    operator_query,
    operator_resend,
    operator_resolve_review,
    record_action,
)
from checkout.services.admin.checkouts import (
    PAGE_SIZE,
    CheckoutFilter,
    CheckoutPage,
    checkout_page,
    needs_review,
    payer_condition,
    search_checkouts,
)
from checkout.services.admin.freshness import freshness_flags
from checkout.services.admin.health import (
    counts_by,
    database_gauges,
    database_ready,
    outbox_backlog,
)
from checkout.services.admin.notifies import NotifyInbox, notifies, notify_inbox
from checkout.services.admin.operators import (
    FREE_FAILURES,
    LOCK_BASE,
    LOCK_MAX,
    MIN_PASSWORD_LENGTH,
    SEEN_EVERY,
    OperatorRefused,
    authenticate,
    create_operator,
    lock_after,
    open_session,
    reset_password,
    revoke_operator_sessions,
    revoke_session,
    session_operator,
    set_operator_active,
)
from checkout.services.admin.providers import (
    STATS_WINDOWS,
    CallStats,
    circuit_views,
    failover_stats,
    provider_stats,
)
from checkout.services.admin.queue import (
    WaitingCounts,
    WaitingQueue,
    waiting_counts,
    waiting_queue,
)
from checkout.services.admin.summary import (
    DailySummary,
    ProviderDay,
    StoreDay,
    daily_summary,
    format_amount,
    format_amounts,
    review_reason_of,
    store_label,
)

__all__ = [
    "FREE_FAILURES",
    "LOCK_BASE",
    "LOCK_MAX",
    "MIN_PASSWORD_LENGTH",
    "PAGE_SIZE",
    "SEEN_EVERY",
    "STATS_WINDOWS",
    "CallStats",
    "CheckoutFilter",
    "CheckoutPage",
    "DailySummary",
    "NotifyInbox",
    "OperatorRefused",
    "ProviderDay",
    "StoreDay",
    "WaitingCounts",
    "WaitingQueue",
    "authenticate",
    "checkout_page",
    "circuit_views",
    "counts_by",
    "create_operator",
    "daily_summary",
    "database_gauges",
    "database_ready",
    "failover_stats",
    "format_amount",
    "format_amounts",
    "freshness_flags",
    "lock_after",
    "needs_review",
    "notifies",
    "notify_inbox",
    "open_session",
    "operator_cancel",
    "operator_mark_review",
    "operator_query",
    "operator_resend",
    "operator_resolve_review",
    "outbox_backlog",
    "payer_condition",
    "provider_stats",
    "record_action",
    "reset_password",
    "review_reason_of",
    "revoke_operator_sessions",
    "revoke_session",
    "search_checkouts",
    "session_operator",
    "set_operator_active",
    "store_label",
    "waiting_counts",
    "waiting_queue",
]
