"""The shop API: creating and reading checkouts, and its errors."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import LiveApp
from tests.support.app_config import OTHER_STORE_API_KEY, SHOP_ORIGIN
from tests.support.shopper import api_headers, create_checkout


def post(live_app: LiveApp, body: object, **kw: object) -> requests.Response:
    headers = kw.pop("headers", api_headers())
    return requests.post(
        f"{live_app.url}/api/v1/checkouts", json=body, headers=headers, timeout=10, **kw
    )


def test_create_and_read(live_app: LiveApp) -> None:
    created = create_checkout(
        live_app.url, description="Two mugs", locale="ko", methods=["kakaopay", "teemopay_va"]
    )
    assert created["status"] == "open"
    assert created["url"] == f"{live_app.url}/c/{created['id']}"
    assert created["expires_at"]
    read = requests.get(
        f"{live_app.url}/api/v1/checkouts/{created['id']}", headers=api_headers(), timeout=10
    ).json()
    assert read["id"] == created["id"] and read["payment_attempts"] == []
    assert read["methods"] == ["kakaopay", "teemopay_va"]
    page = requests.get(created["url"], timeout=10)
    assert "카카오페이" in page.text and "네이버페이" not in page.text  # limited, localised


def body(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "order_id": "o-1",
        "amount": 15000,
        "currency": "KRW",
        "return_url": f"{SHOP_ORIGIN}/done",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        (body(amount=150.5), "invalid_amount", "amount"),
        (body(amount="15000"), "invalid_amount", "amount"),
        (body(amount=0), "invalid_amount", "amount"),
        (body(amount=True), "invalid_amount", "amount"),
        (body(currency="USD"), "invalid_currency", "currency"),
        (body(currency={"a": 1}), "invalid_currency", "currency"),  # found by hypothesis
        (body(locale=["ko"]), "invalid_locale", "locale"),
        (body(order_id=""), "invalid_order_id", "order_id"),
        (body(order_id=None), "invalid_order_id", "order_id"),
        (body(return_url="https://evil.example/x"), "return_url_not_allowed", "return_url"),
        (body(return_url="javascript:alert(1)"), "invalid_return_url", "return_url"),
        (body(locale="fr"), "invalid_locale", "locale"),
        (body(methods=["nope"]), "unknown_method", "methods"),
        (body(methods=[]), "invalid_methods", "methods"),
        (body(methods=["mx_spei"]), "no_method_available", "methods"),  # MXN method, KRW order
        (body(currency="MXN", amount=12345), "no_method_available", "currency"),  # centavos
        ([1, 2], "invalid_body", None),
    ],
)
def test_bad_input_is_a_clear_400_and_creates_nothing(
    live_app: LiveApp, payload: object, code: str, field: str | None
) -> None:
    resp = post(live_app, payload)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert error.get("field") == field
    # Nothing was created: the same order_id is still free.
    assert post(live_app, body()).status_code == 201


def test_not_json_is_400(live_app: LiveApp) -> None:
    resp = requests.post(
        f"{live_app.url}/api/v1/checkouts", data="order_id=1", headers=api_headers(), timeout=10
    )
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": ""}],
)
def test_missing_or_wrong_key_is_401(live_app: LiveApp, headers: dict[str, str]) -> None:
    resp = post(live_app, body(), headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"
    assert post(live_app, body()).status_code == 201  # nothing was created before


def test_unknown_or_other_stores_checkout_is_404(live_app: LiveApp) -> None:
    created = create_checkout(live_app.url)
    for checkout_id, key in (("co_missing", None), (created["id"], OTHER_STORE_API_KEY)):
        resp = requests.get(
            f"{live_app.url}/api/v1/checkouts/{checkout_id}",
            headers=api_headers(key) if key else api_headers(),
            timeout=10,
        )
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "checkout_not_found"


def test_same_order_id_with_another_amount_is_409(live_app: LiveApp) -> None:
    assert post(live_app, body(order_id="dup")).status_code == 201
    assert post(live_app, body(order_id="dup")).status_code == 200  # the same request
    resp = post(live_app, body(order_id="dup", amount=16000))
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "order_id_conflict"
    # Another store may use the same order_id.
    other = post(live_app, body(order_id="dup"), headers=api_headers(OTHER_STORE_API_KEY))
    assert other.status_code == 201
