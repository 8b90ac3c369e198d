"""Operators, their logins (failed-login locks) and their server-side sessions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, literal, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from checkout.services.errors import OperatorRefused
from checkout.store.models import Operator, OperatorSession, UTCDateTime, utcnow

MIN_PASSWORD_LENGTH = 12
# Compared against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password-for-timing")


def create_operator(session: Session, name: str, password: str) -> Operator:
    name = name.strip()
    if not name or len(name) > 64:
        raise OperatorRefused("the name must be 1 to 64 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorRefused(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    operator = Operator(name=name, password_hash=generate_password_hash(password), active=True)
    session.add(operator)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise OperatorRefused(f"an operator named {name!r} already exists") from None
    return operator


def _operator(session: Session, name: str) -> Operator:
    operator = session.scalars(select(Operator).where(Operator.name == name.strip())).one_or_none()
    if operator is None:
        raise OperatorRefused(f"no operator named {name.strip()!r}")
    return operator


def set_operator_active(session: Session, name: str, active: bool) -> Operator:
    """Deactivate (or reactivate) an operator: an inactive one cannot log in, and every
    session of theirs is revoked on the server at once."""
    operator = _operator(session, name)
    operator.active = active
    if not active:
        revoke_operator_sessions(session, operator.id, utcnow(), "deactivated")
    session.commit()
    return operator


def reset_password(session: Session, name: str, password: str) -> Operator:
    """A new password; every session opened before is revoked on the server, and the
    name's failed-login lock is lifted (the operator is told the new password)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorRefused(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    operator = _operator(session, name)
    operator.password_hash = generate_password_hash(password)
    operator.failed_logins = 0
    operator.locked_until = None
    revoke_operator_sessions(session, operator.id, utcnow(), "password reset")
    session.commit()
    return operator


# ---------------------------------------------------------------- logins and sessions
# Wrong passwords for one name, from any address, before it locks; then each further one
# locks it for LOCK_BASE doubled per failure, at most LOCK_MAX. Attempts during a lock are
# refused unchecked (the right password too) and do not lengthen it.
FREE_FAILURES = 5
LOCK_BASE = timedelta(seconds=30)
LOCK_MAX = timedelta(minutes=15)
# A session's last_seen_at is written at most this often (the idle limit counts from it).
SEEN_EVERY = timedelta(seconds=30)


def lock_after(failures: int) -> timedelta | None:
    """How long `failures` wrong passwords in a row lock the name (None: not yet)."""
    if failures < FREE_FAILURES:
        return None
    return min(LOCK_BASE * 2 ** min(failures - FREE_FAILURES, 20), LOCK_MAX)


def authenticate(
    session: Session, name: str, password: str, at: datetime | None = None
) -> Operator | None:
    """The operator if `password` is theirs and the name is not locked; None otherwise,
    with the same answer and cost for an unknown name, a wrong password and a lock (a
    caller cannot tell which, so names cannot be probed).

    Each attempt is counted, and the lock its count earns is set, in one atomic UPDATE
    before the (slow) password check, and only while the name is not locked: guesses sent
    in parallel each take their own count, so at most FREE_FAILURES of them are ever
    checked before the lock holds. The right password clears both.
    """
    at = at or utcnow()
    operator = session.scalars(select(Operator).where(Operator.name == name)).one_or_none()
    claimed = None
    if operator is not None and operator.active:
        claimed = session.scalar(
            update(Operator)
            .where(
                Operator.id == operator.id,
                or_(Operator.locked_until.is_(None), Operator.locked_until <= at),
            )
            .values(failed_logins=Operator.failed_logins + 1, locked_until=_lock_for_next(at))
            .returning(Operator.failed_logins)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    if operator is None or claimed is None:  # unknown, inactive or locked: nothing checked
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(operator.password_hash, password):
        return None  # counted, and locked if it was one too many, above
    session.refresh(operator)
    operator.failed_logins = 0
    operator.locked_until = None
    operator.last_login_at = at
    session.commit()
    return operator


def _lock_for_next(at: datetime) -> Any:
    """SQL for the lock the attempt being counted earns (NULL while still free)."""
    count = Operator.failed_logins + 1
    steps = range(FREE_FAILURES, FREE_FAILURES + 12)  # past these, LOCK_MAX
    return case(
        (count < FREE_FAILURES, null()),
        *[(count == n, literal(at + lock_after(n), UTCDateTime())) for n in steps],  # type: ignore[operator]
        else_=literal(at + LOCK_MAX, UTCDateTime()),
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session, operator: Operator, at: datetime, remote_addr: str | None
) -> str:
    """A new server-side session; returns the token for the cookie (stored only hashed)."""
    token = secrets.token_urlsafe(32)
    session.add(
        OperatorSession(
            token_sha256=_token_hash(token),
            operator_id=operator.id,
            created_at=at,
            last_seen_at=at,
            remote_addr=(remote_addr or "")[:64] or None,
        )
    )
    session.commit()
    return token


def session_operator(
    session: Session, token: str, at: datetime, idle: timedelta, max_age: timedelta
) -> Operator | None:
    """The operator whose live session `token` is, or None: unknown, revoked, idle longer
    than `idle`, older than `max_age` or of an inactive operator (those are revoked now)."""
    row = session.scalars(
        select(OperatorSession).where(OperatorSession.token_sha256 == _token_hash(token))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    reason = None
    if at - row.last_seen_at > idle:
        reason = "idle"
    elif at - row.created_at > max_age:
        reason = "expired"
    elif not row.operator.active:
        reason = "deactivated"
    if reason is not None:
        row.revoked_at, row.revoked_reason = at, reason
        session.commit()
        return None
    if at - row.last_seen_at > SEEN_EVERY:  # not a write on every page
        row.last_seen_at = at
        session.commit()
    return row.operator


def revoke_session(session: Session, token: str, at: datetime, reason: str) -> None:
    session.execute(
        update(OperatorSession)
        .where(
            OperatorSession.token_sha256 == _token_hash(token),
            OperatorSession.revoked_at.is_(None),
        )
        .values(revoked_at=at, revoked_reason=reason)
    )
    session.commit()


def revoke_operator_sessions(session: Session, operator_id: int, at: datetime, reason: str) -> None:
    """Every live session of the operator ends (in the caller's transaction)."""
    session.execute(
        update(OperatorSession)
        .where(OperatorSession.operator_id == operator_id, OperatorSession.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )
