"""The console's pure rules: masking that leaves times, amounts and ids alone, amounts typed
in major units, and the banks a refund can go to."""

from __future__ import annotations

import pytest

from checkout.domain.accounts import KOREA_BANKS, MEXICO_BANK_CODES, clabe_check_digit
from checkout.domain.banks import refund_bank_choices
from checkout.domain.money import Money, MoneyError, parse_typed_amount
from checkout.logging_setup import mask_text


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07 10:39:10",  # was "<mobile>:39:10"
        "paid at 2026-12-07 23:39:10 UTC",
        "2026.12.07 10:39:10",
        "07/12/2026 10:39:10",
        "2026-12-07T10:39:10.123456+00:00",
        "created_at=2026-12-07%2010%3A39%3A10",
        "amount 5512345678 MXN",
        "amount 3012345678 KRW",
        "cs_2026120710 re_5512345678 trade_no=5512345678ab",
        "KRW 1,200,000 · MXN 120.50",
        "expires=1767225600",
    ],
)
def test_times_amounts_and_ids_stay_readable(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("mobile 5512345678 at 2026-12-07 10:39:10", "5512345678"),
        ("2026-12-07 10:39:10 celular (55) 1234-5678", "1234-5678"),
        ("010-1234-5678 2026-12-07 10:39:10", "1234-5678"),
        ("2026-12-07 10:39:10 payer minsu.kim@example.com", "minsu"),
        ("born 17/05/1990, paid 2026-12-07 10:39:10", "1990"),
    ],
)
def test_personal_data_beside_a_time_is_still_masked(text: str, leaked: str) -> None:
    masked = mask_text(text)
    assert leaked not in masked and "2026-12-07 10:39:10" in masked, masked


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("12,000", "KRW", 12000),
        ("12000", "KRW", 12000),
        (" 1,200,000 ", "KRW", 1200000),
        ("120.50", "MXN", 12050),
        ("120.5", "MXN", 12050),
        ("1,234.05", "MXN", 123405),
        ("120", "MXN", 12000),
    ],
)
def test_typed_amounts_are_major_units(typed: str, currency: str, minor: int) -> None:
    assert parse_typed_amount(typed, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("typed", "currency", "says"),
    [
        ("120.505", "MXN", "at most 2 decimals"),
        ("12000.5", "KRW", "no decimals"),
        ("12.000", "KRW", "no decimals"),
        ("1,2000", "KRW", "as digits"),
        ("-5", "KRW", "as digits"),
        ("1e5", "KRW", "as digits"),
        ("abc", "MXN", "as digits"),
        ("", "MXN", "as digits"),
        ("٣٤", "KRW", "as digits"),
        ("0", "KRW", "above zero"),
        ("0.00", "MXN", "above zero"),
        ("9" * 40, "KRW", "as digits"),
    ],
)
def test_bad_typed_amounts_say_why(typed: str, currency: str, says: str) -> None:
    with pytest.raises(MoneyError, match=says):
        parse_typed_amount(typed, currency)


def test_refund_banks_are_the_ones_people_bank_at_in_their_language() -> None:
    korean = dict(refund_bank_choices("KRW", "ko"))
    assert korean["011"] == "NH농협은행" and korean["004"] == "KB국민은행"
    assert set(korean) <= set(KOREA_BANKS)
    assert "002" in korean  # KDB산업은행 keeps personal accounts too
    assert dict(refund_bank_choices("KRW", "en"))["011"] == "NH NongHyup Bank"
    mexican = dict(refund_bank_choices("MXN", "es"))
    assert mexican["40012"] == "BBVA México" and mexican["90646"] == "STP"
    assert set(mexican) <= set(MEXICO_BANK_CODES)
    for institution in ("2001", "90901", "90902"):  # BANXICO, CLS, INDEVAL
        assert institution not in mexican
    # Every code is one the refund API takes for a CLABE of that bank.
    clabe = "012180" + "01234567890"
    clabe += str(clabe_check_digit(clabe))
    assert f"40{clabe[:3]}" in mexican
