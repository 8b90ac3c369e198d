"""Drives the app over HTTP the way a shop and a shopper's browser do."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import requests

from tests.support.app_config import SHOP_ORIGIN, TEST_API_KEY

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@dataclass(frozen=True)
class Flow:
    """One of the five integrations, as a shopper meets it."""

    name: str
    method: str
    currency: str
    amount: int  # minor units
    payer: dict[str, str]
    provider_type: str  # the sandbox simulator
    instance: str  # provider instance (notify path)
    shows_details: bool  # True: our payment-details page; False: a redirect to the cashier


KR_PAYER = {
    "first_name": "Minsu",
    "last_name": "Kim",
    "email": "minsu@example.com",
    "mobile": "01012345678",
}
MX_PAYER = {"first_name": "Ana", "last_name": "López", "email": "ana@example.mx", "mobile": ""}

FLOWS = [
    Flow("paypro_kr_link", "kakaopay", "KRW", 15000, KR_PAYER, "paypro", "paypro_kr", False),
    Flow(
        "paypro_kr_va",
        "paypro_kr_va",
        "KRW",
        15000,
        {**KR_PAYER, "birth_date": "1990-05-17"},
        "paypro",
        "paypro_kr",
        True,
    ),
    Flow(
        "paypro_mx_link", "mx_store_cashier", "MXN", 25000, MX_PAYER, "paypro", "paypro_mx", False
    ),
    Flow("paypro_mx_api", "mx_spei", "MXN", 25000, MX_PAYER, "paypro", "paypro_mx_api", True),
    Flow(
        "teemopay_kr",
        "teemopay_va",
        "KRW",
        30000,
        {"first_name": "민수", "last_name": "김", "email": "", "mobile": "01012345678"},
        "teemopay",
        "teemopay_kr",
        True,
    ),
    Flow(
        "diamondpay_kr", "diamond_card", "KRW", 50000, KR_PAYER, "diamondpay", "diamondpay_kr", True
    ),
]


def api_headers(api_key: str = TEST_API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def create_checkout(base_url: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "order_id": f"order-{secrets.token_hex(6)}",
        "amount": 15000,
        "currency": "KRW",
        "return_url": f"{SHOP_ORIGIN}/orders/done",
    }
    body.update(overrides)
    resp = requests.post(
        f"{base_url}/api/v1/checkouts", json=body, headers=api_headers(), timeout=10
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def get_checkout(base_url: str, checkout_id: str) -> dict[str, Any]:
    resp = requests.get(
        f"{base_url}/api/v1/checkouts/{checkout_id}", headers=api_headers(), timeout=10
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


class Shopper:
    def __init__(self, checkout_url: str) -> None:
        self.url = checkout_url
        self.http = requests.Session()
        # What a browser says when the checkout is the whole tab (not framed by a shop).
        self.http.headers.update({"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"})
        self.csrf: str | None = None  # the token of the last form seen, as a browser keeps it

    def open(self, method: str) -> requests.Response:
        return self.http.get(self.url, params={"method": method}, timeout=10)

    def submit(
        self, method: str, fields: dict[str, str], csrf: str | None = None
    ) -> requests.Response:
        if csrf is None:
            page = self.open(method)
            assert page.status_code == 200, page.text
            match = CSRF_RE.search(page.text)
            assert match, "no CSRF token on the checkout page"
            csrf = self.csrf = match.group(1)
        data = {"csrf_token": csrf, "method": method, **fields}
        return self.http.post(
            self.url, params={"method": method}, data=data, allow_redirects=False, timeout=30
        )
