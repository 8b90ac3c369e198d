"""Validating the shopper's details the way the chosen method's provider would."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email


class Need(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    HIDDEN = "hidden"


@dataclass(frozen=True)
class PayerRules:
    """What a method asks of the shopper, validated as the provider would."""

    name: Need = Need.REQUIRED
    email: Need = Need.REQUIRED
    mobile: Need = Need.OPTIONAL
    birth_date: Need = Need.HIDDEN
    mobile_country: str = "KR"  # "KR": 11 digits from 010; "MX": 10 digits
    name_max_length: int | None = None  # on the joined full name
    name_letters_only: bool = False  # letters (any script, incl. Hangul) and spaces
    min_age: int | None = None
    max_age: int | None = None
    timezone: str = "Asia/Seoul"  # for age and dates in the provider's country


@dataclass(frozen=True)
class Payer:
    first_name: str
    last_name: str
    email: str | None
    mobile: str | None
    birth_date: date | None
    ip_address: str

    @property
    def full_name(self) -> str:
        return full_name(self.first_name, self.last_name)


def full_name(first: str, last: str) -> str:
    """Korean names run family name first with no space; others 'first last'."""
    first, last = first.strip(), last.strip()
    if _is_hangul(first + last):
        return f"{last}{first}"
    return f"{first} {last}".strip()


def _is_hangul(text: str) -> bool:
    letters = [c for c in text if not c.isspace()]
    return bool(letters) and all("\uac00" <= c <= "\ud7a3" for c in letters)


KR_MOBILE = re.compile(r"^010\d{8}$")
MX_MOBILE = re.compile(r"^\d{10}$")
NAME_MAX = 64


@dataclass(frozen=True)
class PayerDetails:
    first_name: str
    last_name: str
    email: str | None
    mobile: str | None
    birth_date: date | None


def normalise_mobile(value: str) -> str:
    """Drop the spaces, dashes, dots and brackets people type."""
    return re.sub(r"[\s\-.()/]", "", value)


# Country calling codes, and the mobile examples the form's hint shows.
CALLING_CODE = {"KR": "82", "MX": "52"}
MOBILE_EXAMPLE = {"KR": "010-1234-5678", "MX": "55 1234 5678"}


def national_mobile(value: str, country: str) -> str:
    """A mobile as people type it, in the national form the providers take.

    "+82 10-1234-5678", "+82 (0)10 1234 5678", "0082 10 1234 5678" -> "01012345678";
    "+52 55 1234 5678", "+52 1 55 1234 5678" (the old mobile prefix) -> "5512345678".
    Spaces, dashes, dots, slashes and brackets are dropped. Anything else (letters, a "+"
    inside the number) is left for the format check to refuse.
    """
    text = normalise_mobile(value)
    code = CALLING_CODE.get(country)
    international = text.startswith("+") or text.startswith("00")
    if code is None or not international:
        return text
    digits = text[1:] if text.startswith("+") else text[2:]
    if not digits.startswith(code) or not digits.isdigit():
        return text  # another country's number, or not a number: refused by the format check
    national = digits[len(code) :]
    if country == "KR":
        return national if national.startswith("0") else "0" + national
    if country == "MX" and len(national) == 11 and national.startswith("1"):
        return national[1:]
    return national


def mobile_query_digits(value: str) -> str:
    """A mobile number (or its end) as an operator types it, as payers' mobiles are stored:
    digits only, national form ("+82 10-1234-5678" -> "01012345678", "+52 1 55 1234 5678"
    -> "5512345678")."""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 12 and digits.startswith("8210"):
        return "0" + digits[2:]
    if len(digits) == 13 and digits.startswith("521"):
        return digits[3:]
    if len(digits) == 12 and digits.startswith("52"):
        return digits[2:]
    return digits


_DATE_SEPARATORS = re.compile(r"[\s./-]+")


def parse_birth_date(text: str) -> date:
    """A date of birth as people type it, year first whatever the browser's language:
    1990-05-17, 1990.05.17 (as Koreans write it), 1990/5/17, 1990 05 17 or 19900517.
    ValueError for anything else, or a day that does not exist."""
    parts = [part for part in _DATE_SEPARATORS.split(text.strip()) if part]
    if len(parts) == 1 and len(parts[0]) == 8:
        parts = [parts[0][:4], parts[0][4:6], parts[0][6:]]
    if (
        len(parts) != 3
        or not all(part.isascii() and part.isdigit() for part in parts)
        or len(parts[0]) != 4
        or not all(1 <= len(part) <= 2 for part in parts[1:])
    ):
        raise ValueError(f"not a date: {text!r}")
    return date(int(parts[0]), int(parts[1]), int(parts[2]))


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _letters_and_spaces(text: str) -> bool:
    return all(c.isalpha() or c == " " for c in text)


def validate_payer(
    rules: PayerRules, data: Mapping[str, str], today: date
) -> tuple[PayerDetails | None, dict[str, str]]:
    """Return the cleaned details, or error codes by field.

    `today` is the date in the provider's country (Korean time for PayPro KR).
    Codes: required, too_long, letters_only, invalid_email, invalid_mobile_kr,
    invalid_mobile_mx, invalid_date, age_range.
    """
    errors: dict[str, str] = {}
    value = {k: (data.get(k) or "").strip() for k in data}

    first, last = value.get("first_name", ""), value.get("last_name", "")
    if rules.name != Need.HIDDEN:
        for key, text in (("first_name", first), ("last_name", last)):
            if not text and rules.name == Need.REQUIRED:
                errors[key] = "required"
            elif len(text) > NAME_MAX:
                errors[key] = "too_long"
            elif text and rules.name_letters_only and not _letters_and_spaces(text):
                errors[key] = "letters_only"
        if (
            "first_name" not in errors
            and "last_name" not in errors
            and rules.name_max_length
            and len(full_name(first, last)) > rules.name_max_length
        ):
            errors["last_name"] = "name_too_long"

    email: str | None = value.get("email") or None
    if rules.email == Need.HIDDEN:
        email = None
    elif not email:
        if rules.email == Need.REQUIRED:
            errors["email"] = "required"
    else:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            errors["email"] = "invalid_email"

    mobile: str | None = national_mobile(value.get("mobile", ""), rules.mobile_country) or None
    if rules.mobile == Need.HIDDEN:
        mobile = None
    elif not mobile:
        if rules.mobile == Need.REQUIRED:
            errors["mobile"] = "required"
    elif rules.mobile_country == "KR" and not KR_MOBILE.match(mobile):
        errors["mobile"] = "invalid_mobile_kr"
    elif rules.mobile_country == "MX" and not MX_MOBILE.match(mobile):
        errors["mobile"] = "invalid_mobile_mx"

    birth: date | None = None
    raw_birth = value.get("birth_date", "")
    if rules.birth_date != Need.HIDDEN:
        if not raw_birth:
            if rules.birth_date == Need.REQUIRED:
                errors["birth_date"] = "required"
        else:
            try:
                birth = parse_birth_date(raw_birth)
            except ValueError:
                errors["birth_date"] = "invalid_date"
            else:
                if birth > today or birth.year < 1900:
                    errors["birth_date"] = "invalid_date"
                else:
                    age = age_on(birth, today)
                    low = rules.min_age if rules.min_age is not None else 0
                    high = rules.max_age if rules.max_age is not None else 200
                    if not low <= age <= high:
                        errors["birth_date"] = "age_range"

    if errors:
        return None, errors
    return PayerDetails(first, last, email, mobile, birth), {}
