"""Korean cash receipts (현금영수증): who gets one, for how much, under which key, in which state.

Pure rules, no I/O: the services ask these functions what to issue or cancel and hand the
plan to an issuer (checkout/receipts/popbill). Facts are from Popbill's SDKs and guides
(docs: psp-docs/more/popbill-cashbill.md); where a rule is our reading it says INFERRED and
lives in one named function.

- A shopper paying cash in KRW (virtual account, bank transfer) asks for a receipt for
  income deduction (소득공제용, identified by a mobile number) or expense proof (지출증빙용,
  identified by a business registration number), or for none.
- A store in a designated industry (현금영수증 의무발행업종) must issue even unasked from its
  threshold (₩100,000 by law) on: under the NTS's self-issue number 010-000-1234, and only
  as 소득공제용.
- One receipt per checkout, for the money actually received, decided once no more money
  can arrive (paid, or a part-paid virtual account closed). Each refund that is sent gets a
  cancel receipt for its amount, referencing the original's confirmation number and date.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from checkout.domain.errors import ReceiptError, UnknownReceiptState
from checkout.domain.money import Money
from checkout.domain.states import CheckoutStatus

KRW = "KRW"
SELF_ISSUED_NUMBER = "010-000-1234"  # the NTS's number for a receipt nobody asked for
DEFAULT_THRESHOLD = Money(100_000, KRW)  # 의무발행: every cash sale of ₩100,000 or more
MAX_AMOUNT = 999_999_999  # Popbill's amount fields are at most 9 digits
MGT_KEY_MAX = 24  # Popbill: letters, digits, '-' and '_', at most 24, unique per member
_MGT_KEY = re.compile(r"[A-Za-z0-9_-]{1,24}")


class IdentityKind(enum.StrEnum):
    """What the shopper chose at checkout."""

    INCOME_DEDUCTION = "income_deduction"  # 소득공제: a mobile number
    EXPENSE_PROOF = "expense_proof"  # 지출증빙: a business registration number
    NONE = "none"  # 신청 안 함


class TradeUsage(enum.StrEnum):
    """Popbill's `tradeUsage`, verbatim."""

    INCOME_DEDUCTION = "소득공제용"
    EXPENSE_PROOF = "지출증빙용"


USAGE_OF_KIND = {
    IdentityKind.INCOME_DEDUCTION: TradeUsage.INCOME_DEDUCTION,
    IdentityKind.EXPENSE_PROOF: TradeUsage.EXPENSE_PROOF,
}


# ---------------------------------------------------------------- identities
_MOBILE = re.compile(r"01[016789][0-9]{7,8}")


def normalize_mobile(text: str) -> str:
    """A Korean mobile number as 10 or 11 ASCII digits (`01012345678`); hyphens and spaces
    are dropped, a +82 prefix becomes 0. ReceiptError when it is no mobile number."""
    digits = re.sub(r"[\s-]", "", text.strip())
    if digits.startswith("+82"):
        digits = "0" + digits[3:].lstrip("0")
    if not digits.isascii() or not _MOBILE.fullmatch(digits):
        raise ReceiptError("invalid_mobile", "a mobile number is 010 and 7 or 8 more digits")
    return digits


BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)


def brn_check_digit(first_nine: str) -> int:
    """The NTS check digit of a business registration number (사업자등록번호).

    Weights 1,3,7,1,3,7,1,3,5 over the first nine digits, plus the tens of the ninth digit
    times 5; the check digit brings the sum to a multiple of ten.
    """
    digits = [int(c) for c in first_nine]
    total = sum(d * w for d, w in zip(digits, BRN_WEIGHTS, strict=True))
    total += digits[8] * 5 // 10
    return (10 - total % 10) % 10


def normalize_brn(text: str) -> str:
    """A business registration number as 10 digits (`1234567890`, hyphens dropped), its
    check digit verified. ReceiptError when it is not one."""
    digits = re.sub(r"[\s-]", "", text.strip())
    if not (digits.isascii() and digits.isdigit() and len(digits) == 10):
        raise ReceiptError("invalid_business_number", "a business number has 10 digits")
    if brn_check_digit(digits[:9]) != int(digits[9]):
        raise ReceiptError("invalid_business_number", "the business number's check digit is wrong")
    return digits


@dataclass(frozen=True)
class ReceiptChoice:
    """The shopper's choice, validated: `identity` is digits only, None for NONE."""

    kind: IdentityKind
    identity: str | None = None


def parse_choice(kind: str, identity: str | None) -> ReceiptChoice:
    """The shopper's choice from the form or the API; ReceiptError says what is wrong."""
    try:
        chosen = IdentityKind(kind)
    except ValueError:
        raise ReceiptError(
            "invalid_receipt_type",
            "the receipt type is income_deduction, expense_proof or none",
        ) from None
    if chosen is IdentityKind.NONE:
        return ReceiptChoice(chosen)
    if not identity or not identity.strip():
        raise ReceiptError("identity_required", "give the number to issue the receipt to")
    if chosen is IdentityKind.INCOME_DEDUCTION:
        return ReceiptChoice(chosen, normalize_mobile(identity))
    return ReceiptChoice(chosen, normalize_brn(identity))


def prefill_choice(payer_mobile: str | None) -> ReceiptChoice:
    """What the form shows first: income deduction to the payer's mobile when it is one."""
    if payer_mobile:
        try:
            return ReceiptChoice(IdentityKind.INCOME_DEDUCTION, normalize_mobile(payer_mobile))
        except ReceiptError:
            pass
    return ReceiptChoice(IdentityKind.NONE)


def mask_identity(identity: str) -> str:
    """The identity as logs, timelines, consoles and webhooks show it: last four digits only.

    The self-issue number is the NTS's, not a person's, so it is shown whole.
    """
    if identity == SELF_ISSUED_NUMBER:
        return identity
    digits = re.sub(r"[^0-9]", "", identity)
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


# ---------------------------------------------------------------- amounts
@dataclass(frozen=True)
class ReceiptAmounts:
    """Popbill's four amount fields; total = supply_cost + tax + service_fee (NTS TS4)."""

    total: int
    supply_cost: int
    tax: int
    service_fee: int = 0

    def __post_init__(self) -> None:
        if self.supply_cost + self.tax + self.service_fee != self.total:
            raise ReceiptError("amounts_do_not_add_up", "supply + tax + fee must be the total")
        if not 0 < self.total <= MAX_AMOUNT:
            raise ReceiptError("amount_out_of_range", f"a receipt is ₩1 to ₩{MAX_AMOUNT:,}")


def vat_split(total: int, *, taxable: bool) -> ReceiptAmounts:
    """INFERRED: a VAT-inclusive total split as tax = total/11 rounded half up, the rest
    supply (Popbill's worked examples: 55,000 = 50,000 + 5,000; 20,000 = 18,182 + 1,818;
    35,000 = 31,818 + 3,182). An exempt store's receipts carry no tax."""
    if not taxable:
        return ReceiptAmounts(total, total, 0)
    tax = (total * 2 + 11) // 22  # round(total / 11), halves up, in integers
    return ReceiptAmounts(total, total - tax, tax)


def _krw(money: Money) -> int:
    if money.currency != KRW:
        raise ReceiptError("not_krw", "cash receipts are for payments in KRW")
    return money.amount


# ---------------------------------------------------------------- management keys
def _digest_key(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return prefix + base64.b32encode(digest).decode("ascii")[: MGT_KEY_MAX - len(prefix)]


def issue_mgt_key(checkout_id: str) -> str:
    """The management key of a checkout's receipt: derived from our id alone, so a retry or
    a run after a crash sends the same key and Popbill refuses a second receipt.

    Our ids (`co_` + 22 characters) are longer than Popbill's 24, so the key is a digest:
    `RI-` + 21 base32 characters (105 bits)."""
    return _digest_key("RI-", "issue", checkout_id)


def cancel_mgt_key(checkout_id: str, refund_id: str) -> str:
    """The management key of the cancel receipt for one refund of a checkout."""
    return _digest_key("RC-", "cancel", checkout_id, refund_id)


def is_valid_mgt_key(key: str) -> bool:
    return bool(_MGT_KEY.fullmatch(key))


# ---------------------------------------------------------------- what to issue
@dataclass(frozen=True)
class ReceiptPolicy:
    """A store's duty: whether it is in a designated industry and from which amount."""

    designated_industry: bool = False
    threshold: Money = DEFAULT_THRESHOLD
    taxable: bool = True  # 과세; False for a VAT-exempt (비과세) store


@dataclass(frozen=True)
class IssuePlan:
    """The receipt to issue for a checkout."""

    mgt_key: str
    usage: TradeUsage
    identity: str  # digits, or SELF_ISSUED_NUMBER
    amounts: ReceiptAmounts
    self_issued: bool  # issued unasked under 010-000-1234
    taxable: bool = True  # 과세, else 비과세 (the store's, not the amount's: ₩5 has no VAT)

    @property
    def masked_identity(self) -> str:
        return mask_identity(self.identity)


@dataclass(frozen=True)
class NoReceipt:
    """Why nothing is issued (for the timeline)."""

    reason: str  # "not_asked" | "nothing_received" | "not_cash"


def receipt_due(checkout_status: str, *, amount_paid: int, more_money_possible: bool) -> bool:
    """Whether a checkout's money is settled, so its one receipt can be decided: paid in
    full, or money received and no more deposit possible (a part-paid virtual account that
    closed or expired; money kept on a cancelled checkout). A part-paid account still open
    waits: the rest may come, and one receipt covers it all."""
    if amount_paid <= 0:
        return False
    return checkout_status == CheckoutStatus.PAID or not more_money_possible


def receipt_for_payment(
    *,
    checkout_id: str,
    choice: ReceiptChoice,
    received: Money,
    cash_method: bool,
    policy: ReceiptPolicy,
) -> IssuePlan | NoReceipt:
    """The one receipt of a checkout, decided once no more money can arrive for it (paid,
    or a part-paid virtual account completed or closed): for `received`, the money actually
    received. Card payments get none (the card company's slip is the proof)."""
    amount = _krw(received)
    if not cash_method:
        return NoReceipt("not_cash")
    if amount <= 0:
        return NoReceipt("nothing_received")
    amounts = vat_split(amount, taxable=policy.taxable)
    key = issue_mgt_key(checkout_id)
    if choice.kind is not IdentityKind.NONE:
        if not choice.identity:
            raise ReceiptError("identity_required", "the choice has no number")
        return IssuePlan(
            key, USAGE_OF_KIND[choice.kind], choice.identity, amounts, False, policy.taxable
        )
    if policy.designated_industry and amount >= _krw(policy.threshold):
        # Self-issue exists only as 소득공제용 (Popbill's issue-type guide).
        return IssuePlan(
            key, TradeUsage.INCOME_DEDUCTION, SELF_ISSUED_NUMBER, amounts, True, policy.taxable
        )
    return NoReceipt("not_asked")


# ---------------------------------------------------------------- cancels
@dataclass(frozen=True)
class IssuedReceipt:
    """What Popbill answered for the original, which every cancel receipt references."""

    mgt_key: str
    confirm_num: str
    trade_date: str  # yyyyMMdd
    amounts: ReceiptAmounts
    cancelled: int = 0  # the sum of the cancel receipts already issued for it


@dataclass(frozen=True)
class CancelPlan:
    mgt_key: str
    org_confirm_num: str
    org_trade_date: str
    partial: bool
    amounts: ReceiptAmounts  # what is cancelled (Popbill copies the original's when full)


def cancel_for_refund(
    *, checkout_id: str, refund_id: str, original: IssuedReceipt, refund: Money, taxable: bool
) -> CancelPlan:
    """The cancel receipt for a refund that was sent: full when it takes back the whole
    original at once, partial otherwise (several partials may follow each other). The
    cancels together never exceed the original (Popbill refuses with -14001023)."""
    amount = _krw(refund)
    remaining = original.amounts.total - original.cancelled
    if amount <= 0:
        raise ReceiptError("amount_out_of_range", "a cancel receipt is for a positive amount")
    if amount > remaining:
        raise ReceiptError(
            "cancel_exceeds_original",
            f"₩{amount:,} is more than the ₩{remaining:,} left on the receipt",
        )
    full = original.cancelled == 0 and amount == original.amounts.total
    return CancelPlan(
        cancel_mgt_key(checkout_id, refund_id),
        original.confirm_num,
        original.trade_date,
        partial=not full,
        amounts=original.amounts if full else vat_split(amount, taxable=taxable),
    )


# ---------------------------------------------------------------- states
class ReceiptState(enum.StrEnum):
    """Our receipt's life. ISSUED, FILED and FILING_FAILED are Popbill's 300/304/305."""

    PENDING = "pending"  # decided, not yet issued (or the outcome unknown: query first)
    ISSUED = "issued"  # 300 발행완료: Popbill took it and queued it for the NTS
    FILED = "filed"  # 304 전송완료: the NTS has it
    FILING_FAILED = "filing_failed"  # 305 전송실패: the NTS refused it (see ntsresultCode)
    REFUSED = "refused"  # Popbill refused the issue: nothing exists there


POPBILL_STATES: dict[int, ReceiptState] = {
    300: ReceiptState.ISSUED,
    304: ReceiptState.FILED,
    305: ReceiptState.FILING_FAILED,
}
FINAL_STATES = frozenset({ReceiptState.FILED, ReceiptState.FILING_FAILED, ReceiptState.REFUSED})


def state_of_popbill(code: object) -> ReceiptState:
    """Popbill's `stateCode` through the table; anything else is an error."""
    if isinstance(code, bool):
        raise UnknownReceiptState("unknown_state", f"unknown receipt state {code!r}")
    try:
        number = int(str(code))
    except ValueError:
        raise UnknownReceiptState("unknown_state", f"unknown receipt state {code!r}") from None
    state = POPBILL_STATES.get(number)
    if state is None:
        raise UnknownReceiptState("unknown_state", f"unknown receipt state {number}")
    return state


def may_cancel(state: ReceiptState) -> bool:
    """A cancel receipt is accepted only once the original is filed (else -14001021)."""
    return state is ReceiptState.FILED


_STATE_ORDER = {
    ReceiptState.PENDING: 0,
    ReceiptState.ISSUED: 1,
    ReceiptState.FILED: 2,
    ReceiptState.FILING_FAILED: 2,
    ReceiptState.REFUSED: 2,
}


def advance(current: ReceiptState, observed: ReceiptState) -> ReceiptState:
    """The state after a query answered `observed`: forward only, a final state stays."""
    if current in FINAL_STATES or _STATE_ORDER[observed] < _STATE_ORDER[current]:
        return current
    return observed


# ---------------------------------------------------------------- retries
# INFERRED schedule: soon after a passing failure, then spaced out. An issue is the legal
# duty of the trade day, at the latest within 5 days including it (Popbill's issue-type
# guide); a cancel waits for the original's NTS filing, reported the next day in Popbill's
# old examples, so it is given a week.
ISSUE_RETRY_DELAYS = (60, 300, 900, 3_600, 3 * 3_600)  # seconds, then every 6 hours
CANCEL_RETRY_DELAYS = (3_600, 3 * 3_600)  # then every 6 hours
LATER_DELAY = 6 * 3_600
ISSUE_WINDOW = timedelta(days=4)  # the trade day and four more
CANCEL_WINDOW = timedelta(days=7)


class ReceiptKind(enum.StrEnum):
    ISSUE = "issue"
    CANCEL = "cancel"


def next_try_at(
    kind: ReceiptKind, tries: int, first_try_at: datetime, now: datetime
) -> datetime | None:
    """When to try a failed (retryable) issue or cancel again, or None: give up (the
    receipt fails, the shop hears of it and an operator may "retry" by hand). `tries` is
    how many were made, this one included."""
    delays = ISSUE_RETRY_DELAYS if kind is ReceiptKind.ISSUE else CANCEL_RETRY_DELAYS
    window = ISSUE_WINDOW if kind is ReceiptKind.ISSUE else CANCEL_WINDOW
    delay = delays[tries - 1] if 0 < tries <= len(delays) else LATER_DELAY
    due = now + timedelta(seconds=delay)
    return due if due <= first_try_at + window else None
