"""The providers' errors: one base per meaning, each with a `code` and `retryable`.

- ProviderError: a call to a provider failed or was refused (subclasses: ProviderTimeout,
  OrderNotFound, UnknownProviderStatus; payouts.PayoutRefused and InvalidPayout).
- NotifyError: a notify that cannot be accepted (InvalidSignature, MalformedNotify).
"""

from __future__ import annotations


# ---------------------------------------------------------------- errors
class ProviderError(Exception):
    """A provider refused or failed a call. `retryable` says if trying again may work."""

    code: str = "provider_error"  # each instance has its own (the provider's, or ours)
    retryable: bool = False

    def __init__(
        self,
        provider: str,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        http_status: int | None = None,
        not_sent: bool = False,
    ) -> None:
        super().__init__(f"[{provider}] {code}: {message}")
        self.provider = provider
        self.code = code
        self.message = message
        self.retryable = retryable
        self.http_status = http_status
        # True only when the request provably never left: no connection was made (refused,
        # connect timeout, name not resolved). Then nothing can exist at the provider.
        self.not_sent = not_sent

    # True when the provider may have acted although no answer came (a timeout).
    outcome_unknown = False


class ProviderTimeout(ProviderError):
    """The call timed out: the provider may or may not have acted on it."""

    outcome_unknown = True


class OrderNotFound(ProviderError):
    """A query for a trade the provider does not have (e.g. a create that never arrived)."""


class UnknownProviderStatus(ProviderError):
    """A status outside the provider's documented table: never treated as success."""


class NotifyError(Exception):
    """A notify that cannot be accepted. `verdict` is what the inbox records; `verified`
    says its signature did verify (a genuine message we cannot map), which the notify
    limit never counts nor refuses (checkout/limits.py)."""

    verdict = "invalid"
    http_status = 400
    retryable = False  # the same bytes will not verify or map another time

    @property
    def code(self) -> str:
        return self.verdict

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"[{provider}] {message}")
        self.provider = provider
        self.message = message
        self.verified = False
        # What the body names (its trade number), when the parser read that far: the inbox
        # then need not read the body a second time (`claims`).
        self.body_read = False
        self.claimed_trade_no: str | None = None

    def claims(self, data: object, *keys: str) -> NotifyError:
        """This refusal, with the trade number the parsed (unverified) body names."""
        self.body_read = True
        self.claimed_trade_no = claimed_value(data, *keys)
        return self


def claimed_value(data: object, *keys: str) -> str | None:
    """The first of `keys` a parsed (unverified) JSON body names as text, cut to 64
    characters; None if none. Never raises."""
    if not isinstance(data, dict):
        return None
    for key in keys:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = str(value).replace("\x00", "").strip()
        if text:
            return text[:64]
    return None


class InvalidSignature(NotifyError):
    verdict = "bad_signature"
    http_status = 401


class MalformedNotify(NotifyError):
    verdict = "malformed"
    http_status = 400
