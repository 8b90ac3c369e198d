"""Refund destination checks and the account-data cipher (checkout/domain)."""

from __future__ import annotations

import pytest

from checkout.domain.account_crypto import AccountCipher
from checkout.domain.accounts import (
    CLABE_BANK_PREFIXES,
    KOREA_BANKS,
    clabe_check_digit,
    validate_bank_code,
    validate_clabe,
    validate_holder_name,
    validate_korean_account,
    validate_korean_account_number,
    validate_mexican_account,
)
from checkout.domain.banks import bank_name
from checkout.domain.errors import AccountCipherError, AccountError
from checkout.providers.registry import spec_of
from checkout.providers.teemopay.payout_mapping import BANK_NAMES


# ---------------------------------------------------------------- holder names
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("홍길동", "홍길동"),
        ("  홍  길동 ", "홍 길동"),
        ("KIM MINJI", "KIM MINJI"),
        ("José Núñez", "José Núñez"),
        ("e\u0301va", "éva"),  # NFC: a combining accent becomes one letter
        ("이" * 40, "이" * 40),
        # NFKC before the checks (issue 22): fullwidth Latin went to the bank as typed.
        ("ＨＯＮＧ", "HONG"),
        ("ＫＩＭ\u3000ＭＩＮＪＩ", "KIM MINJI"),  # an ideographic space between
        ("ﬁona", "fiona"),  # a ligature is its letters
    ],
)
def test_holder_names_that_banks_take(given: str, kept: str) -> None:
    assert validate_holder_name(given) == kept


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("", "required"),
        ("   ", "required"),
        ("김", "too_short"),
        ("이" * 41, "too_long"),
        ("Kim-Minji", "invalid_characters"),
        ("홍길동1", "invalid_characters"),
        ("O'Brien", "invalid_characters"),
        ("<script>", "invalid_characters"),
        ("홍\u200b길동", "invalid_characters"),  # zero-width space
        ("홍\x00길동", "invalid_characters"),
        ("🙂🙂", "invalid_characters"),
        ("㈜한빛", "invalid_characters"),  # NFKC: "(주)한빛", brackets are no letters
        ("ＨＯＮＧ１", "invalid_characters"),  # a fullwidth digit is a digit
    ],
)
def test_holder_names_that_banks_refuse(given: str, code: str) -> None:
    with pytest.raises(AccountError) as info:
        validate_holder_name(given)
    assert (info.value.field, info.value.code) == ("holder_name", code)


def holder_name_max(provider_type: str) -> int:
    return spec_of(provider_type).holder_name_max


def test_holder_name_length_per_provider() -> None:
    assert holder_name_max("diamondpay") == 16
    assert holder_name_max("teemopay") == 40
    assert holder_name_max("paypro") == 40  # inferred
    with pytest.raises(AccountError, match="at most 16"):
        validate_holder_name("가" * 17, max_length=holder_name_max("diamondpay"))


# ---------------------------------------------------------------- Korean accounts
def test_korean_account_numbers() -> None:
    assert validate_korean_account_number("110-123-456789") == "110123456789"
    assert validate_korean_account_number(" 3333 01 2345678 ") == "3333012345678"
    for bad, code in [
        ("", "required"),
        ("12345678", "bad_length"),
        ("1" * 17, "bad_length"),
        ("110-12a-456789", "not_digits"),
        ("１１０１２３４５６７８９", "not_digits"),  # full-width digits
    ]:
        with pytest.raises(AccountError) as info:
            validate_korean_account_number(bad)
        assert info.value.code == code


def test_bank_codes_come_from_the_providers_list() -> None:
    assert validate_bank_code("088") == "088"
    with pytest.raises(AccountError) as info:
        validate_bank_code("999")
    assert info.value.code == "unsupported_bank"
    with pytest.raises(AccountError):
        validate_bank_code("088", banks={"004"})
    assert KOREA_BANKS == BANK_NAMES  # the domain's copy is TeemoPay's published list


def test_a_whole_korean_account() -> None:
    account = validate_korean_account(
        "090", "3333-01-2345678", "홍길동", holder_name_max=holder_name_max("diamondpay")
    )
    assert (account.bank_code, account.account_number, account.holder_name) == (
        "090",
        "3333012345678",
        "홍길동",
    )


# ---------------------------------------------------------------- CLABE
@pytest.mark.parametrize(
    "clabe",
    ["002010077777777771", "002115016003269411", "646180110400000007", "014027000005555558"],
)
def test_known_valid_clabes(clabe: str) -> None:
    assert validate_clabe(clabe) == clabe


def test_clabe_with_spaces_and_the_chosen_bank() -> None:
    assert validate_clabe("002 010 07777777777 1", bank_code="40002") == "002010077777777771"
    with pytest.raises(AccountError) as info:
        validate_clabe("002010077777777771", bank_code="40012")  # BBVA, not Banamex
    assert info.value.code == "bank_mismatch"


@pytest.mark.parametrize(
    ("clabe", "code"),
    [
        ("002010077777777772", "bad_check_digit"),
        ("012180001234567897", "bad_check_digit"),  # right would be 9
        ("646180110400000070", "bad_check_digit"),  # two digits swapped
        ("00201007777777777", "bad_length"),
        ("0020100777777777710", "bad_length"),
        ("00201007777777777a", "bad_length"),
        ("999010077777777771", "unknown_bank"),
        ("", "required"),
    ],
)
def test_invalid_clabes(clabe: str, code: str) -> None:
    with pytest.raises(AccountError) as info:
        validate_clabe(clabe)
    assert info.value.code == code


def test_clabe_bank_check_can_be_skipped_for_banks_off_the_list() -> None:
    # IXE (032) is not on TeemoPay's list; its CLABE is still well formed.
    assert "032" not in CLABE_BANK_PREFIXES
    assert validate_clabe("032180000118359719", bank_prefixes=None) == "032180000118359719"


def test_check_digit_of_a_known_clabe() -> None:
    assert clabe_check_digit("64618011040000000") == 7


def test_every_single_digit_change_breaks_the_check_digit() -> None:
    valid = "646180110400000007"
    for position in range(17):
        for digit in "0123456789":
            if digit == valid[position]:
                continue
            changed = valid[:position] + digit + valid[position + 1 :]
            with pytest.raises(AccountError):
                validate_clabe(changed, bank_prefixes=None)


# ---------------------------------------------------------------- Mexican accounts
BBVA_CLABE = "012180001234567899"  # 012: BBVA MEXICO, SPEI 40012


@pytest.mark.parametrize("given", ["012", "40012", " 40012 ", "", "   ", None])
def test_a_clabe_names_its_bank_given_either_way_or_not_at_all(given: str | None) -> None:
    """Issue 23: `012` (the code people know) was refused `unsupported_bank`."""
    account = validate_mexican_account(given, BBVA_CLABE, "Ana López")
    assert (account.bank_code, account.clabe, account.holder_name) == (
        "40012",
        BBVA_CLABE,
        "Ana López",
    )
    assert bank_name(account.bank_code, None, "es") == "BBVA México"


@pytest.mark.parametrize(
    ("clabe", "bank", "spei"),
    [
        ("002010077777777771", "002", "40002"),  # Banamex
        ("646180110400000007", "646", "90646"),  # STP, a 90xxx participant
        ("014027000005555558", "40014", "40014"),  # Santander
    ],
)
def test_other_banks_by_their_clabes(clabe: str, bank: str, spei: str) -> None:
    assert validate_mexican_account(bank, clabe, "Ana López").bank_code == spei
    assert validate_mexican_account(None, clabe, "Ana López").bank_code == spei


@pytest.mark.parametrize(
    ("given", "field", "code", "words"),
    [
        ("40002", "bank_code", "bank_mismatch", ["40002 is BANAMEX", "BBVA MEXICO", "012"]),
        ("002", "bank_code", "bank_mismatch", ["BANAMEX", "40012"]),
        ("999", "bank_code", "unsupported_bank", ["999", "012 or 40012"]),
        ("90012", "bank_code", "unsupported_bank", ["90012"]),  # no such participant
        ("BBVA", "bank_code", "unsupported_bank", ["BBVA"]),
        ("088", "bank_code", "unsupported_bank", ["088"]),  # a Korean bank's code
    ],
)
def test_a_bank_that_is_not_the_clabes_is_refused_clearly(
    given: str, field: str, code: str, words: list[str]
) -> None:
    with pytest.raises(AccountError) as info:
        validate_mexican_account(given, BBVA_CLABE, "Ana López")
    assert (info.value.field, info.value.code) == (field, code)
    for word in words:
        assert word in info.value.message


def test_the_clabe_is_checked_before_the_bank_and_the_name_after() -> None:
    bad_digit = BBVA_CLABE[:-1] + "0"
    with pytest.raises(AccountError) as info:
        validate_mexican_account("40002", bad_digit, "")
    assert (info.value.field, info.value.code) == ("account_number", "bad_check_digit")
    with pytest.raises(AccountError) as info:
        validate_mexican_account("40002", BBVA_CLABE, "")
    assert info.value.field == "bank_code"
    with pytest.raises(AccountError) as info:
        validate_mexican_account("012", BBVA_CLABE, "")
    assert info.value.field == "holder_name"
    with pytest.raises(AccountError) as info:
        validate_mexican_account(None, "999010077777777771", "Ana")
    assert (info.value.field, info.value.code) == ("account_number", "unknown_bank")


def test_a_providers_own_list_bounds_the_banks() -> None:
    only_banamex = {"40002"}
    assert validate_mexican_account("002", "002010077777777771", "Ana", banks=only_banamex)
    with pytest.raises(AccountError) as info:
        validate_mexican_account(None, BBVA_CLABE, "Ana", banks=only_banamex)
    assert info.value.code == "unknown_bank"


def test_the_holder_name_limit_is_the_providers() -> None:
    with pytest.raises(AccountError, match="at most 16"):
        validate_mexican_account(
            None, BBVA_CLABE, "A" * 17, holder_name_max=spec_of("diamondpay").holder_name_max
        )


# ---------------------------------------------------------------- cipher
def test_encrypt_decrypt_round_trip_and_no_plain_text() -> None:
    cipher = AccountCipher([AccountCipher.generate_key()])
    token = cipher.encrypt("088:110123456789:홍길동")
    assert "110123456789" not in token
    assert cipher.decrypt(token) == "088:110123456789:홍길동"
    data = {"bank_code": "088", "account_number": "110123456789", "holder_name": "홍길동"}
    assert cipher.decrypt_json(cipher.encrypt_json(data)) == data


def test_rotation_new_key_first_old_keys_still_decrypt() -> None:
    old, new = AccountCipher.generate_key(), AccountCipher.generate_key()
    before = AccountCipher([old])
    token = before.encrypt("110123456789")
    after = AccountCipher([new, old])
    assert after.decrypt(token) == "110123456789"  # old data still opens
    rotated = after.rotate(token)
    assert rotated != token
    assert AccountCipher([new]).decrypt(rotated) == "110123456789"  # now under the new key
    with pytest.raises(AccountCipherError):
        AccountCipher([new]).decrypt(token)  # once the old key is dropped, old tokens die
    with pytest.raises(AccountCipherError):
        before.decrypt(after.encrypt("x"))  # new data is under the new key


def test_bad_keys_and_tokens() -> None:
    with pytest.raises(AccountCipherError):
        AccountCipher([])
    with pytest.raises(AccountCipherError, match="key 2") as info:
        AccountCipher([AccountCipher.generate_key(), "not-a-key"])
    assert "not-a-key" not in str(info.value)
    cipher = AccountCipher.from_setting(
        f"{AccountCipher.generate_key()}, {AccountCipher.generate_key()}"
    )
    assert cipher.key_count == 2
    with pytest.raises(AccountCipherError):
        cipher.decrypt("garbage")
    with pytest.raises(AccountCipherError):
        cipher.decrypt_json(cipher.encrypt("[1, 2]"))
    assert "key" not in repr(cipher).lower().replace("keys=", "")


def test_refund_domain_modules_import_no_flask_orm_or_providers() -> None:
    # Read the modules' own imports (importing `checkout` itself loads the app factory).
    import ast
    from pathlib import Path

    domain = Path(__file__).resolve().parent.parent / "checkout" / "domain"
    for name in ("accounts.py", "account_crypto.py", "refunds.py"):
        tree = ast.parse((domain / name).read_text())
        imported = [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert imported, name
        for module in imported:
            assert not module.startswith(
                ("flask", "sqlalchemy", "requests", "checkout.providers")
            ), (
                name,
                module,
            )
            assert not module.startswith("checkout.") or module.startswith("checkout.domain"), (
                name,
                module,
            )
