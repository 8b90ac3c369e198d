"""The shop's JSON API, /api/v1 (spec: checkout/openapi.json): one blueprint, one way in.

- auth.py: the one authentication. Every request (but the public contract) resolves its API
  key to the store, the mode (livemode) and the scopes (`refunds`); every read and write is
  scoped to that store and mode, and the other mode's objects are 404 as an unknown id.
- errors.py: the one error shape, {"error": {"code", "message", "field"}}, for every error.
- body.py: the one body reader (hostile JSON is a 400 naming the field) and the one way an
  answer is written (compact JSON); idempotent.py: Idempotency-Key on every create.
- checkouts.py, refunds.py, events.py: the endpoints, thin over checkout/services.

May import services, config and the store (its models, the db session); services never
import this.
"""

from __future__ import annotations

from checkout.web.shop_api import checkouts, events, refunds  # noqa: F401  (routes)
from checkout.web.shop_api.blueprint import bp

__all__ = ["bp"]
