"""Why a notify's freshness headers look wrong: shown on the inbox and on a checkout's page."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkout.store.models import NotifyMessage


def freshness_flags(
    session: Session, rows: list[NotifyMessage], max_ages: Mapping[str, int]
) -> dict[int, list[str]]:
    """Why each notify's freshness headers look wrong (notify id -> reasons): for providers
    that send them (`max_ages`: instance -> window in seconds), a timestamp outside the window
    or missing, and, for any, a nonce some earlier notify of the same instance carried (a
    replay). Shown, never acted on: a replay applies as a duplicate and moves no money."""
    nonces = {n.header_nonce for n in rows if n.header_nonce}
    first: dict[tuple[str, str], int] = {}
    if nonces:
        for provider, nonce, first_id in session.execute(
            select(NotifyMessage.provider, NotifyMessage.header_nonce, func.min(NotifyMessage.id))
            .where(NotifyMessage.header_nonce.in_(nonces))
            .group_by(NotifyMessage.provider, NotifyMessage.header_nonce)
        ):
            first[(provider, nonce)] = first_id
    flags: dict[int, list[str]] = {}
    for n in rows:
        found = []
        max_age = max_ages.get(n.provider)
        if max_age is not None:
            if n.header_timestamp is None:
                found.append("no usable timestamp header")
            else:
                skew = (n.received_at - n.header_timestamp).total_seconds()
                if skew > max_age:
                    found.append(
                        f"stale: sent {int(skew)} s before it arrived (window {max_age} s)"
                    )
                elif skew < -max_age:
                    found.append(f"timestamp {int(-skew)} s in the future (window {max_age} s)")
            if not n.header_nonce:
                found.append("no nonce header")
        if n.header_nonce:
            seen = first.get((n.provider, n.header_nonce))
            if seen is not None and seen != n.id:
                found.append(f"nonce seen before (notify #{seen}): a replay")
        if found:
            flags[n.id] = found
    return flags
