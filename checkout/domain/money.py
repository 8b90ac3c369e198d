"""Money as integers in the currency's minor unit, never floats.

KRW has no minor unit (exponent 0): 15000 means 15,000 won. MXN has centavos
(exponent 2): 15000 means 150.00 pesos. Providers that want whole units or
hundredths convert at their edge with the helpers here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

CURRENCY_EXPONENT: dict[str, int] = {"KRW": 0, "MXN": 2}


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in its currency."""


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
    def from_major(cls, value: str | int | Decimal, currency: str) -> Money:
        """Parse a provider's major-unit amount ('1000', '1000.00') exactly.

        Raises MoneyError if it is not a number or has more precision than the
        currency allows (e.g. '1000.50' KRW).
        """
        try:
            dec = Decimal(str(value).strip())
        except (InvalidOperation, ValueError) as exc:
            raise MoneyError(f"not an amount: {value!r}") from exc
        if not dec.is_finite():
            raise MoneyError(f"not an amount: {value!r}")
        exponent = CURRENCY_EXPONENT.get(currency)
        if exponent is None:
            raise MoneyError(f"unsupported currency {currency!r}")
        minor = dec.scaleb(exponent)
        if minor != minor.to_integral_value():
            raise MoneyError(f"{value!r} has more decimals than {currency} allows")
        return cls(int(minor), currency)

    def __str__(self) -> str:
        return f"{self.format_plain()} {self.currency}"
