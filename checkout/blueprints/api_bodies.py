"""What the shop APIs (api.py, refunds_api.py) share: reading a JSON body and answering a
replayed Idempotency-Key."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from checkout import jsonsafe
from checkout.services.idempotency import StoredResponse


def json_body() -> Any:
    """The parsed JSON body, or None when it is missing or not JSON (however deep or large:
    the one bounded parser for untrusted bytes, checkout/jsonsafe.py)."""
    raw = request.get_data(cache=True)
    if not raw or not request.is_json:
        return None
    try:
        return jsonsafe.loads(raw)
    except jsonsafe.UnsafeJson:
        return None


def replayed(stored: StoredResponse) -> Any:
    """The first answer to a request with this Idempotency-Key, again, marked as a replay."""
    response = current_app.response_class(
        stored.body, status=stored.status, mimetype="application/json"
    )
    response.headers["Idempotent-Replayed"] = "true"
    return response
