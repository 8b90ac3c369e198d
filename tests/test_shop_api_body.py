"""The shop API's one body reader (web/shop_api/body.py), without a server: what it
refuses, with which code and field, and what it lets through unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from checkout.services.errors import InvalidRequest
from checkout.web.shop_api.body import MAX_NESTING, MAX_STRING_CHARS, json_body

APP = Flask(__name__)


def read(raw: str | bytes) -> Any:
    data = raw.encode() if isinstance(raw, str) else raw
    with APP.test_request_context(method="POST", data=data, content_type="application/json"):
        return json_body()


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ('{"reason": "\\ud800"}', "invalid_string", "reason"),
        ('{"reason": "a\\udc00b"}', "invalid_string", "reason"),
        (
            '{"destination": {"holder_name": "\\u0000"}}',
            "invalid_string",
            "destination.holder_name",
        ),
        ('{"\\ud800": 1}', "invalid_string", "?"),
        ('{"methods": ["ok", "\\ud83d"]}', "invalid_string", "methods"),
        (
            json.dumps({"description": "x" * (MAX_STRING_CHARS + 1)}),
            "string_too_long",
            "description",
        ),
        ('{"a": {"b": [[[1]]]}}', "nesting_too_deep", "a.b"),
        ("[[[[[1]]]]]", "nesting_too_deep", None),
        ("[" * 40 + "]" * 40, "invalid_json", None),
        ("{not json", "invalid_json", None),
        ("", "invalid_json", None),
    ],
)
def test_hostile_bodies_are_refused_naming_the_field(
    raw: str, code: str, field: str | None
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        read(raw)
    assert (refused.value.code, refused.value.field) == (code, field)


def test_ordinary_bodies_pass_unchanged() -> None:
    body = {
        "amount": 10_000,
        "reason": "반품 — devolución 🙂",
        "destination": {"bank_code": "088", "account_number": "110123456789", "holder_name": "김"},
        "methods": ["kakaopay"],
        "text": "y" * MAX_STRING_CHARS,
    }
    assert read(json.dumps(body)) == body
    assert read(json.dumps(body, ensure_ascii=False).encode()) == body
    assert MAX_NESTING >= 3  # body, destination, a list in it
