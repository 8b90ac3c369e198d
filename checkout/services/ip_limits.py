"""PayPro's per-payer-IP daily rule, checked before we call PayPro.

PayPro refuses a payer IP after 10 payment attempts, or 3 successful payments, in a day.
Its refusal would come only after we had written an attempt and shown the shopper an
error, so we count ourselves first: every attempt at any PayPro instance (they share one
PayPro account's view of the IP) since the start of the day in the instance's country
(Korea: Asia/Seoul, Mexico: America/Mexico_City), from `payment_attempts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, case, func, literal_column, select
from sqlalchemy.orm import Session

from checkout.domain.states import AttemptStatus
from checkout.providers.base import ProviderConfig
from checkout.providers.registry import SPECS, timezone_of
from checkout.store import statements
from checkout.store.models import PaymentAttempt

DEFAULT_DAILY_ATTEMPTS = 10
DEFAULT_DAILY_SUCCESSES = 3
# Money moved: these count as PayPro's "successful" payments.
SUCCESSFUL = (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID)


@dataclass(frozen=True)
class IpLimitVerdict:
    allowed: bool
    attempts: int  # PayPro attempts from this IP today (local day)
    successes: int
    max_attempts: int
    max_successes: int
    reason: str | None = None  # "attempts" | "successes" when refused


def day_start_utc(now: datetime, timezone: str) -> datetime:
    """Midnight of `now`'s day in `timezone`, as an aware UTC datetime."""
    zone = ZoneInfo(timezone)
    local_day = now.astimezone(zone).date()
    return datetime.combine(local_day, time.min, tzinfo=zone).astimezone(UTC)


def next_day_start(instance: ProviderConfig, now: datetime | None = None) -> datetime:
    """When the instance's day rule resets: the next local midnight, as aware UTC."""
    from datetime import timedelta

    zone = timezone_of(instance)
    return day_start_utc((now or datetime.now(UTC)) + timedelta(days=1), zone)


def _count_statement(instances: int) -> Any:
    """One IP's PayPro attempts and successes since a moment, over `instances` instances."""
    columns = PaymentAttempt.__table__.c
    return select(
        func.count(PaymentAttempt.id),
        func.coalesce(
            func.sum(
                case(
                    (
                        PaymentAttempt.status.in_(
                            [
                                statements.param(f"successful_{i}", columns.status)
                                for i in range(len(SUCCESSFUL))
                            ]
                        ),
                        literal_column("1"),
                    ),
                    else_=literal_column("0"),
                )
            ),
            literal_column("0"),
        ),
    ).where(
        PaymentAttempt.provider.in_(
            [statements.param(f"instance_{i}", columns.provider) for i in range(instances)]
        ),
        PaymentAttempt.payer_ip == statements.param("payer_ip", columns.payer_ip),
        PaymentAttempt.created_at >= statements.param("since", columns.created_at),
    )


def _lock_statement() -> Any:
    return select(
        func.pg_advisory_xact_lock(
            func.hashtextextended(bindparam("key", type_=String), literal_column("0"))
        )
    )


def check_paypro_ip(
    session: Session,
    providers: Mapping[str, ProviderConfig],
    instance: ProviderConfig,
    payer_ip: str,
    now: datetime | None = None,
) -> IpLimitVerdict:
    """Whether `payer_ip` may start another payment at PayPro `instance` today.

    Inside the transaction that claims a checkout: on PostgreSQL the payer IP's lock is
    taken first and held until the attempt is written, so parallel submits from one IP
    cannot all pass the rule (a transaction-level advisory lock; taken again by a second
    check in the same transaction, it is held once more, harmlessly). The lock and the
    count go in one round trip as two statements: the count's snapshot is taken once the
    lock is held, so it sees the attempt its previous holder wrote. SQLite: the write
    transaction (BEGIN IMMEDIATE) already lets one writer in at a time.

    Not PayPro, or no IP to count by: always allowed (there is nothing to enforce).
    """
    max_attempts = int(instance.settings.get("ip_daily_attempts", DEFAULT_DAILY_ATTEMPTS))
    max_successes = int(instance.settings.get("ip_daily_successes", DEFAULT_DAILY_SUCCESSES))
    spec = SPECS.get(instance.type)
    if spec is None or not spec.per_ip_daily_rule or not payer_ip:
        return IpLimitVerdict(True, 0, 0, max_attempts, max_successes)
    since = day_start_utc(now or datetime.now(UTC), spec.timezone(instance))
    # Every instance of the type counts (they share the provider's view of the IP); a live
    # deployment's sandbox twins (test mode) count apart from the live instances.
    instances = [
        name
        for name, cfg in providers.items()
        if cfg.type == instance.type and cfg.sandbox == instance.sandbox
    ]
    params: dict[str, Any] = {"payer_ip": payer_ip, "since": since}
    params.update({f"successful_{i}": str(status) for i, status in enumerate(SUCCESSFUL)})
    params.update({f"instance_{i}": name for i, name in enumerate(instances)})
    count = (
        (f"{instance.type}-ip-count", len(instances)),
        partial(_count_statement, len(instances)),
        params,
    )
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        key = f"{instance.type}-ip:{payer_ip}"
        lock = ((f"{instance.type}-ip-lock",), _lock_statement, {"key": key})
        _locked, [(attempts, successes)] = statements.run(connection, [lock, count])
    else:
        [(attempts, successes)] = statements.run(connection, [count])[0]
    attempts, successes = int(attempts), int(successes)
    reason = None
    if successes >= max_successes:
        reason = "successes"
    elif attempts >= max_attempts:
        reason = "attempts"
    return IpLimitVerdict(reason is None, attempts, successes, max_attempts, max_successes, reason)
