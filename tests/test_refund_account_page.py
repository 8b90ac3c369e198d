"""The shopper's refund-account page (web/shopper/refund_account.py): a signed, expiring link;
ko, es, en; the account validated as the bank needs it, given once."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import select

from checkout.domain.accounts import bank_of_clabe, clabe_check_digit
from checkout.domain.banks import korean_banks
from checkout.services.refund_account_links import account_link_token, check_account_link_token
from checkout.store.models import Refund
from tests.conftest import LiveApp
from tests.test_refunds_api import REFUND_KEY, paid_checkout, post_refund

pytestmark = [
    pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]}),
    pytest.mark.app_config(refunds={"approval_thresholds": {"KRW": 100_000}}),
]
FT_RE = re.compile(r'name="ft" value="([^"]+)"')


def test_tokens_expire_and_bind_to_one_refund() -> None:
    token = account_link_token("k", "re_1", expires_at=int(time.time()) + 60)
    assert check_account_link_token("k", "re_1", token)
    assert not check_account_link_token("k", "re_2", token)
    assert not check_account_link_token("other", "re_1", token)
    assert not check_account_link_token("k", "re_1", token, now=time.time() + 61)
    for bad in (None, "", "x", "1.2", token + "0", "9" * 40 + "." + "a" * 64):
        assert not check_account_link_token("k", "re_1", bad)


def refund_without_account(live_app: LiveApp) -> dict:
    checkout = paid_checkout(live_app)
    resp = post_refund(live_app, checkout["id"], {"amount": 5_000, "reason": "excess"})
    assert resp.status_code == 201, resp.text
    data = resp.json()
    assert data["destination"] is None and data["account_url"].startswith(live_app.url)
    return data


def test_the_shopper_gives_the_account_once_in_korean(live_app: LiveApp) -> None:
    refund = refund_without_account(live_app)
    http = requests.Session()
    url = refund["account_url"] + "&lang=ko"
    page = http.get(url, timeout=10)
    assert page.status_code == 200 and "환불 계좌" in page.text and "5,000원" in page.text
    ft = FT_RE.search(page.text).group(1)  # type: ignore[union-attr]
    bad = http.post(
        url,
        data={"ft": ft, "bank_code": "088", "account_number": "12", "holder_name": "김민수"},
        timeout=10,
    )
    assert bad.status_code == 400 and "계좌번호를 확인해 주세요." in bad.text
    with live_app.session() as session:
        assert session.scalars(select(Refund)).one().destination_token is None
    good = http.post(
        url,
        data={
            "ft": ft,
            "bank_code": "088",
            "account_number": "110-1234-56789",
            "holder_name": "김민수",
        },
        timeout=10,
    )
    # A success page naming the bank in the shopper's words, not a red box with its code.
    assert good.status_code == 200 and "신한은행" in good.text and "****6789" in good.text
    assert 'class="alert ok"' in good.text and "088 ****6789" not in good.text, good.text
    assert "11012345" not in good.text
    again = http.post(
        url,
        data={
            "ft": ft,
            "bank_code": "004",
            "account_number": "999912345678",
            "holder_name": "이몽룡",
        },
        timeout=10,
    )
    assert again.status_code == 409
    with live_app.session() as session:
        row = session.scalars(select(Refund)).one()
        assert row.destination_masked == "088 ****6789"
    from checkout.services.refunds import send_refunds

    live_app.sandbox.state.config.payout_settle_after = 0.1
    assert (
        send_refunds(
            live_app.session,
            live_app.app.extensions["settings"],
            payouts_for=live_app.app.extensions["catalog"].payouts.__getitem__,
        ).claimed
        == 1
    )


def test_spanish_and_english_and_bad_links(live_app: LiveApp) -> None:
    refund = refund_without_account(live_app)
    es = requests.get(refund["account_url"], headers={"Accept-Language": "es-MX"}, timeout=10)
    assert "Su cuenta para el reembolso" in es.text
    en = requests.get(refund["account_url"] + "&lang=en", timeout=10)
    assert "Your refund account" in en.text
    base, _, token = refund["account_url"].partition("?t=")
    forged = token[:-1] + ("1" if token.endswith("0") else "0")  # never the token itself
    for url in (f"{base}?t={forged}", f"{base}?t=", base, base + "x?t=" + token):
        assert requests.get(url, timeout=10).status_code == 404, url
    # The form token is required on a submit.
    post = requests.post(
        refund["account_url"],
        data={"bank_code": "088", "account_number": "110123456789", "holder_name": "김민수"},
        timeout=10,
    )
    assert post.status_code == 400


def valid_clabe(prefix: str = "012") -> str:
    first = (prefix + "18000123456789000")[:17]
    return first + str(clabe_check_digit(first))


def test_the_bank_of_a_clabe_is_its_first_three_digits() -> None:
    assert bank_of_clabe(valid_clabe("012")) == "40012"  # BBVA
    assert bank_of_clabe("012 180 00123456789 0") == "40012"  # as banks print it
    assert bank_of_clabe(valid_clabe("638")) == "40638"  # Nu
    # Institutions nobody keeps an account at name no bank: Banxico, CLS, INDEVAL, CoDi.
    for prefix in ("001", "901", "902", "903"):
        assert bank_of_clabe(valid_clabe(prefix)) is None, prefix
    for bad in ("", "01218000123456789", "0121800012345678901", "01218000123456789x", "999"):
        assert bank_of_clabe(bad) is None


def test_korean_banks_are_named_in_the_shoppers_language() -> None:
    ko = dict(korean_banks("ko"))
    assert ko["011"] == "NH농협은행" and ko["090"] == "카카오뱅크" and ko["048"] == "신협"
    en = dict(korean_banks("en"))
    assert en["011"] == "NH NongHyup Bank"
    # Only banks a person keeps an account at: no foreign banks' Seoul branches.
    assert not {"055", "057", "060", "061", "062", "063", "067"} & set(ko)
    names = [name for _code, name in korean_banks("ko")]
    assert names == sorted(names, key=str.casefold)


def test_every_error_at_once_in_the_shoppers_words(live_app: LiveApp) -> None:
    refund = refund_without_account(live_app)
    http = requests.Session()
    url = refund["account_url"] + "&lang=ko"
    page = http.get(url, timeout=10)
    assert "NH농협은행" in page.text and "National Agricultural" not in page.text
    assert "을(를)" not in page.text and "(으)로" not in page.text
    assert "Standard Chartered" not in page.text and "Deutsche" not in page.text
    ft = FT_RE.search(page.text).group(1)  # type: ignore[union-attr]
    bad = http.post(
        url, data={"ft": ft, "bank_code": "", "account_number": "", "holder_name": "1"}, timeout=10
    )
    assert bad.status_code == 400
    summary = re.search(r'<div class="alert" id="error-summary".*?</div>', bad.text, re.S)
    assert summary is not None
    links = re.findall(r'<a href="#(\w+)">', summary.group(0))
    assert links == ["bank_code", "account_number", "holder_name"], summary.group(0)
    assert "계좌번호를 입력해 주세요." in bad.text and "글자와 띄어쓰기만" in bad.text
    with live_app.session() as session:
        assert session.scalars(select(Refund)).one().destination_token is None
    good = http.post(
        url,
        data={
            "ft": ft,
            "bank_code": "011",
            "account_number": "3021234567890",
            "holder_name": "김민수",
        },
        timeout=10,
    )
    assert good.status_code == 200 and "NH농협은행" in good.text and "****7890" in good.text
    assert "(으)로" not in good.text and "을(를)" not in good.text


def mexican_refund_without_account(live_app: LiveApp) -> dict:
    from tests.support.shopper import FLOWS
    from tests.test_flows import cashier_url, settle, start

    flow = next(f for f in FLOWS if f.name == "paypro_mx_api")
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    resp = post_refund(
        live_app, checkout["id"], {"amount": 10_000, "currency": "MXN", "reason": "devolución"}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_a_mexican_shopper_gives_only_the_clabe(live_app: LiveApp) -> None:
    refund = mexican_refund_without_account(live_app)
    http = requests.Session()
    url = refund["account_url"] + "&lang=es"
    page = http.get(url, timeout=10)
    assert page.status_code == 200
    assert 'name="bank_code"' not in page.text  # the CLABE names the bank
    assert ">CLABE</label>" in page.text and "18 dígitos" in page.text
    assert "BANXICO" not in page.text and "INDEVAL" not in page.text
    ft = FT_RE.search(page.text).group(1)  # type: ignore[union-attr]
    clabe = valid_clabe("012")
    wrong_digit = clabe[:-1] + str((int(clabe[-1]) + 1) % 10)
    for number, text in (
        ("12345", "exactamente 18 dígitos"),
        (wrong_digit, "revise cada dígito"),
        (valid_clabe("902"), "no corresponden a ningún banco"),  # INDEVAL
    ):
        bad = http.post(
            url, data={"ft": ft, "account_number": number, "holder_name": "Ana López"}, timeout=10
        )
        assert bad.status_code == 400 and text in bad.text, number
    good = http.post(
        url, data={"ft": ft, "account_number": clabe, "holder_name": "Ana López"}, timeout=10
    )
    assert good.status_code == 200 and "BBVA México" in good.text, good.text
    assert "40012" not in good.text and f"****{clabe[-4:]}" in good.text
    with live_app.session() as session:
        assert session.scalars(select(Refund)).one().destination_masked == f"40012 ****{clabe[-4:]}"


@pytest.mark.provider_config(paypro_mx_api={"payout_banks": {"40014": "SANTANDER"}})
def test_a_clabe_of_a_bank_the_provider_cannot_pay_is_named_on_the_clabe(
    live_app: LiveApp,
) -> None:
    refund = mexican_refund_without_account(live_app)
    http = requests.Session()
    url = refund["account_url"] + "&lang=es"
    ft = FT_RE.search(http.get(url, timeout=10).text).group(1)  # type: ignore[union-attr]
    bad = http.post(
        url,
        data={"ft": ft, "account_number": valid_clabe("012"), "holder_name": "Ana López"},
        timeout=10,
    )
    assert bad.status_code == 400 and "no corresponden a ningún banco" in bad.text
    assert 'href="#bank_code"' not in bad.text  # there is no bank field to point at
    good = http.post(
        url,
        data={"ft": ft, "account_number": valid_clabe("014"), "holder_name": "Ana López"},
        timeout=10,
    )
    assert good.status_code == 200 and "Santander" in good.text
