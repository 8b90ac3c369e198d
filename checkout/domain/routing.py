"""Routing a method over its provider instances: pure decisions, no I/O (README "Routing").

A method names one or more routes (provider instances) in priority order. For each submit:
1. `order_routes` puts them in the order to try: as configured, except that neighbouring
   routes carrying a `weight` form a tier whose order is drawn for this submit in proportion
   to the weights (traffic is split; each still backs up the others).
2. Routes that cannot take this payment now are skipped before anything is written
   (`SkipReason`): the amount (PayPro takes whole units only), the payer's details (each
   route validates them with its own rules), our own per-IP rule, an open circuit.
3. The first remaining route is called; on a refusal that proves nothing was created there
   (`failover_reason`) the same submit goes on to the next one. After a read timeout (the
   outcome is unknown) it never does.

Payer rules across routes (`merge_payer_rules`): the form asks every field that any route
uses; a field is required only when every route requires it, and the checks on values (age
range, name length, letters only) are the loosest, so the form accepts anyone whom at least
one route could take. Which routes remain is then decided per route (`payer_fits`): e.g. a
shopper who leaves the date of birth empty, or is over 59, skips PayPro Korea's virtual
account and goes to the next route.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from checkout.domain.payer import Need, Payer, PayerRules, validate_payer


class WeightedRoute(Protocol):
    """A route as ordering sees it (providers.base.RouteConfig is one)."""

    @property
    def weight(self) -> int | None: ...


class FailedCall(Protocol):
    """A provider call's failure as fail-over sees it (providers.base.ProviderError is one)."""

    # True when the request provably never left (no connection): nothing can exist.
    not_sent: bool
    # True when the answer did not come in time: the provider may have acted.
    outcome_unknown: bool


_R = TypeVar("_R", bound=WeightedRoute)


class SkipReason(StrEnum):
    """Why a route was passed over or left: the `reason` label of fail-over metrics too."""

    UNREACHABLE = "unreachable"  # no connection could be made: the request never left
    PROVIDER_REFUSED = "provider_refused"  # a documented refusal that created nothing
    IP_LIMIT = "ip_limit"  # our own count of the provider's per-IP daily rule
    CIRCUIT_OPEN = "circuit_open"  # the instance failed too often lately (services/circuits.py)
    PAYER_RULES = "payer_rules"  # this route cannot take the details the shopper entered
    AMOUNT = "amount"  # this route cannot take this amount (PayPro: whole units only)


@dataclass(frozen=True)
class Skip:
    """A route not tried (or left) and why; `retry_at` when the cause has a known end."""

    provider: str
    reason: SkipReason
    detail: str | None = None  # e.g. the refusal code
    retry_at: datetime | None = None
    limit: int | None = None  # IP_LIMIT: the daily number that was reached

    def describe(self) -> str:
        text = f"{self.provider}: {self.reason}"
        return f"{text} {self.detail}" if self.detail else text


# ---------------------------------------------------------------- order
def order_routes(routes: Sequence[_R], rng: random.Random | None = None) -> list[_R]:
    """The routes in the order to try for one submit (see the module's docstring)."""
    draw = rng or random.Random()
    ordered: list[_R] = []
    tier: list[_R] = []
    for route in [*routes, None]:
        if route is not None and route.weight is not None:
            tier.append(route)
            continue
        if tier:
            ordered.extend(weighted_shuffle(tier, draw))
            tier = []
        if route is not None:
            ordered.append(route)
    return ordered


def weighted_shuffle(routes: Sequence[_R], rng: random.Random) -> list[_R]:
    """One weighted draw without replacement: each place goes to a remaining route with a
    chance proportional to its weight; routes of weight 0 come last, in configured order."""
    pool = [r for r in routes if (r.weight or 0) > 0]
    zero = [r for r in routes if (r.weight or 0) <= 0]
    out: list[_R] = []
    while pool:
        total = sum(r.weight or 0 for r in pool)
        point = rng.uniform(0, total)
        upto = 0.0
        chosen = pool[-1]
        for route in pool:
            upto += route.weight or 0
            if point < upto:
                chosen = route
                break
        out.append(chosen)
        pool.remove(chosen)
    return out + zero


# ---------------------------------------------------------------- payer rules
_NEED_ORDER = {Need.HIDDEN: 0, Need.OPTIONAL: 1, Need.REQUIRED: 2}


def _merged_need(needs: Sequence[Need]) -> Need:
    if all(n == Need.REQUIRED for n in needs):
        return Need.REQUIRED
    if any(n != Need.HIDDEN for n in needs):
        return Need.OPTIONAL
    return Need.HIDDEN


def _loosest(values: Sequence[int | None], pick: type[min] | type[max]) -> int | None:
    """None (no limit) if any route has none, else the loosest bound."""
    if not values or any(v is None for v in values):
        return None
    return pick(v for v in values if v is not None)


def merge_payer_rules(rules: Sequence[PayerRules]) -> PayerRules:
    """What the form asks when any of these routes may serve the submit (module docstring).
    One route: its rules unchanged. The first route gives the mobile country and timezone."""
    if not rules:
        raise ValueError("merge_payer_rules needs at least one route's rules")
    if len(rules) == 1:
        return rules[0]
    first = rules[0]
    asking_birth = [r for r in rules if r.birth_date != Need.HIDDEN]
    return replace(
        first,
        name=_merged_need([r.name for r in rules]),
        email=_merged_need([r.email for r in rules]),
        mobile=_merged_need([r.mobile for r in rules]),
        birth_date=_merged_need([r.birth_date for r in rules]),
        name_max_length=_loosest([r.name_max_length for r in rules], max),
        name_letters_only=all(r.name_letters_only for r in rules),
        # Routes that do not ask the date of birth take any age.
        min_age=_loosest([r.min_age for r in asking_birth], min)
        if len(asking_birth) == len(rules)
        else None,
        max_age=_loosest([r.max_age for r in asking_birth], max)
        if len(asking_birth) == len(rules)
        else None,
    )


def payer_fits(rules: PayerRules, payer: Payer, today: date) -> bool:
    """Whether a route with these rules can take what the shopper entered, checked as the
    form checks it (checkout/domain/payer.py)."""
    data = {
        "first_name": payer.first_name,
        "last_name": payer.last_name,
        "email": payer.email or "",
        "mobile": payer.mobile or "",
        "birth_date": payer.birth_date.isoformat() if payer.birth_date else "",
    }
    _details, errors = validate_payer(rules, data, today)
    return not errors


# ---------------------------------------------------------------- fail-over
def failover_reason(error: FailedCall, created_nothing: bool) -> SkipReason | None:
    """Why the same submit may go on to the next route after `error`, or None if it must
    not: the payment may exist at the provider, so another one could charge twice.

    `created_nothing`: the provider's mapping says this refusal code creates nothing
    (each provider's `refusal_created_nothing`). A read timeout never fails over.
    """
    if error.outcome_unknown:
        return None
    if error.not_sent:
        return SkipReason.UNREACHABLE
    if created_nothing:
        return SkipReason.PROVIDER_REFUSED
    return None


def failover_note(skip: Skip, next_provider: str | None) -> str:
    """The timeline's words for a route left behind (state_events.detail)."""
    text = f"failover {skip.reason}"
    if skip.detail:
        text += f" {skip.detail}"
    return text + (f" -> {next_provider}" if next_provider else "")


def route_note(method: str, provider: str, position: int, total: int, skips: Sequence[Skip]) -> str:
    """The created event's detail: which route this attempt took and the routes passed over
    since the attempt before it (so each decision is written, and counted, once)."""
    text = f"{method} via {provider}"
    if total > 1:
        text += f" (route {position} of {total}"
        if skips:
            text += "; skipped " + ", ".join(s.describe() for s in skips)
        text += ")"
    return text


_REASONS = frozenset(str(r) for r in SkipReason)
_NOTE_SKIPS = re.compile(r"; skipped (?P<skips>.*)\)$")


def skips_in_note(detail: str | None) -> list[tuple[str, str]]:
    """(provider, reason) of each route a `route_note` says was passed over."""
    match = _NOTE_SKIPS.search(detail or "")
    if match is None:
        return []
    found = []
    for part in match.group("skips").split(", "):
        provider, _sep, rest = part.partition(": ")
        reason = rest.split(" ", 1)[0]
        if provider and reason in _REASONS:
            found.append((provider, reason))
    return found
