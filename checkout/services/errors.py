"""Errors the use cases raise for the web layer to render: one base, ServiceError, with a
stable `code`, an HTTP status and whether the same request may work later (`retryable`).

The use cases' errors live here; the domain's are in checkout/domain/errors.py, the
store's in checkout/store/errors.py, the providers' in checkout/providers/errors.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checkout.domain.routing import Skip
    from checkout.providers.base import MethodConfig
    from checkout.providers.errors import ProviderError
    from checkout.services.shopper.page_reads import AttemptView


class ServiceError(Exception):
    """A refused request: `code` is stable for APIs, `message` is for people."""

    http_status = 400
    retryable = False  # a refusal: the same request gets the same answer

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class InvalidRequest(ServiceError):
    http_status = 400


class Forbidden(ServiceError):
    """The caller may not do this (an API key without the scope, an operator's own refund)."""

    http_status = 403


class NotFound(ServiceError):
    http_status = 404


class Conflict(ServiceError):
    http_status = 409


class CheckoutClosed(ServiceError):
    """The checkout can no longer take a payment (paid, expired, cancelled)."""

    http_status = 409


class PaymentNotStarted(ServiceError):
    """The provider refused or failed the create; the attempt is recorded failed and the
    checkout is open again. `code` and `retryable` are the provider error's."""

    code = "payment_not_started"  # without a provider error (a failed create answer)
    http_status = 502

    def __init__(
        self, attempt: AttemptView, error: ProviderError | None, message: str = ""
    ) -> None:
        super().__init__(
            error.code if error else "payment_not_started",
            error.message if error else message or "failed",
        )
        self.attempt = attempt
        self.error = error
        self.retryable = bool(error and error.retryable)


class NoRouteAvailable(ServiceError):
    """No route of the method can take this payment now; nothing was written or sent
    (or, after a fail-over, every attempt made ended failed and the checkout is open).
    Each skip says why and until when (`retry_at`)."""

    code = "no_route_available"
    http_status = 503
    retryable = True  # the causes (a circuit, a daily count) end

    def __init__(self, method: MethodConfig, skips: list[Skip]) -> None:
        super().__init__(
            "no_route_available",
            f"no route for {method.code}: " + "; ".join(s.describe() for s in skips),
        )
        self.method = method
        self.skips = skips

    @property
    def retry_at(self) -> datetime | None:
        """When the soonest cause ends, if every cause has a known end."""
        ends = [s.retry_at for s in self.skips]
        if not ends or any(e is None for e in ends):
            return None
        return min(e for e in ends if e is not None)


class OperatorRefused(InvalidRequest):
    """An operator account change refused (`flask create-operator` and the like): a name
    taken or too long, a password too short, an unknown operator."""

    code = "operator_refused"

    def __init__(self, message: str) -> None:
        super().__init__("operator_refused", message)
