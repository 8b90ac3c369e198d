"""Shopper-page rules without a database: mobiles as people type them, bank names per
language, the Code 128 symbol (tests/browser/test_barcode.py scans it), method kinds."""

from __future__ import annotations

from datetime import date

import pytest

from checkout.config import _method_config
from checkout.domain.banks import bank_name, clabe_bank_code
from checkout.domain.code128 import PATTERNS, code128_svg, modules, symbol_values
from checkout.domain.errors import NotEncodable
from checkout.domain.payer import national_mobile, validate_payer
from checkout.providers.base import MethodConfig, Need, PayerRules, ProviderConfig
from checkout.services.catalog import MethodKind, method_kind
from checkout.services.shopper.form import payer_fields
from tests.conftest import LiveApp

KR = PayerRules(mobile=Need.REQUIRED, mobile_country="KR")
MX = PayerRules(mobile=Need.REQUIRED, mobile_country="MX", timezone="America/Mexico_City")


@pytest.mark.parametrize(
    ("typed", "country", "national"),
    [
        ("+82 10-1234-5678", "KR", "01012345678"),
        ("+82 010 1234 5678", "KR", "01012345678"),
        ("+82 (0)10-1234-5678", "KR", "01012345678"),
        ("0082-10-1234-5678", "KR", "01012345678"),
        ("010.1234.5678", "KR", "01012345678"),
        ("(010) 1234-5678", "KR", "01012345678"),
        ("+52 55 1234 5678", "MX", "5512345678"),
        ("+52 1 55 1234 5678", "MX", "5512345678"),
        ("+52 (55) 1234-5678", "MX", "5512345678"),
        ("55-1234-5678", "MX", "5512345678"),
    ],
)
def test_international_and_punctuated_mobiles_are_accepted(
    typed: str, country: str, national: str
) -> None:
    assert national_mobile(typed, country) == national
    rules = KR if country == "KR" else MX
    data = {"first_name": "A", "last_name": "B", "email": "a@example.com", "mobile": typed}
    details, errors = validate_payer(rules, data, date(2026, 1, 1))
    assert errors == {} and details is not None and details.mobile == national


@pytest.mark.parametrize(
    ("typed", "country"),
    [("+52 55 1234 5678", "KR"), ("+82 10-1234-5678", "MX"), ("+82 10-1234-567a", "KR")],
)
def test_another_countrys_number_is_still_refused(typed: str, country: str) -> None:
    rules = KR if country == "KR" else MX
    data = {"first_name": "A", "last_name": "B", "email": "a@example.com", "mobile": typed}
    _details, errors = validate_payer(rules, data, date(2026, 1, 1))
    assert errors == {"mobile": f"invalid_mobile_{country.lower()}"}


def test_bank_names_follow_the_page_language() -> None:
    # TeemoPay's code, Diamond Pay's code and English name, KFTC's code: one bank.
    for code, name in (("KBSTAR", "국민은행"), ("KB", "KB Kookmin Bank"), ("004", None)):
        assert bank_name(code, name, "ko") == "KB국민은행"
        assert bank_name(code, name, "en") == "KB Kookmin Bank"
        assert bank_name(code, name, "es") == "KB Kookmin Bank"
    assert bank_name("IBK", "기업은행", "en") == "IBK Industrial Bank of Korea"
    assert bank_name(None, "Shinhan Bank", "ko") == "신한은행"
    assert bank_name("ZZ9", "Some New Bank", "ko") == "Some New Bank"  # unknown: as sent
    assert bank_name(clabe_bank_code("646180157000000004"), None, "es") == "STP"
    assert clabe_bank_code("12345") is None


def test_code128_table_is_the_standards() -> None:
    assert len(PATTERNS) == 107 and len(set(PATTERNS)) == 107
    assert all(sum(map(int, p)) == 11 for p in PATTERNS[:106]) and PATTERNS[106] == "2331112"


def test_code128_symbols_and_check_digit() -> None:
    # Code set C for even-length digits: start C, pairs, check = (105 + 12*1 + 34*2) % 103.
    assert symbol_values("1234") == [105, 12, 34, 82, 106]
    # Code set B otherwise: P J J 1 2 3 C are 48 42 42 17 18 19 35; the check is
    # (104 + 48*1 + 42*2 + 42*3 + 17*4 + 18*5 + 19*6 + 35*7) % 103 = 879 % 103 = 55.
    assert symbol_values("PJJ123C") == [104, 48, 42, 42, 17, 18, 19, 35, 55, 106]
    bars = modules("1234")
    assert bars.startswith("11010011100")  # start C: 211232
    assert bars.endswith("1100011101011")  # stop: 2331112
    assert len(bars) == 11 * 4 + 13
    with pytest.raises(NotEncodable):
        symbol_values("한국")


def test_code128_svg_is_self_contained() -> None:
    svg = code128_svg("98765432101234", label="<ref>")
    assert svg.startswith("<svg") and 'aria-label="&lt;ref&gt;"' in svg
    assert "href" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_method_kinds() -> None:
    def method(**options: str) -> MethodConfig:
        return MethodConfig(code="m", provider="p", name="M", options=options)

    def parsed(**options: str) -> MethodConfig:  # as config.py reads a PayPro method
        provider = ProviderConfig(name="paypro_kr", type="paypro", base_url="x", settings={})
        return _method_config("m", {"provider": "paypro_kr", **options}, {"paypro_kr": provider})

    assert method_kind(parsed(channel_code="EWALLET")) == MethodKind.EWALLET
    assert method_kind(parsed(way_code="store")) == MethodKind.CASH
    assert method_kind(parsed(way_code="va")) == MethodKind.BANK_TRANSFER
    assert method_kind(method(kind="cash", way_code="va")) == MethodKind.CASH
    assert method_kind(parsed(kind="cash", way_code="va")) == MethodKind.CASH


def test_korean_pages_ask_the_family_name_first(live_app: LiveApp) -> None:
    rules = PayerRules()
    with live_app.app.test_request_context("/"):
        ko = [f.name for f in payer_fields(rules, {}, {}, "ko")]
        en = [f.name for f in payer_fields(rules, {}, {}, "en")]
    assert ko[:2] == ["last_name", "first_name"] and en[:2] == ["first_name", "last_name"]
