"""PayPro's MD5 sign: the documented rule, worked on the documented KR example."""

from __future__ import annotations

import hmac
import json
from decimal import Decimal

import pytest

from checkout.providers.paypro import signing

SECRET = "paypro-test-secret-0001"

# The request example of paypro-kr-paymentlink.txt, as published (amount is a number there).
KR_EXAMPLE = """{
"sign": "363b4674a1c1772e8a50295dc19d6727",
"timestamp": "1732988442913",
"tradeNo": "0b4ece82fa9749e8b8e57fa64931b7f8",
"subMerchantNo": "982773727848278231",
"amount": 1000000,
"mobile": "01012459077",
"firstname": "Kevin",
"lastname": "Kim",
"email": "kevin@163.com",
"channelCode": "EWALLET",
"wayCode": "KAKAOPAY",
"ipAddress": "192.168.0.1",
"dateOfBirth": "1992-08-15",
"notifyUrl": "https://google.com",
"returnUrl": "https://google.com/return",
"remark": "test"
}"""

KR_EXAMPLE_SIGN_STRING = (
    "amount=1000000"
    "channelCode=EWALLET"
    "dateOfBirth=1992-08-15"
    "email=kevin@163.com"
    "firstname=Kevin"
    "ipAddress=192.168.0.1"
    "lastname=Kim"
    "mobile=01012459077"
    "notifyUrl=https://google.com"
    "remark=test"
    "returnUrl=https://google.com/return"
    "subMerchantNo=982773727848278231"
    "timestamp=1732988442913"
    "tradeNo=0b4ece82fa9749e8b8e57fa64931b7f8"
    "wayCode=KAKAOPAY"
)
# md5(KR_EXAMPLE_SIGN_STRING + SECRET), computed outside Python with md5sum.
KR_EXAMPLE_MD5 = "aed8d8c35c25f8f23acd0c263214ab9e"


def example() -> dict[str, object]:
    return json.loads(KR_EXAMPLE, parse_float=Decimal)


def test_documented_example_sign_string() -> None:
    assert signing.sign_string(example()) == KR_EXAMPLE_SIGN_STRING


def test_documented_example_md5_with_fixed_secret() -> None:
    assert signing.salt_with_secret("abc", SECRET) == "abc" + SECRET  # the inferred rule
    assert signing.sign(example(), SECRET) == KR_EXAMPLE_MD5
    assert signing.verify(example(), SECRET, KR_EXAMPLE_MD5)


def test_number_and_string_amount_sign_alike() -> None:
    as_string = {**example(), "amount": "1000000"}
    assert signing.sign(as_string, SECRET) == KR_EXAMPLE_MD5


def test_sign_field_is_excluded() -> None:
    without = {k: v for k, v in example().items() if k != "sign"}
    assert signing.sign(without, SECRET) == KR_EXAMPLE_MD5
    assert "sign=" not in signing.sign_string(example())


@pytest.mark.parametrize("empty", ["", None])
def test_empty_values_are_skipped(empty: str | None) -> None:
    fields = {"tradeNo": "t1", "amount": "300", "remark": empty, "notifyUrl": "https://google.com"}
    assert signing.sign_string(fields) == "amount=300notifyUrl=https://google.comtradeNo=t1"
    # md5("amount=300notifyUrl=https://google.comtradeNo=t1secret"), from md5sum
    assert signing.sign(fields, "secret") == "06cfe590fb4ab8487bd01942913f047d"


def test_scalar_text() -> None:
    assert signing.field_text(True) == "true"
    assert signing.field_text(False) == "false"
    assert signing.field_text(Decimal("1000.00")) == "1000.00"
    assert signing.field_text(1732988442913) == "1732988442913"
    assert signing.field_text("") is None


def test_verify_rejects_tampered_field_wrong_secret_and_missing_sign() -> None:
    tampered = {**example(), "amount": "1000001"}
    assert not signing.verify(tampered, SECRET, KR_EXAMPLE_MD5)
    assert not signing.verify(example(), "other-secret", KR_EXAMPLE_MD5)
    assert not signing.verify(example(), SECRET, None)
    assert not signing.verify(example(), SECRET, "")
    assert not signing.verify(example(), SECRET, "ünïcode")
    assert signing.verify(example(), SECRET, KR_EXAMPLE_MD5.upper())  # hex case is noise


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signing.verify(example(), SECRET, KR_EXAMPLE_MD5)
    assert not signing.verify(example(), SECRET, "0" * 32)
    assert len(calls) == 2
