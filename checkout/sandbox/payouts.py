"""What the simulated providers share for payouts: balances, the payout book, outcomes.

Each merchant (provider, merchant id, currency) has a balance: `SandboxConfig.
payout_opening_balance` to start with, plus every pay-in paid in the sandbox. A payout
takes its amount from the balance at once (held, as "frozen"), then, after
`SandboxConfig.payout_settle_after` seconds of processing, succeeds (the hold is spent) or
fails (the hold comes back), and the provider's signed payout notify is sent with retries.

How a payout ends is chosen by its destination account number (`scripted_outcome`):

| account number ends with | outcome |
|---|---|
| `9999` | processing, then failed (the money comes back) |
| `8888` | held in processing until `POST /_sandbox/payouts/<provider>/<payout no>` |
| `7777` | succeeded, then returned by the bank (TeemoPay status 4; others just succeed) |
| anything else | processing, then succeeded |

Control endpoints (sandbox only): `POST /_sandbox/payouts/<provider>/<payout no>` with
`{"outcome": "succeed" | "fail" | "return"}` finishes a payout held in processing (or
returns a succeeded one); `GET /_sandbox/payouts` lists payouts; `PUT
/_sandbox/balances/<provider>/<merchant>` with `{"amount": "50000", "currency": "KRW"}`
sets a balance (major units); `GET` on it reads it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, jsonify, request

from checkout.domain.accounts import KOREA_BANKS
from checkout.domain.errors import MoneyError
from checkout.domain.money import CURRENCY_EXPONENT, Money

if TYPE_CHECKING:
    from checkout.sandbox.core import SandboxState

# Korean bank codes (KFTC, 3 digits) the simulators pay out to: TeemoPay's published Korea
# payout list (more/teemopay.md section 9.1). PayPro's and Diamond Pay's lists were not
# found, so their simulators use the same codes (INFERRED).
KOREA_BANK_CODES = frozenset(KOREA_BANKS)
# Banks on the list that the simulated channels refuse ("not supported" today): lets tests
# reach a provider's unsupported-bank refusal with a code the client itself accepts.
DISABLED_BANK_CODES = frozenset({"055"})
# Mexico: PayPro `wayCode` values (only BANXICO is documented) and CLABE bank prefixes.
MEXICO_WAY_CODES = frozenset({"BANXICO", "BBVA MEXICO", "BANAMEX", "SANTANDER", "BANORTE", "STP"})

FAIL_SUFFIX = "9999"
HOLD_SUFFIX = "8888"
RETURN_SUFFIX = "7777"


class PayoutState:
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETURNED = "returned"


class Outcome:
    SUCCEED = "succeed"
    FAIL = "fail"
    HOLD = "hold"
    RETURN = "return"  # succeed, then come back


class PayoutRefusal(Exception):
    """Why a simulator refuses a payout; each provider answers it with its own code."""

    DUPLICATE = "duplicate_order"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNSUPPORTED_BANK = "unsupported_bank"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SandboxPayout:
    provider: str
    id: str  # the provider's payout number
    merchant: str
    payout_no: str  # the merchant's
    amount: Money
    bank_code: str
    account_number: str
    holder_name: str
    notify_url: str | None
    outcome: str
    status: str = PayoutState.PROCESSING
    fee: Money | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "id": self.id,
            "merchant": self.merchant,
            "payout_no": self.payout_no,
            "amount": self.amount.format_plain(),
            "currency": self.amount.currency,
            "bank_code": self.bank_code,
            "account": "****" + self.account_number[-4:],
            "status": self.status,
            "outcome": self.outcome,
        }


def scripted_outcome(account_number: str, returns: bool) -> str:
    """The outcome the account number asks for (table in the module docstring)."""
    if account_number.endswith(FAIL_SUFFIX):
        return Outcome.FAIL
    if account_number.endswith(HOLD_SUFFIX):
        return Outcome.HOLD
    if account_number.endswith(RETURN_SUFFIX) and returns:
        return Outcome.RETURN
    return Outcome.SUCCEED


class PayoutBook:
    """Balances and payouts of one sandbox. Thread-safe: the server is threaded."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._lock = threading.RLock()
        self.payouts: dict[tuple[str, str, str], SandboxPayout] = {}
        self._balances: dict[tuple[str, str, str], int] = {}  # minor units, available
        self._frozen: dict[tuple[str, str, str], int] = {}
        self._timers: list[threading.Timer] = []

    # ------------------------------------------------------------ balances
    def _opening(self, currency: str) -> int:
        major = self._state.config.payout_opening_balance.get(currency, 0)
        return int(major) * 10 ** CURRENCY_EXPONENT[currency]

    def balance(self, provider: str, merchant: str, currency: str) -> tuple[Money, Money]:
        """(available, frozen) for a merchant."""
        key = (provider, merchant, currency)
        with self._lock:
            available = self._balances.setdefault(key, self._opening(currency))
            return Money(available, currency), Money(self._frozen.get(key, 0), currency)

    def find_currency(self, provider: str, merchant: str) -> str | None:
        """The currency a merchant has a balance in (the first one seen), if any."""
        with self._lock:
            for p, m, currency in self._balances:
                if (p, m) == (provider, merchant):
                    return currency
        return None

    def set_balance(self, provider: str, merchant: str, amount: Money) -> None:
        with self._lock:
            self._balances[(provider, merchant, amount.currency)] = amount.amount

    def credit(self, provider: str, merchant: str, amount: Money) -> None:
        """Money in (a pay-in paid in the sandbox, a failed or returned payout)."""
        key = (provider, merchant, amount.currency)
        with self._lock:
            self._balances[key] = self._balances.get(key, self._opening(amount.currency)) + (
                amount.amount
            )

    # ------------------------------------------------------------ payouts
    def find(self, provider: str, merchant: str, payout_no: str) -> SandboxPayout | None:
        with self._lock:
            return self.payouts.get((provider, merchant, payout_no))

    def open(
        self,
        provider: str,
        merchant: str,
        payout_no: str,
        amount: Money,
        *,
        bank_code: str,
        account_number: str,
        holder_name: str,
        notify_url: str | None,
        banks: frozenset[str],
        id_prefix: str,
        fee: Money | None = None,
        extra: dict[str, Any] | None = None,
        returns: bool = False,
    ) -> SandboxPayout:
        """Take a payout: duplicate, bank and balance checks, then hold the amount.

        Raises PayoutRefusal. Processing starts at once (see `_schedule`).
        """
        key = (provider, merchant, amount.currency)
        with self._lock:  # the checks and the hold are one step
            if self.find(provider, merchant, payout_no) is not None:
                raise PayoutRefusal(PayoutRefusal.DUPLICATE)
            if bank_code not in banks or bank_code in DISABLED_BANK_CODES:
                raise PayoutRefusal(PayoutRefusal.UNSUPPORTED_BANK)
            available, _frozen = self.balance(provider, merchant, amount.currency)
            cost = amount.amount + (fee.amount if fee else 0)
            if cost > available.amount:
                raise PayoutRefusal(PayoutRefusal.INSUFFICIENT_BALANCE)
            self._balances[key] = available.amount - cost
            self._frozen[key] = self._frozen.get(key, 0) + cost
            payout = SandboxPayout(
                provider=provider,
                id=id_prefix + secrets.token_hex(8).upper(),
                merchant=merchant,
                payout_no=payout_no,
                amount=amount,
                bank_code=bank_code,
                account_number=account_number,
                holder_name=holder_name,
                notify_url=notify_url,
                outcome=scripted_outcome(account_number, returns),
                fee=fee,
                extra=dict(extra or {}),
            )
            self.payouts[(provider, merchant, payout_no)] = payout
        if payout.outcome != Outcome.HOLD:
            self._schedule(payout, payout.outcome)
        return payout

    def _schedule(self, payout: SandboxPayout, outcome: str) -> None:
        timer = threading.Timer(
            self._state.config.payout_settle_after, self._finish_later, (payout, outcome)
        )
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def _finish_later(self, payout: SandboxPayout, outcome: str) -> None:
        if self._state.notifier.stopped:
            return
        with contextlib.suppress(ValueError):  # finished meanwhile by the control endpoint
            self.finish(payout, outcome)

    def finish(self, payout: SandboxPayout, outcome: str) -> None:
        """End a payout in processing (or return a succeeded one), then notify."""
        key = (payout.provider, payout.merchant, payout.amount.currency)
        cost = payout.amount.amount + (payout.fee.amount if payout.fee else 0)
        with self._lock:
            if outcome == Outcome.RETURN and payout.status == PayoutState.SUCCEEDED:
                payout.status = PayoutState.RETURNED
                payout.failure_code, payout.failure_message = (
                    "1016",
                    ("Refund by the recipient or the recipient's bank"),
                )
                self._balances[key] = self._balances.get(key, 0) + payout.amount.amount
            elif payout.status != PayoutState.PROCESSING:
                raise ValueError(f"payout {payout.payout_no} is already {payout.status}")
            elif outcome in (Outcome.SUCCEED, Outcome.RETURN):
                payout.status = PayoutState.SUCCEEDED
                self._frozen[key] = self._frozen.get(key, 0) - cost
            elif outcome == Outcome.FAIL:
                payout.status = PayoutState.FAILED
                payout.failure_code, payout.failure_message = (
                    "1000",
                    ("The account does not exist or is restricted"),
                )
                self._frozen[key] = self._frozen.get(key, 0) - cost
                self._balances[key] = self._balances.get(key, 0) + cost
            else:
                raise ValueError(f"unknown outcome {outcome!r}")
            payout.completed_at = datetime.now(UTC)
        self._state.simulators[payout.provider].send_payout_notify(self._state, payout)
        if outcome == Outcome.RETURN and payout.status == PayoutState.SUCCEEDED:
            self._schedule(payout, Outcome.RETURN)  # the bank sends it back a little later

    def all(self) -> list[SandboxPayout]:
        with self._lock:
            return list(self.payouts.values())


# ---------------------------------------------------------------- control endpoints
def control_blueprint(state: SandboxState) -> Blueprint:
    bp = Blueprint("sandbox_payouts", __name__)

    @bp.get("/_sandbox/payouts")
    def list_payouts() -> Any:
        return jsonify(payouts=[p.to_json() for p in state.payouts.all()])

    @bp.post("/_sandbox/payouts/<provider>/<payout_no>")
    def finish_payout(provider: str, payout_no: str) -> Any:
        data = request.get_json(silent=True)
        outcome = data.get("outcome") if isinstance(data, dict) else None
        if outcome not in (Outcome.SUCCEED, Outcome.FAIL, Outcome.RETURN):
            return jsonify(error="outcome must be succeed, fail or return"), 400
        matches = [
            p for p in state.payouts.all() if (p.provider, p.payout_no) == (provider, payout_no)
        ]
        if not matches:
            return jsonify(error="no such payout"), 404
        try:
            state.payouts.finish(matches[0], outcome)
        except ValueError as exc:
            return jsonify(error=str(exc)), 409
        return jsonify(matches[0].to_json())

    @bp.get("/_sandbox/balances/<provider>/<merchant>")
    def read_balance(provider: str, merchant: str) -> Any:
        currency = request.args.get("currency", "KRW")
        if currency not in CURRENCY_EXPONENT:
            return jsonify(error="unknown currency"), 400
        available, frozen = state.payouts.balance(provider, merchant, currency)
        return jsonify(
            available=available.format_plain(), frozen=frozen.format_plain(), currency=currency
        )

    @bp.put("/_sandbox/balances/<provider>/<merchant>")
    def put_balance(provider: str, merchant: str) -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(error="the body must be a JSON object"), 400
        try:
            amount = Money.from_major(
                Decimal(str(data.get("amount"))), str(data.get("currency", "KRW"))
            )
        except (MoneyError, InvalidOperation):
            return jsonify(error="amount (major units) and currency (KRW, MXN) are required"), 400
        if amount.amount < 0:
            return jsonify(error="amount must not be negative"), 400
        state.payouts.set_balance(provider, merchant, amount)
        return jsonify(amount=amount.format_plain(), currency=amount.currency)

    return bp


def register(app: Flask, state: SandboxState) -> None:
    app.register_blueprint(control_blueprint(state))
