"""Refund destinations: the checks a bank account must pass before money is sent to it.

Pure functions (no Flask, no ORM). Each raises AccountError naming the field and a stable
code, so a page can word it in the shopper's language and an API can return it as JSON.

Sources: psp-docs/more/teemopay.md sections 2, 9.1, 9.3, 10, 11 (holder names, Korean
bank list, Mexican banks and CLABE rule); more/diamondpay.md section 10 (field lengths).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

from checkout.domain.errors import AccountError

# ---------------------------------------------------------------- errors


# ---------------------------------------------------------------- holder names
HOLDER_NAME_MIN = 2  # "at least 2 characters" (TeemoPay payout `realName`) [doc]
# The longest holder name is each provider's (ProviderSpec.holder_name_max); this bound holds
# where none is given.
DEFAULT_HOLDER_NAME_MAX = 40


def _is_name_letter(char: str) -> bool:
    # Letters of any script (Hangul syllables and jamo are category Lo), no digits or marks
    # of punctuation: "no special characters" [doc].
    return unicodedata.category(char).startswith("L")


def holder_name_text(name: str) -> str:
    """A holder name as banks compare it, before any check: NFKC (a fullwidth `ＨＯＮＧ` typed
    on a Korean or Japanese keyboard is `HONG`, halfwidth Hangul is Hangul, a combining
    accent joins its letter), trimmed, inner spaces (an ideographic space too) collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).split())


def validate_holder_name(name: str, *, max_length: int = DEFAULT_HOLDER_NAME_MAX) -> str:
    """The account holder's name as the bank has it: letters (Hangul or Latin, any script)
    and single spaces, 2 to `max_length` characters. Returns it normalised (`holder_name_text`),
    then checked. Korean names are usually written without spaces (홍길동)."""
    if not isinstance(name, str):
        raise AccountError("holder_name", "required", "the account holder's name is required")
    text = holder_name_text(name)
    if not text:
        raise AccountError("holder_name", "required", "the account holder's name is required")
    if any(not (_is_name_letter(c) or c == " ") for c in text):
        raise AccountError(
            "holder_name", "invalid_characters", "the name may hold letters and spaces only"
        )
    if len(text) < HOLDER_NAME_MIN:
        raise AccountError("holder_name", "too_short", "the name needs at least 2 letters")
    if len(text) > max_length:
        raise AccountError(
            "holder_name", "too_long", f"the name may be at most {max_length} characters"
        )
    return text


# ---------------------------------------------------------------- Korean accounts
# Korean bank codes (KFTC, 3 digits) with TeemoPay's published names [doc, section 9.1].
KOREA_BANKS: dict[str, str] = {
    "088": "Shinhan Bank",
    "020": "Woori Bank",
    "004": "Kookmin Bank",
    "011": "National Agricultural Cooperative Federation",
    "081": "KEB Hana Bank",
    "027": "Citibank Korea",
    "045": "Korea Federation of Community Credit Cooperative",
    "048": "National Credit Union Federation of Korea",
    "071": "Korea Post Office",
    "003": "Industrial Bank of Korea",
    "002": "Korea Development Bank",
    "090": "Kakao Bank",
    "089": "KBank",
    "092": "Toss Bank",
    "023": "Standard Chartered First Bank Korea",
    "007": "Suhyup Bank",
    "031": "Daegu Bank",
    "032": "BNK Busan Bank",
    "034": "Gwangju Bank",
    "035": "Jeju Bank",
    "037": "Jeonbuk Bank",
    "039": "Kyongnam Bank",
    "050": "Saving Bank",
    "054": "HSBC Bank",
    "055": "Deutsche Bank",
    "057": "JPMorgan Chase Bank",
    "060": "BOA Bank",
    "061": "BNP Paribas Bank",
    "062": "Industrial and Commercial Bank of China",
    "063": "Bank of China",
    "064": "National Forestry Cooperative Federation",
    "067": "China Construction Bank",
}
_ACCOUNT_SEPARATORS = re.compile(r"[\s-]")


def korean_account_length() -> tuple[int, int]:
    """INFERRED: no provider publishes a Korean account number's length (TeemoPay has an
    error 430 "card number length is incorrect" without the rule; Diamond Pay `number` is
    String(32)). Korean bank account numbers run 10 to 14 digits; 16 leaves room for
    virtual and legacy formats. Corrected here only."""
    return 10, 16


def validate_korean_account_number(number: str) -> str:
    """Digits only once spaces and hyphens (as banks print them) are taken out."""
    if not isinstance(number, str) or not number.strip():
        raise AccountError("account_number", "required", "the account number is required")
    digits = _ACCOUNT_SEPARATORS.sub("", number)
    if not (digits.isascii() and digits.isdigit()):
        raise AccountError("account_number", "not_digits", "the account number is digits only")
    low, high = korean_account_length()
    if not low <= len(digits) <= high:
        raise AccountError(
            "account_number", "bad_length", f"the account number has {low} to {high} digits"
        )
    return digits


def validate_bank_code(code: str, banks: Collection[str] | None = None) -> str:
    """A bank code from the provider's list (default: the Korean list above)."""
    allowed = KOREA_BANKS if banks is None else banks
    text = code.strip() if isinstance(code, str) else ""
    if not text:
        raise AccountError("bank_code", "required", "the bank is required")
    if text not in allowed:
        raise AccountError("bank_code", "unsupported_bank", "this bank cannot receive refunds")
    return text


@dataclass(frozen=True)
class KoreanAccount:
    bank_code: str
    account_number: str
    holder_name: str


def validate_korean_account(
    bank_code: str,
    account_number: str,
    holder_name: str,
    *,
    banks: Collection[str] | None = None,
    holder_name_max: int = DEFAULT_HOLDER_NAME_MAX,
) -> KoreanAccount:
    """All three checks; the first failing field raises."""
    return KoreanAccount(
        validate_bank_code(bank_code, banks),
        validate_korean_account_number(account_number),
        validate_holder_name(holder_name, max_length=holder_name_max),
    )


# ---------------------------------------------------------------- Mexican CLABE
CLABE_LENGTH = 18
CLABE_WEIGHTS = (3, 7, 1) * 6  # the first 17 are used
# The Mexican banks TeemoPay lists (more/teemopay.md section 9.3) by SPEI code; a CLABE's
# first 3 digits are the last 3 of that code (its Mexico payout checks say so) [doc].
MEXICO_BANK_CODES: dict[str, str] = {
    "40133": "ACTINVER", "40062": "AFIRME", "90721": "albo", "90706": "ARCUS FI",
    "90659": "ASP INTEGRA OPC", "40127": "AZTECA", "37166": "BaBien", "40030": "BAJIO",
    "40002": "BANAMEX", "40154": "BANCO COVALTO", "37006": "BANCOMEXT", "40137": "BANCOPPEL",
    "40160": "BANCO S3", "40152": "BANCREA", "37019": "BANJERCITO", "40147": "BANKAOOL",
    "40106": "BANK OF AMERICA", "40159": "BANK OF CHINA", "37009": "BANOBRAS",
    "40072": "BANORTE", "40058": "BANREGIO", "40060": "BANSI", "2001": "BANXICO",
    "40129": "BARCLAYS", "40145": "BBASE", "40012": "BBVA MEXICO", "40112": "BMONEX",
    "90677": "CAJA POP MEXICA", "90683": "CAJA TELEFONIST", "90715": "CASHI CUENTA",
    "90630": "CB INTERCAM", "90631": "CI BOLSA", "40124": "CITI MEXICO", "90901": "CLS",
    "90903": "CoDi Valida", "40130": "COMPARTAMOS", "40140": "CONSUBANCO",
    "90725": "COOPDESARROLLO", "90652": "CREDICAPITAL", "90688": "CREDICLUB",
    "90680": "CRISTOBAL COLON", "90723": "Cuenca", "90729": "Dep y Pag Dig", "40151": "DONDE",
    "90616": "FINAMEX", "90634": "FINCOMUN", "90734": "FINCO PAY", "90699": "FONDEADORA",
    "90685": "FONDO (FIRA)", "90601": "GBM", "40167": "HEY BANCO", "37168": "HIPOTECARIA FED",
    "40021": "HSBC", "40155": "ICBC", "40036": "INBURSA", "90902": "INDEVAL",
    "40150": "INMOBILIARIO", "40136": "INTERCAM BANCO", "40059": "INVEX", "40110": "JP MORGAN",
    "40128": "KAPITAL", "90661": "KLAR", "90653": "KUSPIT", "90670": "LIBERTAD",
    "90602": "MASARI", "90722": "Mercado Pago W", "90720": "MexPago", "40042": "MIFEL",
    "40158": "MIZUHO BANK", "90600": "MONEXCB", "40108": "MUFG", "40132": "MULTIVA BANCO",
    "37135": "NAFIN", "40638": "NU MEXICO", "90710": "NVIO", "40148": "PAGATODO",
    "90732": "Peibo", "90620": "PROFUTURO", "40156": "SABADELL", "40014": "SANTANDER",
    "40044": "SCOTIABANK", "40157": "SHINHAN", "90728": "SPIN BY OXXO", "90646": "STP",
    "90703": "TESORED", "90684": "TRANSFER", "40138": "UALA", "90656": "UNAGRA",
    "90617": "VALMEX", "90605": "VALUE", "90608": "VECTOR", "40113": "VE POR MAS",
    "40141": "VOLKSWAGEN", "40143": "CIBANCO",
}  # fmt: skip
CLABE_BANK_PREFIXES: frozenset[str] = frozenset(code[-3:] for code in MEXICO_BANK_CODES)


def clabe_check_digit(first_17: str) -> int:
    """Banxico's rule: weights 3, 7, 1 repeated; sum each product modulo 10; the check
    digit is (10 - sum mod 10) mod 10."""
    total = sum(int(d) * w % 10 for d, w in zip(first_17, CLABE_WEIGHTS[:17], strict=True))
    return (10 - total % 10) % 10


def validate_clabe(
    clabe: str,
    *,
    bank_code: str | None = None,
    bank_prefixes: Collection[str] | None = CLABE_BANK_PREFIXES,
) -> str:
    """An 18-digit CLABE with a known bank prefix and a right check digit.

    `bank_code` (the chosen bank's SPEI code, e.g. "40012"): its last 3 digits must be the
    CLABE's first 3. `bank_prefixes=None` skips the known-bank check.
    """
    if not isinstance(clabe, str) or not clabe.strip():
        raise AccountError("account_number", "required", "the CLABE is required")
    digits = _ACCOUNT_SEPARATORS.sub("", clabe)
    if not (digits.isascii() and digits.isdigit()) or len(digits) != CLABE_LENGTH:
        raise AccountError("account_number", "bad_length", "a CLABE has exactly 18 digits")
    if bank_prefixes is not None and digits[:3] not in bank_prefixes:
        raise AccountError("account_number", "unknown_bank", "the CLABE names no known bank")
    if bank_code is not None and digits[:3] != bank_code.strip()[-3:]:
        raise AccountError("account_number", "bank_mismatch", "the CLABE is for another bank")
    if clabe_check_digit(digits[:17]) != int(digits[17]):
        raise AccountError("account_number", "bad_check_digit", "the CLABE's check digit is wrong")
    return digits


# ---------------------------------------------------------------- Mexican accounts
# A CLABE names its bank: its first three digits are the bank's ABM code, the last three of
# its SPEI participant code (40012 BBVA MEXICO: CLABEs 012...) [doc, teemopay.md section 10].
# People know the three-digit code; the payout APIs want the SPEI code.


def clabe_bank(clabe: str, banks: Collection[str] | None = None) -> str | None:
    """The SPEI code (from `banks`, default MEXICO_BANK_CODES) of the bank whose ABM code
    opens `clabe`; None if no bank there has it."""
    listed = MEXICO_BANK_CODES if banks is None else banks
    prefix = clabe[:3]
    return next((code for code in listed if len(code) >= 3 and code[-3:] == prefix), None)


def named_mexican_bank(bank_code: str, banks: Collection[str] | None = None) -> str | None:
    """The SPEI code a shop's or shopper's bank code names: the SPEI code itself (`40012`)
    or the bank's three-digit ABM code, as on a CLABE (`012`); None if it names none."""
    listed = MEXICO_BANK_CODES if banks is None else banks
    text = bank_code.strip()
    if text in listed:
        return text
    if len(text) == 3 and text.isascii() and text.isdigit():
        return next((code for code in listed if len(code) >= 3 and code[-3:] == text), None)
    return None


def mexican_bank_name(spei_code: str) -> str:
    return MEXICO_BANK_CODES.get(spei_code, spei_code)


@dataclass(frozen=True)
class MexicanAccount:
    bank_code: str  # the SPEI code of the CLABE's bank, whatever form the bank was given in
    clabe: str
    holder_name: str


def validate_mexican_account(
    bank_code: str | None,
    clabe: str,
    holder_name: str,
    *,
    banks: Collection[str] | None = None,
    holder_name_max: int = DEFAULT_HOLDER_NAME_MAX,
) -> MexicanAccount:
    """A CLABE, the bank it names and the holder. The bank may be left out (None or blank):
    the CLABE names it. Given, it must name the CLABE's bank, by its three-digit code or its
    SPEI code; a code of another bank is refused (`bank_mismatch`), never silently replaced.
    The first failing field raises: the CLABE, then the bank, then the name."""
    listed = MEXICO_BANK_CODES if banks is None else banks
    prefixes = frozenset(code[-3:] for code in listed if len(code) >= 3)
    number = validate_clabe(clabe, bank_prefixes=prefixes)
    derived = clabe_bank(number, listed)
    assert derived is not None  # validate_clabe checked the prefix against the same list
    given = bank_code.strip() if isinstance(bank_code, str) else ""
    if given:
        named = named_mexican_bank(given, listed)
        if named is None:
            raise AccountError(
                "bank_code",
                "unsupported_bank",
                f"bank code {given} names no bank that can receive refunds; send the CLABE's"
                f" bank ({number[:3]} or {derived}) or leave the bank out",
            )
        if named != derived:
            raise AccountError(
                "bank_code",
                "bank_mismatch",
                f"bank code {given} is {mexican_bank_name(named)}, but the CLABE is at"
                f" {mexican_bank_name(derived)} ({number[:3]} or {derived}); send that bank"
                " or leave the bank out",
            )
    name = validate_holder_name(holder_name, max_length=holder_name_max)
    return MexicanAccount(derived, number, name)


# SPEI participants that hold no one's own account (the central bank, the securities
# depository, the FX settlement bank, CoDi's validator): never a refund's bank.
NOT_PERSONAL_SPEI_CODES: frozenset[str] = frozenset({"2001", "90901", "90902", "90903"})
PERSONAL_MEXICO_BANK_CODES: frozenset[str] = frozenset(
    code for code in MEXICO_BANK_CODES if code not in NOT_PERSONAL_SPEI_CODES
)


def bank_of_clabe(clabe: str) -> str | None:
    """The SPEI code of the bank a CLABE belongs to (its first three digits are the last
    three of that code, e.g. "012..." -> "40012", BBVA), or None: not 18 digits, or no bank a
    person keeps an account at. Spaces and hyphens, as banks print them, are ignored."""
    digits = _ACCOUNT_SEPARATORS.sub("", clabe) if isinstance(clabe, str) else ""
    if len(digits) != CLABE_LENGTH or not (digits.isascii() and digits.isdigit()):
        return None
    return clabe_bank(digits, PERSONAL_MEXICO_BANK_CODES)
