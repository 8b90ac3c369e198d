"""What an unverified notify body claims to be about: best effort, never an exception."""

from __future__ import annotations

import json

import pytest

from checkout.providers.diamondpay import mapping as diamondpay
from checkout.providers.paypro import mapping as paypro
from checkout.providers.teemopay import mapping as teemopay

CASES = [(paypro, "tradeNo"), (teemopay, "merchantOrderNo"), (diamondpay, "payment_cl_id")]


@pytest.mark.parametrize(("mapping", "key"), CASES, ids=["paypro", "teemopay", "diamondpay"])
def test_claimed_trade_no_reads_the_providers_field_and_nothing_else(mapping, key) -> None:  # type: ignore[no-untyped-def]
    claimed = mapping.claimed_trade_no
    assert claimed(json.dumps({key: " T-1 ", "sign": "bad"}).encode()) == "T-1"
    assert claimed(json.dumps({key: 20260105}).encode()) == "20260105"
    assert claimed(json.dumps({key: "x" * 100}).encode()) == "x" * 64
    for body in (
        b"",
        b"\xff\xfe not utf-8",
        b"not json",
        b"[1, 2]",
        b"[" * 100_000,  # too deep for the parser
        json.dumps({key: None}).encode(),
        json.dumps({key: True}).encode(),
        json.dumps({key: {"nested": "T-1"}}).encode(),
        json.dumps({key: "  "}).encode(),
        json.dumps({"another": "T-1"}).encode(),
    ):
        assert claimed(body) is None, body[:40]
