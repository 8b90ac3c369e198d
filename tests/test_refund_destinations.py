"""Refund destinations on the production path: what the shop or shopper types is checked and
normalised once, in the domain (checkout/domain/accounts.py), and that is what the bank gets."""

from __future__ import annotations

import re

import pytest
import requests

from checkout.providers.payouts import AccountType
from checkout.services.errors import InvalidRequest
from checkout.services.refunds import parse_destination
from tests.conftest import LiveApp
from tests.test_refunds_api import DESTINATION, REFUND_KEY, post_refund
from tests.test_refunds_worker import (
    new_refund,
    refund_row,
    run_round,
    sandbox_payouts,
    wait_status,
)

pytestmark = [
    pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]}),
    pytest.mark.app_config(refunds={"approval_thresholds": {"KRW": 100_000}}),
]


def test_a_fullwidth_holder_name_reaches_the_bank_as_plain_latin(live_app: LiveApp) -> None:
    """Issue 22: a holder name in fullwidth Latin went to the bank as typed."""
    typed = {**DESTINATION, "holder_name": "ＫＩＭ　ＭＩＮＳＵ"}  # with an ideographic space
    public_id = new_refund(live_app, destination=typed)
    run_round(live_app)
    row = wait_status(live_app, public_id, "processing", "sent")
    [payout] = sandbox_payouts(live_app, row.payout_no)  # type: ignore[arg-type]
    assert payout.holder_name == "KIM MINSU"
    assert refund_row(live_app, public_id).destination_masked == "088 ****6789"


def test_parse_destination_takes_a_clabe_with_the_bank_people_know_or_none() -> None:
    """Issue 23: `012` (BBVA, as on the CLABE) was refused `invalid_unsupported_bank`."""
    clabe = "012180001234567899"
    for bank in ("012", "40012", "", None):
        given = {"account_number": clabe, "holder_name": "Ana López"}
        if bank is not None:
            given["bank_code"] = bank
        account = parse_destination(given, "MXN", None, "paypro")
        assert (account.bank_code, account.account_number) == ("40012", clabe)
        assert account.account_type == AccountType.CLABE
    with pytest.raises(InvalidRequest) as info:
        parse_destination(
            {"bank_code": "40002", "account_number": clabe, "holder_name": "Ana López"},
            "MXN",
            None,
            "paypro",
        )
    assert (info.value.code, info.value.field) == ("invalid_bank_mismatch", "destination.bank_code")
    assert "BANAMEX" in info.value.message and "BBVA MEXICO" in info.value.message
    with pytest.raises(InvalidRequest) as info:  # a Korean account still needs its bank
        parse_destination(
            {"account_number": "110123456789", "holder_name": "김민수"}, "KRW", None, "teemopay"
        )
    assert info.value.field == "destination.bank_code"


def test_a_mexican_refund_by_the_api_with_the_clabes_bank_either_way(live_app: LiveApp) -> None:
    from tests.support.shopper import FLOWS
    from tests.test_flows import cashier_url, settle, start

    flow = next(f for f in FLOWS if f.name == "paypro_mx_api")
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    clabe = "012180001234567899"

    def refund(**destination: str) -> requests.Response:
        return post_refund(
            live_app,
            checkout["id"],
            {
                "amount": 1_000,
                "currency": "MXN",
                "reason": "devolución",
                "destination": {"account_number": clabe, "holder_name": "Ana López", **destination},
            },
        )

    wrong = refund(bank_code="40002")
    assert wrong.status_code == 400, wrong.text
    error = wrong.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_bank_mismatch", "destination.bank_code")
    for made in (refund(bank_code="012"), refund(bank_code="40012"), refund()):
        assert made.status_code == 201, made.text
        assert made.json()["destination"] == "40012 ****7899"


def test_the_refund_account_page_takes_a_clabe_without_a_bank(live_app: LiveApp) -> None:
    """The shopper's page asks a Mexican shopper for the CLABE alone: its first three digits
    name the bank, and a bank code posted beside it (the page has no such field) is ignored,
    never taken over the CLABE's."""
    from tests.support.shopper import FLOWS
    from tests.test_flows import cashier_url, settle, start

    flow = next(f for f in FLOWS if f.name == "paypro_mx_api")
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    made = post_refund(
        live_app, checkout["id"], {"amount": 1_000, "currency": "MXN", "reason": "excedente"}
    )
    assert made.status_code == 201, made.text
    url = made.json()["account_url"] + "&lang=es"
    http = requests.Session()
    page = http.get(url, timeout=10)
    ft = re.search(r'name="ft" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    account = {"ft": ft, "account_number": "012180001234567899", "holder_name": "Ana López"}
    assert 'name="bank_code"' not in page.text
    good = http.post(url, data={**account, "bank_code": "40002"}, timeout=10)
    assert good.status_code == 200, good.text
    assert refund_row(live_app, made.json()["id"]).destination_masked == "40012 ****7899"
