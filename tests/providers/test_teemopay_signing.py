"""TeemoPay's string to sign, SHA1withRSA round trips, and key loading at build time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from checkout.providers import teemopay
from checkout.providers.base import MethodConfig, ProviderConfig
from checkout.providers.teemopay import mapping, signing
from checkout.sandbox.keys import TeemoPayKeyFiles, generate_keypair

NONCE = "0123456789abcdef0123456789abcdef"

# The request example from teemopay-kr-payin.txt, as published.
DOC_REQUEST = {
    "realName": "TeemoPay",
    "merchantName": "MerchantNameExample",
    "amount": "1000",
    "phone": "01012345678",
    "callbackUrl": "https://www.callbackexample.com",
    "merchantOrderNo": "OrderNoExample",
    "email": "TeemoPay@example.com",
    "paymentType": 801,
    "sign": "YOUR_SIGN",
}


def test_string_to_sign_for_documented_example() -> None:
    assert signing.string_to_sign(DOC_REQUEST, NONCE) == (
        "amount=1000"
        "&callbackUrl=https://www.callbackexample.com"
        "&email=TeemoPay@example.com"
        "&merchantName=MerchantNameExample"
        "&merchantOrderNo=OrderNoExample"
        "&paymentType=801"
        "&phone=01012345678"
        "&realName=TeemoPay"
        "&nonce=0123456789abcdef0123456789abcdef"
    )


def test_string_to_sign_skips_empty_values_and_keeps_decimal_text() -> None:
    body = mapping.parse_json(
        b'{"b": "", "a": null, "paymentAmount": 1000.00, "status": 2, "ok": true, "sign": "x"}'
    )
    assert signing.string_to_sign(body, "n") == "ok=true&paymentAmount=1000.00&status=2&nonce=n"


def test_scalar_text() -> None:
    assert signing.scalar_text(801) == "801"
    assert signing.scalar_text(Decimal("1000.00")) == "1000.00"
    assert signing.scalar_text("기업은행") == "기업은행"
    assert signing.scalar_text(None) == ""
    assert signing.scalar_text(False) == "false"


def test_sign_verify_round_trip(teemopay_keys: TeemoPayKeyFiles) -> None:
    private = signing.load_private_key(teemopay_keys.merchant_private.read_bytes())
    public = signing.load_public_key(teemopay_keys.merchant_public.read_bytes())
    fields = {k: v for k, v in DOC_REQUEST.items() if k != "sign"}
    signature = signing.sign(fields, NONCE, private)
    assert signing.verify({**fields, "sign": signature}, NONCE, signature, public)


def test_verify_fails_on_tampered_field_other_nonce_or_other_key() -> None:
    pair, other = generate_keypair(), generate_keypair()
    private = signing.load_private_key(pair.private_pem)
    public = signing.load_public_key(pair.public_pem)
    fields = {k: v for k, v in DOC_REQUEST.items() if k != "sign"}
    signature = signing.sign(fields, NONCE, private)

    assert not signing.verify({**fields, "amount": "1001"}, NONCE, signature, public)
    assert not signing.verify(fields, "f" * 32, signature, public)
    assert not signing.verify(fields, NONCE, signature, signing.load_public_key(other.public_pem))
    assert not signing.verify(fields, NONCE, "not base64!", public)
    assert not signing.verify(fields, NONCE, "", public)


# ---------------------------------------------------------------- build()
def _config(keys: TeemoPayKeyFiles, **settings: object) -> ProviderConfig:
    base: dict[str, object] = {
        "app_code": "APP1",
        "merchant_name": "Shop",
        "private_key_file": str(keys.merchant_private),
        "platform_public_key_file": str(keys.platform_public),
    }
    base.update(settings)
    return ProviderConfig(
        name="teemopay_kr",
        type="teemopay",
        base_url="http://127.0.0.1:9",
        settings=base,
        methods=(MethodConfig("va", "teemopay_kr", "VA", {"payment_type": 801}),),
    )


def test_build_loads_keys(teemopay_keys: TeemoPayKeyFiles) -> None:
    provider = teemopay.build(_config(teemopay_keys))
    assert provider.currency == "KRW"
    assert provider.notify_ack.body == "SUCCESS"
    assert provider.country == "KR"


def test_build_rejects_missing_key_file(teemopay_keys: TeemoPayKeyFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=r"teemopay_kr.*private_key_file.*cannot be read"):
        teemopay.build(_config(teemopay_keys, private_key_file=str(missing)))


def test_build_rejects_unusable_key(teemopay_keys: TeemoPayKeyFiles, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ValueError, match=r"platform_public_key_file.*not a usable RSA PEM key"):
        teemopay.build(_config(teemopay_keys, platform_public_key_file=str(garbage)))
    # A private key where the public one belongs is refused too.
    with pytest.raises(ValueError, match="platform_public_key_file"):
        teemopay.build(
            _config(teemopay_keys, platform_public_key_file=str(teemopay_keys.merchant_private))
        )


def test_build_rejects_missing_setting_and_bad_payment_type(
    teemopay_keys: TeemoPayKeyFiles,
) -> None:
    with pytest.raises(ValueError, match=r"settings\.app_code is required"):
        teemopay.build(_config(teemopay_keys, app_code=""))
    config = _config(teemopay_keys)
    bad = ProviderConfig(
        name=config.name,
        type=config.type,
        base_url=config.base_url,
        settings=config.settings,
        methods=(MethodConfig("card", "teemopay_kr", "Card", {"payment_type": 802}),),
    )
    with pytest.raises(ValueError, match="method 'card' has payment_type 802"):
        teemopay.build(bad)
