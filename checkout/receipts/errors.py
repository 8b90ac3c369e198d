"""What an issuer call can end in, as types with a code and whether to try again.

They are ProviderErrors (one error hierarchy): `provider` is the issuer's name, `code` its
own (Popbill's 8-digit negative codes as text, or ours for transport), `retryable` says if
the same call may work later, `not_sent` that the request provably never left.
"""

from __future__ import annotations

from checkout.providers.errors import ProviderError, ProviderTimeout


class IssuerError(ProviderError):
    """An issuer refused or failed a call."""


class IssuerTimeout(IssuerError, ProviderTimeout):
    """No answer in time: the receipt may exist. Query it by its management key first."""


class IssuerAuthError(IssuerError):
    """The issuer refused our credentials or token (link id, secret key, member number)."""


class MgtKeyInUse(IssuerError):
    """A receipt with this management key exists already (ours, after a crash or a retry)."""


class ReceiptNotFound(IssuerError):
    """No receipt under this management key: it was never issued."""


class OriginalNotFiled(IssuerError):
    """A cancel receipt refused because the original has not reached the NTS yet: retry
    once a query shows the original filed."""


class UnexpectedAnswer(IssuerError):
    """An answer outside the documented shapes or states: never read as success."""
