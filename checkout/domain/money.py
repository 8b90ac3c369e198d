"""Money as integers in the currency's minor unit, never floats.

KRW has no minor unit (exponent 0): 15000 means 15,000 won. MXN has centavos
(exponent 2): 15000 means 150.00 pesos. Providers that want whole units or
hundredths convert at their edge with the helpers here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from checkout.domain.errors import MoneyError

CURRENCY_EXPONENT: dict[str, int] = {"KRW": 0, "MXN": 2}

# The provider amount grammar: ASCII digits, an optional decimal part, both bounded.
MAX_WHOLE_DIGITS = 15  # up to 999 trillion major units
MAX_DECIMALS = 4  # PayPro's Corrections show "9998989.0000"
_AMOUNT_TEXT = re.compile(rf"[0-9]{{1,{MAX_WHOLE_DIGITS}}}(?:\.[0-9]{{1,{MAX_DECIMALS}}})?")


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units
    currency: str

    def __post_init__(self) -> None:
        if self.currency not in CURRENCY_EXPONENT:
            raise MoneyError(f"unsupported currency {self.currency!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("amount must be an integer in minor units")

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENT[self.currency]

    def to_decimal(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.amount).scaleb(-self.exponent)

    def is_whole(self) -> bool:
        """True when the amount has no fractional major unit (e.g. 150.00 MXN)."""
        return self.amount % (10**self.exponent) == 0

    def whole_units(self) -> int:
        """The amount in whole major units; raises if it has a fraction."""
        if not self.is_whole():
            raise MoneyError(f"{self} is not a whole number of {self.currency}")
        return self.amount // (10**self.exponent)

    def format_plain(self) -> str:
        """'15000' for KRW, '150.00' for MXN: no grouping, no symbol."""
        return f"{self.to_decimal():.{self.exponent}f}"

    @classmethod
    def parse_provider_amount(cls, value: object, currency: str) -> Money:
        """A provider's major-unit amount, read by one strict grammar, exactly.

        Accepted: a string of ASCII digits with an optional decimal part ("30000",
        "1000.00", "9998989.0000"), a JSON integer, or a JSON fraction kept as Decimal
        (`jsonsafe.loads`), within MAX_WHOLE_DIGITS whole digits and MAX_DECIMALS decimals.
        Everything else raises MoneyError at once: exponents (1e30, 1e999999), signs
        (+1, -1), '_', whitespace, non-ASCII digits (full-width, Arabic-Indic), NaN,
        Infinity, booleans, floats, and more precision than the currency has ('1000.50'
        KRW). Nothing is converted before its length is known, so no input is slow.
        """
        exponent = CURRENCY_EXPONENT.get(currency)
        if exponent is None:
            raise MoneyError(f"unsupported currency {currency!r}")
        dec = _amount_decimal(value)
        minor = dec.scaleb(exponent)
        if minor != minor.to_integral_value():
            raise MoneyError(f"{_shown(value)} has more decimals than {currency} allows")
        return cls(int(minor), currency)

    @classmethod
    def from_major(cls, value: object, currency: str) -> Money:
        """Parse a provider's major-unit amount ('1000', '1000.00'): parse_provider_amount."""
        return cls.parse_provider_amount(value, currency)

    def __str__(self) -> str:
        return f"{self.format_plain()} {self.currency}"

    def format_grouped(self) -> str:
        """'12,000 KRW', '1,500.00 MXN': major units, grouped, as a message shows money."""
        return f"{self.to_decimal():,.{self.exponent}f} {self.currency}"


def _shown(value: object) -> str:
    """A refused value as an error message may quote it (bounded)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _amount_decimal(value: object) -> Decimal:
    """The exact Decimal of an amount in the provider grammar; raises MoneyError."""
    if isinstance(value, str):
        # fullmatch on ASCII [0-9] only; the length bound comes before any conversion.
        if len(value) > MAX_WHOLE_DIGITS + 1 + MAX_DECIMALS or not _AMOUNT_TEXT.fullmatch(value):
            raise MoneyError(f"not an amount: {_shown(value)}")
        return Decimal(value)
    if isinstance(value, bool):
        raise MoneyError(f"not an amount: {value!r}")
    if isinstance(value, int):
        if value < 0 or value >= 10**MAX_WHOLE_DIGITS:
            raise MoneyError(f"not an amount: {_shown(value)}")
        return Decimal(value)
    if isinstance(value, Decimal):
        # A JSON number kept exact: finite, unsigned, no positive exponent (1E+30), a
        # bounded number of decimals and digits. Checked on the tuple, not by converting.
        if not value.is_finite():
            raise MoneyError(f"not an amount: {_shown(value)}")
        sign, digits, exp = value.as_tuple()
        assert isinstance(exp, int)
        if sign or exp > 0 or exp < -MAX_DECIMALS or len(digits) + exp > MAX_WHOLE_DIGITS:
            raise MoneyError(f"not an amount: {_shown(value)}")
        return value
    raise MoneyError(f"not an amount: {_shown(value)}")


# What an operator types: digits, "," between groups of three (12,000), "." before the
# decimals ("120.50"); spaces around are ignored.
_TYPED_AMOUNT = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?")


def parse_typed_amount(text: str, currency: str) -> Money:
    """An amount typed in major units, as people write it ("12,000" KRW, "120.50" MXN),
    in minor units. MoneyError with a message an operator can act on: not a number, more
    decimals than the currency has ("120.505" MXN, "12000.5" KRW), or not above zero."""
    exponent = CURRENCY_EXPONENT.get(currency)
    if exponent is None:
        raise MoneyError(f"unsupported currency {currency!r}")
    typed = text.strip() if isinstance(text, str) else ""
    found = _TYPED_AMOUNT.fullmatch(typed) if len(typed) <= 30 else None
    if found is None:
        example = "12,000" if exponent == 0 else "120.50"
        raise MoneyError(f"Enter the amount in {currency} as digits, e.g. {example}.")
    decimals = found.group(1) or ""
    if len(decimals) > exponent:
        if exponent == 0:
            raise MoneyError(f"{currency} amounts have no decimals: {typed} is not one.")
        raise MoneyError(f"{currency} amounts have at most {exponent} decimals: {typed} has more.")
    whole = typed[: found.start(1) - 1] if found.group(1) is not None else typed
    minor = int(whole.replace(",", "")) * 10**exponent + int(decimals.ljust(exponent, "0") or 0)
    if minor <= 0:
        raise MoneyError("Enter an amount above zero.")
    if minor >= 10 ** (MAX_WHOLE_DIGITS + exponent):
        raise MoneyError(f"Enter the amount in {currency} as digits, e.g. 12,000.")
    return Money(minor, currency)
