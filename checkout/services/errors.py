"""Errors the use cases raise for the web layer to render: one base, ServiceError, with a
stable `code`, an HTTP status and whether the same request may work later (`retryable`).

The use cases' errors live here; the domain's are in checkout/domain/errors.py, the
providers' in checkout/providers/errors.py.
"""

from __future__ import annotations


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
