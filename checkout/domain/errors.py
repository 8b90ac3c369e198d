"""The domain's errors: one base, DomainError, and one class per meaning.

Each error has a stable `code` (API errors, translations, logs) and says whether trying
the same thing again may work (`retryable`: never, for a rule's refusal). The classes
that were ValueErrors stay ValueErrors, so every `except ValueError` still holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checkout.domain.refunds import RefundStatus


class DomainError(Exception):
    """A rule of the domain says no; nothing was changed."""

    code: str = "domain_error"
    retryable: bool = False


class MoneyError(DomainError, ValueError):
    """An amount that cannot be represented exactly in its currency."""

    code = "invalid_money"


class AccountError(DomainError, ValueError):
    """A refund destination a bank would refuse. `field` and `code` are stable."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


class TransitionError(DomainError):
    """A status change the state machine does not allow."""

    code = "invalid_transition"

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind} cannot move from {current} to {target}")
        self.kind = kind
        self.current = current
        self.target = target


class LedgerRefusal(DomainError):
    """A use case the rule refuses (cancel a paid checkout, ...); nothing is written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RefundError(DomainError, ValueError):
    """A refund rule says no. `code` is stable (for API errors and translations)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RefundTransitionError(RefundError):
    def __init__(self, current: RefundStatus, new: RefundStatus) -> None:
        super().__init__("bad_transition", f"a {current} refund cannot become {new}")
        self.current = current
        self.new = new


class AccountCipherError(DomainError, ValueError):
    """A key list that cannot be used, or a token no configured key opens."""

    code = "account_cipher"


class NotEncodable(DomainError, ValueError):
    """The text has a character Code 128 set B cannot carry."""

    code = "not_encodable"


class CfdiError(DomainError, ValueError):
    """Invoice data SAT would refuse; `code` names the rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ReceiptError(DomainError, ValueError):
    """Input that makes no valid receipt; `code` names the rule, for the API and pages."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownReceiptState(ReceiptError):
    """A stateCode outside Popbill's documented table: never read as issued."""
