"""The shopper's refund-account page (blueprints/refund_account.py): a signed, expiring link;
ko, es, en; the account validated as the bank needs it, given once."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import select

from checkout.models import Refund
from checkout.services.refund_links import account_link_token, check_account_link_token
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
    assert good.status_code == 200 and "088 ****6789" in good.text, good.text
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
    assert "Tu cuenta para el reembolso" in es.text
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
