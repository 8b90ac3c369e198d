"""Refund destinations on the production path: what the shop or shopper types is checked and
normalised once, in the domain (checkout/domain/accounts.py), and that is what the bank gets."""

from __future__ import annotations

import pytest

from tests.conftest import LiveApp
from tests.test_refunds_api import DESTINATION, REFUND_KEY
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
