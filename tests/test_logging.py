"""Log masking: personal data and configured secrets never reach any handler."""

from __future__ import annotations

import io
import json
import logging

import pytest

from checkout.logging_setup import (
    JsonFormatter,
    install_masking,
    mask_text,
    register_secrets,
    secrets_of_config,
)


@pytest.mark.parametrize(
    ("text", "leaked", "marker"),
    [
        ("payer minsu.kim@example.com", "minsu", "<email>"),
        ("GET /pay?return_url=https%3A%2F%2Fs.example%2F%3Fe%3Dana%40example.mx", "ana", "<email>"),
        ("mobile 01012345678", "12345678", "<mobile>"),
        ("mobile 010-1234-5678", "1234", "<mobile>"),
        ("mobile +82 10 1234 5678", "1234", "<mobile>"),
        ("mobile +821012345678", "12345678", "<mobile>"),
        ("celular 5512345678", "5512345678", "<mobile>"),
        ("celular (55) 1234-5678", "1234", "<mobile>"),
        ("celular +52 1 55 1234 5678", "1234", "<mobile>"),
        ("celular 222 123 4567", "4567", "<mobile>"),
        ("born 1990-05-17", "1990", "<date>"),
        ("born 19900517", "1990", "<date>"),
        ("born 17/05/1990", "1990", "<date>"),
        ("q=dob%3D1990-05-17", "1990", "<date>"),
    ],
)
def test_personal_data_is_masked(text: str, leaked: str, marker: str) -> None:
    masked = mask_text(text)
    assert leaked not in masked and marker in masked, masked


@pytest.mark.parametrize(
    "text",
    [
        "notify provider=paypro_kr trade_no=20260105093012ab01012345678cdef0 verdict=accepted",
        "expires=1767225600",
        "at 2026-01-05T09:30:12+00:00",
        "amount=15000 KRW",
        '127.0.0.1 - - [05/Jan/2026 09:30:12] "POST /notify/paypro_kr HTTP/1.1" 200 -',
    ],
)
def test_ids_times_and_amounts_stay_readable(text: str) -> None:
    assert mask_text(text) == text


def test_every_handler_sees_masked_records_including_werkzeug() -> None:
    install_masking()
    register_secrets(["sk_live_very_secret_key_123"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a handler with no filter of ours
    logger = logging.getLogger("werkzeug")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info(
            '%s - - "%s" %s -',
            "127.0.0.1",
            "GET /api/v1/checkouts?order_id=a%40b.co&k=sk_live_very_secret_key_123 HTTP/1.1",
            "200",
        )
        try:
            raise ValueError("duplicate key (email)=(minsu@example.com) 010-9876-5432")
        except ValueError:
            logger.exception("failed for %s", "minsu@example.com")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    out = stream.getvalue()
    assert "a%40b.co" not in out and "sk_live_very_secret_key_123" not in out
    assert "minsu@example.com" not in out and "9876" not in out
    assert "GET /api/v1/checkouts" in out and "<secret>" in out and "ValueError" in out


def test_secrets_of_config_finds_every_credential() -> None:
    class Store:
        link_secret = "link-secret-abcdef"
        webhook_secret = "whsec_abcdefgh"

    class Provider:
        settings = {  # noqa: RUF012
            "merchant_no": "M1000001",
            "app_secret": "paypro-secret-xyz",
            "key": "diamond-key-xyz",
            "api_token": "diamond-token-xyz",
            "private_key_file": "/etc/keys/teemopay.pem",
            "sign_type": "HMAC-SHA256",
        }

    class Settings:
        secret_key = "flask-secret-key-xyz"
        stores = {"shop": Store()}  # noqa: RUF012
        providers = {"p": Provider()}  # noqa: RUF012

    found = set(secrets_of_config(Settings(), {"stores": {"shop": {"api_keys": ["sk_1234567"]}}}))
    assert found == {
        "flask-secret-key-xyz",
        "link-secret-abcdef",
        "whsec_abcdefgh",
        "sk_1234567",
        "paypro-secret-xyz",
        "diamond-key-xyz",
        "diamond-token-xyz",
    }


def test_json_lines_are_masked() -> None:
    install_masking()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "mail %s", ("a@b.co",), None)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "mail <email>" and entry["level"] == "INFO"
