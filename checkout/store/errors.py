"""Errors the store raises: the database gave no turn in time, or a write found its rows
moved under a plan (a writer without the lock: a bug). Both are retryable or not as said,
with a stable `code`, like the other floors' errors (services/errors.py, domain/errors.py,
providers/errors.py).
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what it was asked; `code` is stable, `retryable` says whether
    the same write may work later."""

    code = "store_error"
    retryable = False


class WriteTurnTimeout(StoreError, TimeoutError):
    """No turn to write to SQLite within the configured wait (a lock held too long)."""

    code = "database_busy"
    retryable = True


class RefundWriteConflict(StoreError, RuntimeError):
    """The refund was not in the status the plan was decided on (a writer without the
    checkout's lock: a bug); nothing of the plan is written."""

    code = "refund_write_conflict"
    retryable = False
