"""The shopper's form: validation as the provider would, errors inline, nothing created."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from checkout.domain.payer import parse_birth_date, validate_payer
from checkout.providers.base import Need, PayerRules
from checkout.store.models import PaymentAttempt
from tests.conftest import LiveApp
from tests.support.shopper import KR_PAYER, MX_PAYER, Shopper, create_checkout


def attempts(live_app: LiveApp) -> int:
    with live_app.session() as session:
        return session.scalar(select(func.count()).select_from(PaymentAttempt)) or 0


def years_ago(years: int, days: int = 0) -> str:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Asia/Seoul")).date()
    return (today.replace(year=today.year - years) + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("method", "currency", "amount", "fields", "field", "message"),
    [
        (
            "kakaopay",
            "KRW",
            15000,
            {**KR_PAYER, "mobile": "0101234567"},
            "mobile",
            "starting with 010",
        ),
        (
            "kakaopay",
            "KRW",
            15000,
            {**KR_PAYER, "mobile": "01112345678"},
            "mobile",
            "starting with 010",
        ),
        ("kakaopay", "KRW", 15000, {**KR_PAYER, "mobile": ""}, "mobile", "required"),
        ("kakaopay", "KRW", 15000, {**KR_PAYER, "email": "not-an-email"}, "email", "valid e-mail"),
        ("kakaopay", "KRW", 15000, {**KR_PAYER, "first_name": ""}, "first_name", "required"),
        ("paypro_kr_va", "KRW", 15000, KR_PAYER, "birth_date", "required"),
        (
            "paypro_kr_va",
            "KRW",
            15000,
            {**KR_PAYER, "birth_date": years_ago(18, 1)},
            "birth_date",
            "between 18 and 59",
        ),
        (
            "paypro_kr_va",
            "KRW",
            15000,
            {**KR_PAYER, "birth_date": years_ago(60)},
            "birth_date",
            "between 18 and 59",
        ),
        (
            "paypro_kr_va",
            "KRW",
            15000,
            {**KR_PAYER, "birth_date": "1990-02-30"},
            "birth_date",
            "valid date",
        ),
        ("mx_spei", "MXN", 25000, {**MX_PAYER, "mobile": "551234567"}, "mobile", "10-digit"),
        (
            "teemopay_va",
            "KRW",
            30000,
            {**KR_PAYER, "first_name": "Alexander Maximilian", "last_name": "Kim"},
            "last_name",
            "at most 20",
        ),
        (
            "teemopay_va",
            "KRW",
            30000,
            {**KR_PAYER, "first_name": "R2D2"},
            "first_name",
            "letters only",
        ),
    ],
)
def test_invalid_details_are_shown_inline_and_create_nothing(
    live_app: LiveApp,
    method: str,
    currency: str,
    amount: int,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    checkout = create_checkout(live_app.url, currency=currency, amount=amount)
    resp = Shopper(checkout["url"]).submit(method, fields)
    assert resp.status_code == 422
    assert f'id="{field}-error"' in resp.text
    assert message in resp.text
    for name, value in fields.items():
        if value and name != field:
            assert f'value="{value}"' in resp.text  # what was typed is kept
    assert attempts(live_app) == 0
    assert len(live_app.sandbox.state.orders) == 0


def test_age_bounds_are_inclusive(live_app: LiveApp) -> None:
    for years in (18, 59):
        checkout = create_checkout(live_app.url)
        resp = Shopper(checkout["url"]).submit(
            "paypro_kr_va", {**KR_PAYER, "birth_date": years_ago(years)}
        )
        assert resp.status_code == 303, resp.text


def test_missing_csrf_token_is_refused(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    resp = Shopper(checkout["url"]).submit("kakaopay", KR_PAYER, csrf="forged")
    assert resp.status_code == 422
    assert "submit the form again" in resp.text
    assert attempts(live_app) == 0


def test_ip_and_amount_come_from_the_server_not_the_form(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url, amount=15000)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(
        "kakaopay", {**KR_PAYER, "ipAddress": "8.8.8.8", "ip_address": "8.8.8.8", "amount": "1"}
    )
    assert resp.status_code == 303
    order = next(iter(live_app.sandbox.state.orders.values()))
    assert order.amount.amount == 15000
    assert order.extra["ip_address"] == "127.0.0.1"
    with live_app.session() as session:
        assert session.scalars(select(PaymentAttempt.payer_ip)).one() == "127.0.0.1"


def payer_ip_sent(live_app: LiveApp, forwarded_for: str) -> tuple[str, str]:
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    shopper.http.headers["X-Forwarded-For"] = forwarded_for
    assert shopper.submit("kakaopay", KR_PAYER).status_code == 303
    order = next(iter(live_app.sandbox.state.orders.values()))
    with live_app.session() as session:
        stored = session.scalars(select(PaymentAttempt.payer_ip)).one()
    return stored, str(order.extra["ip_address"])


def test_forwarded_for_is_ignored_without_a_trusted_proxy(live_app: LiveApp) -> None:
    stored, sent = payer_ip_sent(live_app, "203.0.113.7")
    assert stored == sent == "127.0.0.1"


@pytest.mark.app_config(proxy_fix_x_for=1)
def test_proxy_fix_takes_the_ip_from_the_trusted_proxy(live_app: LiveApp) -> None:
    stored, sent = payer_ip_sent(live_app, "198.51.100.1, 203.0.113.7")
    assert stored == sent == "203.0.113.7"  # the last hop, added by our one trusted proxy


def test_page_shows_store_amount_and_methods_for_the_currency(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url, currency="MXN", amount=25000)
    page = Shopper(checkout["url"]).open("mx_spei")
    assert page.status_code == 200
    assert "Test Shop" in page.text and "MXN 250.00" in page.text
    assert "mx_spei" in page.text and "kakaopay" not in page.text
    assert 'name="birth_date"' not in page.text  # only the fields the method needs


def test_unknown_checkout_is_a_404_page(live_app: LiveApp) -> None:
    page = Shopper(f"{live_app.url}/c/co_nope").open("kakaopay")
    assert page.status_code == 404 and "does not exist" in page.text


# ---------------------------------------------------------------- pure rules
KR_RULES = PayerRules(mobile=Need.REQUIRED, birth_date=Need.REQUIRED, min_age=18, max_age=59)


def test_age_is_counted_on_the_providers_date() -> None:
    data = {**KR_PAYER, "birth_date": "2008-03-01"}
    assert validate_payer(KR_RULES, data, date(2026, 3, 1))[1] == {}
    assert validate_payer(KR_RULES, data, date(2026, 2, 28))[1] == {"birth_date": "age_range"}


def test_mobile_is_normalised() -> None:
    details, errors = validate_payer(
        KR_RULES,
        {**KR_PAYER, "mobile": "010-1234 5678", "birth_date": "1990-01-01"},
        date(2026, 1, 1),
    )
    assert errors == {} and details is not None and details.mobile == "01012345678"


def test_a_birth_date_is_read_as_people_type_it_year_first() -> None:
    """The field is text (a date input shows the browser's order, not the page's)."""
    for typed in ("1990-05-17", "1990.05.17", "1990. 5. 17", "1990/5/17", "19900517"):
        assert parse_birth_date(typed) == date(1990, 5, 17), typed
    for bad in ("05/17/1990", "17-05-1990", "1990-02-30", "1990-13-01", "199005", "", "١٩٩٠0517"):
        with pytest.raises(ValueError):
            parse_birth_date(bad)
    details, errors = validate_payer(
        KR_RULES, {**KR_PAYER, "birth_date": "1990.05.17"}, date(2026, 1, 1)
    )
    assert errors == {} and details is not None and details.birth_date == date(1990, 5, 17)
    bad_order = validate_payer(KR_RULES, {**KR_PAYER, "birth_date": "05/17/1990"}, date(2026, 1, 1))
    assert bad_order[1] == {"birth_date": "invalid_date"}
