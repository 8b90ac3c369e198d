"""Signed links a shop can build without calling our API, and signed returns to the shop.

Pay link:  GET /pay/<store>?order_id=..&amount=..&currency=..&return_url=..&expires=..&sig=..
  sig = hex(HMAC-SHA256(link_secret, canonical)) where canonical is the six values
  joined by newlines: store, order_id, amount, currency, return_url, expires (Unix seconds).
Return:    <return_url>?checkout_id=..&order_id=..&status=..&sig=..
  sig = hex(HMAC-SHA256(link_secret, "checkout_id\\norder_id\\nstatus")).
The shop must still trust the webhook or the API, not the redirect: a shopper can
replay an old (validly signed) return URL.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from checkout.config import StoreConfig
from checkout.services.errors import InvalidRequest
from checkout.urls import parse_web_url

LINK_FIELDS = ("order_id", "amount", "currency", "return_url", "expires")


@dataclass(frozen=True)
class PayLink:
    order_id: str
    amount: int
    currency: str
    return_url: str
    expires: int


def _sign(secret: str, parts: list[str]) -> str:
    return hmac.new(secret.encode(), "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def link_signature(store_id: str, secret: str, values: Mapping[str, str]) -> str:
    return _sign(secret, [store_id, *(str(values[f]) for f in LINK_FIELDS)])


def verify_pay_link(store: StoreConfig, args: Mapping[str, str], now: float) -> PayLink:
    """Check a pay link's signature and expiry; raises InvalidRequest with a stable code."""
    if not store.link_secret:
        raise InvalidRequest("links_disabled", "This shop does not accept payment links.")
    missing = [f for f in (*LINK_FIELDS, "sig") if not args.get(f)]
    if missing:
        raise InvalidRequest("link_incomplete", f"The link lacks {', '.join(missing)}.")
    expected = link_signature(store.id, store.link_secret, args)
    if not hmac.compare_digest(expected, str(args["sig"]).lower()):
        raise InvalidRequest("link_bad_signature", "The link's signature does not match.")
    try:
        amount, expires = int(args["amount"]), int(args["expires"])
    except ValueError:
        raise InvalidRequest(
            "link_invalid", "The link's amount or expiry is not a number."
        ) from None
    if expires < now:
        raise InvalidRequest("link_expired", "This payment link has expired.")
    return PayLink(args["order_id"], amount, args["currency"], args["return_url"], expires)


def return_signature(secret: str, checkout_id: str, order_id: str, status: str) -> str:
    return _sign(secret, [checkout_id, order_id, status])


def signed_return_url(
    return_url: str, store: StoreConfig, checkout_id: str, order_id: str, status: str
) -> str:
    """The shop's return_url with our result appended (and signed when we can)."""
    params = {"checkout_id": checkout_id, "order_id": order_id, "status": status}
    if store.link_secret:
        params["sig"] = return_signature(store.link_secret, checkout_id, order_id, status)
    # Read and written back as a browser reads it: the stored URL was checked that way.
    parts = urlsplit(parse_web_url(return_url).href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return parse_web_url(
        urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))
    ).href
