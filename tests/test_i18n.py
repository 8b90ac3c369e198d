"""Languages: the checkout's locale or the browser's, translated pages, amounts and dates."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from checkout import create_app
from checkout.domain.money import Money
from checkout.i18n import format_money, missing_catalogs
from checkout.sandbox.keys import TeemoPayKeyFiles
from checkout.store.models import PaymentAttempt
from tests.conftest import LiveApp
from tests.support import app_config
from tests.support.shopper import FLOWS, KR_PAYER, MX_PAYER, Shopper, create_checkout

TRANSLATIONS = Path(__file__).resolve().parent.parent / "checkout" / "translations"
LANGUAGES = ("ko", "es")


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogs() -> None:
    """`python3 dev.py` compiles the catalogs; a bare pytest after editing a .po gets them too."""
    for language in missing_catalogs(TRANSLATIONS):
        po = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
        with po.open("rb") as source:
            catalog = read_po(source, locale=language)
        with po.with_suffix(".mo").open("wb") as target:
            write_mo(target, catalog)


def _lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, "no lang attribute on <html>"
    return match.group(1)


def test_korean_checkout_shows_korean_labels_and_errors(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url, amount=15000, currency="KRW", locale="ko")
    shopper = Shopper(checkout["url"])
    page = shopper.open("kakaopay")
    assert page.status_code == 200
    assert _lang(page.text) == "ko"
    for label in ("결제 수단", "이름", "휴대폰 번호", "15,000원 결제하기"):
        assert label in page.text, label
    assert 'id="amount-due">15,000원<' in page.text  # no decimals, no "KRW"

    resp = shopper.submit("kakaopay", {**KR_PAYER, "mobile": "0101234"})
    assert resp.status_code == 422
    assert "010으로 시작하는 11자리 휴대폰 번호를 입력해 주세요." in resp.text
    assert 'aria-describedby="mobile-error mobile-hint"' in resp.text


def test_checkout_locale_wins_over_the_browser(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url, locale="ko")
    shopper = Shopper(checkout["url"])
    shopper.http.headers["Accept-Language"] = "es-MX,es;q=0.9"
    assert "결제 수단" in shopper.open("kakaopay").text


def test_accept_language_es_mx_gives_spanish(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url, amount=25000, currency="MXN")  # no locale
    shopper = Shopper(checkout["url"])
    shopper.http.headers["Accept-Language"] = "es-MX,es;q=0.9,en;q=0.5"
    page = shopper.open("mx_spei")
    assert page.status_code == 200
    assert _lang(page.text) == "es"
    assert "Método de pago" in page.text and "Correo electrónico" in page.text
    assert 'id="amount-due">$250.00 MXN<' in page.text  # two decimals

    resp = shopper.submit("mx_spei", {**MX_PAYER, "email": "not-an-email"})
    assert resp.status_code == 422
    assert "Ingrese un correo electrónico válido, como nombre@ejemplo.com." in resp.text


def test_without_a_known_language_the_page_is_english(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    shopper = Shopper(checkout["url"])
    shopper.http.headers["Accept-Language"] = "fr-FR,de;q=0.8"
    page = shopper.open("kakaopay")
    assert _lang(page.text) == "en"
    assert "Payment method" in page.text and 'id="amount-due">KRW 15,000<' in page.text


def test_not_found_page_is_translated(live_app: LiveApp) -> None:
    shopper = Shopper(f"{live_app.url}/c/co_nope")
    shopper.http.headers["Accept-Language"] = "ko-KR"
    page = shopper.open("kakaopay")
    assert page.status_code == 404
    assert "존재하지 않는 페이지이거나 링크가 만료되었습니다." in page.text
    assert _lang(page.text) == "ko"


@pytest.mark.parametrize(
    ("money", "language", "expected"),
    [
        (Money(15000, "KRW"), "en", "KRW 15,000"),
        (Money(25000, "MXN"), "en", "MXN 250.00"),
        (Money(1234567, "KRW"), "ko", "1,234,567원"),
        (Money(25050, "MXN"), "es", "$250.50 MXN"),
        (Money(100, "MXN"), "es", "$1.00 MXN"),
        (Money(15000, "KRW"), "es", "KRW 15,000"),
    ],
)
def test_amounts_per_locale(money: Money, language: str, expected: str) -> None:
    assert format_money(money, language) == expected


def test_va_page_shows_the_expiry_in_seoul_time(live_app: LiveApp) -> None:
    flow = next(f for f in FLOWS if f.name == "teemopay_kr")
    checkout = create_checkout(
        live_app.url, amount=flow.amount, currency=flow.currency, locale="ko"
    )
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    page = shopper.http.get(live_app.url + resp.headers["Location"])
    assert page.status_code == 200

    with live_app.session() as session:
        expires = session.scalars(
            select(PaymentAttempt.expires_at).where(PaymentAttempt.checkout_id == checkout["id"])
        ).one()
    assert expires is not None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    seoul = expires.astimezone(ZoneInfo("Asia/Seoul"))
    match = re.search(r'<time id="expires-at" datetime="([^"]+)">([^<]+)</time>', page.text)
    assert match, page.text
    assert datetime.fromisoformat(match.group(1)) == seoul.replace(microsecond=0)
    assert match.group(1).endswith("+09:00")
    shown = f"{format_date(seoul, 'long', locale='ko_KR')} {seoul:%H:%M} (한국 시간)"
    assert match.group(2) == shown
    # The live countdown and the copy confirmation are there for checkout.js.
    assert 'id="countdown"' in page.text and 'role="timer"' in page.text
    assert 'role="status" data-copied="복사되었습니다"' in page.text
    assert "<strong>30,000원</strong>" in page.text and 'data-copy="30000"' in page.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated(language: str) -> None:
    po = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    with (TRANSLATIONS / "messages.pot").open("rb") as source:
        template = read_po(source)
    ids = {m.id for m in catalog if m.id}
    assert ids, f"{po} has no messages"
    assert {m.id for m in template if m.id} <= ids, "run pybabel update: the .po is behind"
    untranslated = [m.id for m in catalog if m.id and not m.string]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, untranslated
    assert not fuzzy, fuzzy
    for message in catalog:
        if not message.id:
            continue
        # The same placeholders on both sides, or the page would crash or lose the value.
        wanted = sorted(re.findall(r"%\(\w+\)[sd]", str(message.id)))
        assert sorted(re.findall(r"%\(\w+\)[sd]", str(message.string))) == wanted, message.id


def test_missing_compiled_catalogs_are_reported(tmp_path: Path) -> None:
    po = tmp_path / "ko" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n', encoding="utf-8")
    assert missing_catalogs(tmp_path) == ["ko"]
    po.with_suffix(".mo").write_bytes(b"")
    assert missing_catalogs(tmp_path) == []


def test_app_warns_without_compiled_catalogs(
    tmp_path: Path,
    teemopay_keys: TeemoPayKeyFiles,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import checkout.i18n

    monkeypatch.setattr(checkout.i18n, "missing_catalogs", lambda directory: ["es", "ko"])
    config = app_config.test_config(
        sandbox_url="http://127.0.0.1:9",
        public_base_url="http://127.0.0.1:5000",
        database_url=f"sqlite:///{tmp_path / 'app.sqlite3'}",
        instance_path=tmp_path,
        teemopay_keys=teemopay_keys,
    )
    with caplog.at_level(logging.WARNING, logger="checkout.i18n"):
        app = create_app(config)  # starts anyway: the pages fall back to English
    assert app is not None
    assert "compiled translations missing" in caplog.text and "es, ko" in caplog.text
    assert "pybabel compile -d checkout/translations" in caplog.text


def test_warm_up_loads_every_language_before_the_first_request(live_app: LiveApp) -> None:
    """What a worker does as it starts (wsgi.py): each language's amounts and catalogs."""
    from checkout import i18n

    i18n._format_amount.cache_clear()
    i18n.warm_up(live_app.app)
    cached = i18n._format_amount.cache_info().currsize
    assert cached == 6  # 3 languages x 2 currencies, formatted once each
    # What the pages then show comes from that work, not a second load.
    assert format_money(Money(100, "KRW"), "ko") == "100원"
    assert i18n._format_amount.cache_info().hits >= 1


def test_every_form_label_is_translated(live_app: LiveApp) -> None:
    """Each field's label (checkout/forms.py FIELDS) reads in the page's language."""
    from flask import g

    from checkout.forms import FIELDS

    for language in ("ko", "es"):
        with live_app.app.test_request_context("/"):
            g.checkout_locale = language
            for name, spec in FIELDS.items():
                assert str(spec.label) != spec.label._args[0], (language, name)


# The informal "tú" forms the Spanish pages once mixed with "usted" (issue 23).
TU_FORMS = re.compile(
    r"\b(tú|tu|tus|te|ti|puedes|tienes|inténtalo|elige|revisa|revísalos|escribe|escríbela|"
    r"envía|guarda|ve a|transfiere|escanea|indícanos|pide|paga en|paga con|recibe una)\b",
    re.IGNORECASE,
)


def test_spanish_speaks_to_the_shopper_as_usted_throughout() -> None:
    po = TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale="es")
    informal = [str(m.string) for m in catalog if m.id and TU_FORMS.search(str(m.string))]
    assert informal == []
    sandbox = (TRANSLATIONS.parent / "sandbox.toml").read_text()
    spanish_hints = re.findall(r'es = "([^"]*)"', sandbox)
    assert spanish_hints and [h for h in spanish_hints if TU_FORMS.search(h)] == []
    assert TU_FORMS.search("Elige tu banco de la lista.")  # what the check catches


def test_korean_never_leaves_a_particle_to_the_reader() -> None:
    """ "20,000원을(를)", "(으)로": a particle after a value depends on its last syllable, so the
    Korean texts phrase around it (issue 23)."""
    po = TRANSLATIONS / "ko" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale="ko")
    unresolved = re.compile(
        r"\((을|를|이|가|은|는|과|와|으|으로|아|야)\)|을\(를\)|이\(가\)|은\(는\)"
    )
    after_value = re.compile(r"%\(\w+\)[sd](을|를|이|가|은|는|과|와|으로|로)(?![가-힣])")
    texts = [str(m.string) for m in catalog if m.id]
    assert [t for t in texts if unresolved.search(t) or after_value.search(t)] == []
    assert unresolved.search("%(amount)s을(를) 돌려드립니다")  # what the check catches
