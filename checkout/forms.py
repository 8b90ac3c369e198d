"""The shopper's form: our checkout-bound CSRF token, our pure rules for the fields."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from datetime import date
from typing import Any

from babel import support
from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, TelField
from wtforms.i18n import messages_path

from checkout.domain.payer import PayerDetails, validate_payer
from checkout.providers.base import Need, PayerRules

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


@functools.lru_cache(maxsize=16)
def _wtforms_translations(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class PaymentForm(FlaskForm):
    class Meta:
        csrf = False  # Flask-WTF's token needs the session cookie; see form_token above

        def get_translations(self, form: Any) -> Any:
            # Flask-WTF parses WTForms' .mo catalog again on every request (it caches on the
            # request only): about a tenth of a page GET. The catalog never changes while the
            # process runs, so keep one per locale.
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)  # type: ignore[misc]
            return _wtforms_translations(str(get_locale()))

    # Rendered as <input id="csrf_token" name="csrf_token" type="hidden" value="...">.
    csrf_token = HiddenField()
    method = HiddenField()
    first_name = StringField(_l("First name"), render_kw={"autocomplete": "given-name"})
    last_name = StringField(_l("Last name"), render_kw={"autocomplete": "family-name"})
    email = EmailField(_l("E-mail"), render_kw={"autocomplete": "email"})
    mobile = TelField(_l("Mobile number"), render_kw={"autocomplete": "tel", "inputmode": "tel"})
    # Kept as text: our own rules parse it, so a bad value gets our message.
    birth_date = StringField(
        _l("Date of birth"), render_kw={"type": "date", "autocomplete": "bday"}
    )

    def check_payer(self, rules: PayerRules, today: date) -> PayerDetails | None:
        """Validate against the method's rules; put messages on the fields."""
        data = {
            name: str(getattr(self, name).data or "")
            for name in ("first_name", "last_name", "email", "mobile", "birth_date")
        }
        details, errors = validate_payer(rules, data, today)
        for name, code in errors.items():
            message = ERROR_MESSAGES[code]
            params = {
                "n": rules.name_max_length,
                "low": rules.min_age,
                "high": rules.max_age,
            }
            getattr(self, name).errors = [
                str(message) % params if "%(" in str(message) else str(message)
            ]
        return details


# The fields' labels as message ids, for the page to translate with its request's catalog
# (a lazy label goes through Flask-Babel's context lookups each time it is shown).
FIELD_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "E-mail",
    "mobile": "Mobile number",
    "birth_date": "Date of birth",
}


def visible_fields(rules: PayerRules) -> dict[str, Need]:
    return {
        "first_name": rules.name,
        "last_name": rules.name,
        "email": rules.email,
        "mobile": rules.mobile,
        "birth_date": rules.birth_date,
    }
