"""The shopper's form: our checkout-bound CSRF token, the fields and their messages."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

ERROR_MESSAGES = {
    "required": _l("This field is required."),
    "too_long": _l("This is too long."),
    "letters_only": _l("Use letters only (Korean or Latin), no digits or symbols."),
    "name_too_long": _l("Your full name must be at most %(n)s characters for this method."),
    "invalid_email": _l("Enter a valid e-mail address, like name@example.com."),
    "invalid_mobile_kr": _l("Enter an 11-digit Korean mobile number starting with 010."),
    "invalid_mobile_mx": _l("Enter a 10-digit Mexican mobile number."),
    "invalid_date": _l("Enter a valid date of birth."),
    "age_range": _l("The payer must be between %(low)s and %(high)s years old for this method."),
}


# How long a served form stays valid; a shopper taking longer gets the form again.
FORM_TOKEN_MAX_AGE = 2 * 60 * 60  # seconds
_CLOCK_SKEW = 60  # seconds a token may claim to come from the future (several workers)


# Why this token and not Flask-WTF's: Flask-WTF keeps its secret in the session cookie, and a
# checkout framed by a shop on another site gets no cookies when the browser blocks third-party
# cookies (Safari, Firefox, Chrome's phase-out), so every submit would fail. We rely on no
# cookie at all, SameSite or otherwise. The token is
#     <issued_at>.<hex HMAC-SHA256(SECRET_KEY, "checkout-form:<checkout_id>:<issued_at>")>
# and is safe because: the checkout id is an unguessable capability (whoever holds the link may
# pay this order, which is what the link is for) and no cookie or ambient authority is attached
# to a submit, so a forged cross-site POST gains nothing a link holder does not already have;
# the token still proves the form was served by us, for this checkout, within the time limit,
# so a third-party page cannot post a form it has not fetched from us (it cannot read our
# pages) and a token from one checkout does not work on another. It is compared in constant
# time. Double submits are handled by the single live attempt per checkout, not by the token.
def form_token(secret_key: str, checkout_id: str, issued_at: int | None = None) -> str:
    issued = int(time.time()) if issued_at is None else issued_at
    return f"{issued}.{_form_mac(secret_key, checkout_id, issued)}"


def check_form_token(
    secret_key: str, checkout_id: str, token: str | None, now: float | None = None
) -> bool:
    """True if `token` was issued by us for this checkout less than FORM_TOKEN_MAX_AGE ago."""
    issued_text, _, mac = (token or "").partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12 or not mac:
        return False
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    if not -_CLOCK_SKEW <= age <= FORM_TOKEN_MAX_AGE:
        return False
    expected = _form_mac(secret_key, checkout_id, issued)
    return hmac.compare_digest(expected.encode(), mac.encode())


def _form_mac(secret_key: str, checkout_id: str, issued_at: int) -> str:
    message = f"checkout-form:{checkout_id}:{issued_at}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class FieldSpec:
    """How a payer field is written out: its label (a message id the page translates with
    its request's catalog) and its input's type, autocomplete and inputmode."""

    label: str
    input_type: str = "text"
    autocomplete: str | None = None
    inputmode: str | None = None


FIELDS = {
    "first_name": FieldSpec(_l("First name"), "text", "given-name"),
    "last_name": FieldSpec(_l("Last name"), "text", "family-name"),
    "email": FieldSpec(_l("E-mail"), "email", "email"),
    "mobile": FieldSpec(_l("Mobile number"), "tel", "tel", "tel"),
    # Text, not type=date: a date input shows the browser's own order (mm/dd/yyyy on an
    # English phone in Seoul) whatever the page says; our hint gives the order and the server
    # reads the ways people type it (domain/payer.py parse_birth_date).
    "birth_date": FieldSpec(_l("Date of birth"), "text", "bday", "numeric"),
}
