"""The one authentication: `Authorization: Bearer <API key>` -> store, mode and scopes.

Every endpoint reads the key from `current_key()` (only the rate limiter also reads the
header, to key its counter). A key resolves to exactly one store and one mode (config.py
refuses a key listed in both); the `refunds` scope comes from the store's refund keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, current_app, g, request

from checkout.config import StoreConfig
from checkout.extensions import settings_of
from checkout.services.errors import Forbidden
from checkout.web.shop_api.errors import error_response

OPENAPI_PATH = "/api/v1/openapi.json"  # the contract is public
REFUNDS = "refunds"


@dataclass(frozen=True)
class ApiKey:
    store: StoreConfig
    livemode: bool  # True: a live key; False: a test key (sandbox payments and payouts)
    scopes: frozenset[str]


def authenticate() -> Response | None:
    """The blueprint's before_request: 401 unless the request carries a known key."""
    if request.path == OPENAPI_PATH:
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    match = None
    if scheme.lower() == "bearer" and token:
        match = settings_of(current_app).api_key_match(token)
    if match is None:
        response = error_response(
            401, "unauthorized", "A valid 'Authorization: Bearer <API key>' is required."
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="checkout"'
        return response
    store, livemode = match
    scopes = frozenset({REFUNDS}) if store.may_refund(token) else frozenset()
    g.api_key = ApiKey(store, livemode, scopes)
    return None


def current_key() -> ApiKey:
    key: ApiKey = g.api_key
    return key


def require_refund_scope() -> ApiKey:
    key = current_key()
    if REFUNDS not in key.scopes:
        raise Forbidden("refund_not_allowed", "This API key may not create refunds.")
    return key
