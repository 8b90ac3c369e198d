"""The shopper's form: Flask-WTF for CSRF, our pure rules for the fields."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, TelField

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


class PaymentForm(FlaskForm):
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


def visible_fields(rules: PayerRules) -> dict[str, Need]:
    return {
        "first_name": rules.name,
        "last_name": rules.name,
        "email": rules.email,
        "mobile": rules.mobile,
        "birth_date": rules.birth_date,
    }
