"""Diamond Pay signing: the documented string, MD5 and HMAC-SHA256, verification."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

from checkout.providers.diamondpay import signing
from checkout.providers.diamondpay.mapping import parse_json

KEY = "diamond-test-key-0001"

# The request example from diamondpay-kr-deposit.txt, as published (strings for numbers).
DOC_EXAMPLE = {
    "amount": "50000000",
    "notify_url": "https://xxx.xx/notification",
    "payment_cl_id": "DEVPM00014581",
    "platform_id": "PF0002",
    "request_time": "1595504136",
    "service_id": "SVC0015",
    "sign": "c81634c1769044eac9e9628a2292f557",
}

DOC_SIGN_STRING = (
    "amount=50000000&notify_url=https://xxx.xx/notification&payment_cl_id=DEVPM00014581"
    "&platform_id=PF0002&request_time=1595504136&service_id=SVC0015"
)


def test_documented_example_sign_string() -> None:
    assert signing.sign_string(DOC_EXAMPLE) == DOC_SIGN_STRING


def test_integers_sign_like_their_text() -> None:
    # The parameter table says Integer; JSON integers must give the same string.
    as_ints = {**DOC_EXAMPLE, "amount": 50000000, "request_time": 1595504136}
    assert signing.sign_string(as_ints) == DOC_SIGN_STRING


def test_md5_known_value() -> None:
    expected = hashlib.md5(
        (DOC_SIGN_STRING + "&" + KEY).encode(), usedforsecurity=False
    ).hexdigest()
    assert signing.sign(DOC_EXAMPLE, KEY, signing.MD5) == expected
    # Computed independently: printf '%s' "<string>&<key>" | md5sum
    assert expected == "16f077e4400ce9ea49343f53cd204276"


def test_hmac_sha256_known_value() -> None:
    expected = hmac.new(KEY.encode(), DOC_SIGN_STRING.encode(), hashlib.sha256).hexdigest()
    assert signing.sign(DOC_EXAMPLE, KEY, signing.HMAC_SHA256) == expected
    # Computed independently: openssl dgst -sha256 -hmac <key> (no key appended)
    assert expected == "580225643142ff82a99d3c6c5699ba6aae5a8d4fdda72f78bcd7f5c2ff0c44dc"


def test_sign_and_sign_type_are_excluded() -> None:
    with_type = {**DOC_EXAMPLE, "sign_type": "HMAC-SHA256", "sign": "anything"}
    assert signing.sign_string(with_type) == DOC_SIGN_STRING


def test_empty_values_are_skipped() -> None:
    fields = {**DOC_EXAMPLE, "extra": "", "other": None}
    assert signing.sign_string(fields) == DOC_SIGN_STRING
    # Zero is a value, not an empty one.
    assert signing.sign_string({"fee": 0, "b": "x"}) == "b=x&fee=0"


def test_no_url_encoding() -> None:
    fields = {"notify_url": "https://shop.example/n?a=1&b=한"}
    assert signing.sign_string(fields) == "notify_url=https://shop.example/n?a=1&b=한"


def test_decimal_keeps_its_text() -> None:
    parsed = parse_json(b'{"a": 1.50, "b": 100}')
    assert parsed["a"] == Decimal("1.50")
    assert signing.sign_string(parsed) == "a=1.50&b=100"


def test_verify_md5_default_and_explicit() -> None:
    fields = dict(DOC_EXAMPLE)
    fields["sign"] = signing.sign(fields, KEY)
    assert signing.verify(fields, KEY, signing.MD5)
    assert signing.verify({**fields, "sign": fields["sign"].upper()}, KEY, signing.MD5)
    assert signing.verify({**fields, "sign_type": "MD5"}, KEY, signing.MD5)
    # An HMAC-SHA256 receiver takes no MD5 message, declared or not (no downgrade).
    assert not signing.verify(fields, KEY, signing.HMAC_SHA256)
    assert not signing.verify({**fields, "sign_type": "MD5"}, KEY, signing.HMAC_SHA256)


def test_verify_hmac_per_sign_type() -> None:
    fields = {**DOC_EXAMPLE, "sign_type": "HMAC-SHA256"}
    fields["sign"] = signing.sign(fields, KEY, signing.HMAC_SHA256)
    assert signing.verify(fields, KEY, signing.HMAC_SHA256)
    # An MD5 receiver takes no HMAC message either: only the configured type verifies.
    assert not signing.verify(fields, KEY, signing.MD5)
    # The same signature read as MD5 (sign_type removed) does not verify.
    without = {k: v for k, v in fields.items() if k != "sign_type"}
    assert not signing.verify(without, KEY, signing.MD5)
    assert not signing.verify(without, KEY, signing.HMAC_SHA256)


def test_tampered_field_rejected() -> None:
    fields = dict(DOC_EXAMPLE)
    fields["sign"] = signing.sign(fields, KEY)
    assert not signing.verify({**fields, "amount": "50000100"}, KEY, signing.MD5)
    assert not signing.verify({**fields, "new_field": "x"}, KEY, signing.MD5)
    assert not signing.verify(fields, "another-key", signing.MD5)


def test_missing_or_unknown_sign_rejected() -> None:
    assert not signing.verify(DOC_EXAMPLE | {"sign": ""}, KEY, signing.MD5)
    assert not signing.verify(
        {k: v for k, v in DOC_EXAMPLE.items() if k != "sign"}, KEY, signing.MD5
    )
    fields = dict(DOC_EXAMPLE)
    fields["sign"] = signing.sign(fields, KEY)
    assert not signing.verify({**fields, "sign_type": "SHA1"}, KEY, signing.MD5)
    assert not signing.verify({**fields, "sign": 12345}, KEY, signing.MD5)
