"""Payouts of all three providers against their simulators, over real HTTP on 127.0.0.1.

Each test runs for PayPro Korea, TeemoPay Korea and Diamond Pay: the client creates a
payout, the simulator processes it and sends its signed notify (with retries) to a
receiver that verifies it with our parser; queries, balances, refusals and faults.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from checkout.domain.money import Money
from checkout.providers.base import ProviderConfig
from checkout.providers.diamondpay.payout_client import DiamondPayPayouts
from checkout.providers.errors import (
    InvalidSignature,
    OrderNotFound,
    ProviderError,
    ProviderTimeout,
)
from checkout.providers.payouts import (
    BankAccount,
    DuplicatePayout,
    InsufficientBalance,
    PayoutProvider,
    PayoutRequest,
    PayoutStatus,
    PayoutUpdate,
    UnsupportedBank,
    new_payout_no,
)
from checkout.providers.paypro.payout_client import PayProPayouts
from checkout.providers.registry import build_payout_provider
from checkout.providers.teemopay.payout_client import TeemoPayPayouts
from checkout.sandbox.core import OrderStatus, SandboxOrder
from checkout.sandbox.keys import TeemoPayKeyFiles
from tests.conftest import RunningSandbox
from tests.support import creds
from tests.support.live import LiveServer, serve

PROVIDERS = ("paypro", "teemopay", "diamondpay")
MERCHANTS = {
    "paypro": creds.PAYPRO_MERCHANT_NO,
    "teemopay": creds.TEEMOPAY_APP_CODE,
    "diamondpay": creds.DIAMOND_PLATFORM_ID,
}
# The documented code of each refusal, per provider (PayPro's and Diamond Pay's are inferred).
REFUSAL_CODES = {
    "paypro": {"duplicate": "0100004", "balance": "0100006", "bank": "0100007"},
    "teemopay": {"duplicate": "426", "balance": "425", "bank": "431"},
    "diamondpay": {"duplicate": "0005", "balance": "0018", "bank": "0012"},
}
WRONG_ACKS = {"paypro": "ok", "teemopay": "success", "diamondpay": '{"error_code": "0001"}'}


def payout_config(
    provider: str, base_url: str, keys: TeemoPayKeyFiles, *, read_timeout: float = 5.0
) -> ProviderConfig:
    settings: dict[str, Any] = {
        "paypro": {
            "country": "KR",
            "merchant_no": creds.PAYPRO_MERCHANT_NO,
            "app_secret": creds.PAYPRO_APP_SECRET,
            "sub_merchant_no": creds.PAYPRO_SUB_MERCHANT_NO,
        },
        "teemopay": {
            "app_code": creds.TEEMOPAY_APP_CODE,
            "merchant_name": creds.TEEMOPAY_MERCHANT_NAME,
            "private_key_file": str(keys.merchant_private),
            "platform_public_key_file": str(keys.platform_public),
        },
        "diamondpay": {
            "platform_id": creds.DIAMOND_PLATFORM_ID,
            "key": creds.DIAMOND_KEY,
            "api_token": creds.DIAMOND_API_TOKEN,
            "sign_type": "HMAC-SHA256",
        },
    }[provider]
    return ProviderConfig(
        name=f"{provider}_kr",
        type=provider,
        base_url=base_url,
        settings=settings,
        connect_timeout=1.0,
        read_timeout=read_timeout,
        sandbox=True,
    )


def payout_request(
    notify_url: str,
    *,
    account: str = "110123456789",
    bank: str = "088",
    won: int = 30000,
    payout_no: str | None = None,
) -> PayoutRequest:
    return PayoutRequest(
        payout_no=payout_no or new_payout_no(),
        amount=Money(won, "KRW"),
        destination=BankAccount(bank, account, "홍길동"),
        notify_url=notify_url,
        mobile="01012345678",
        email="buyer@example.com",
        remark="refund",
    )


@dataclass
class Receiver:
    """Our notify endpoint: verifies every try with the provider's parser, answers per
    `answers` (HTTP status, body) and then with the provider's exact ack."""

    payouts: PayoutProvider
    answers: list[tuple[int, str]] = field(default_factory=list)
    updates: list[PayoutUpdate] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    server: LiveServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/notify"

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.post("/notify")
        def notify() -> Response:
            body = request.get_data()
            headers = dict(request.headers)
            with self.lock:
                self.bodies.append(body)
                self.headers.append(headers)
                self.kinds.append(self.payouts.notify_kind(headers, body))
            try:
                update = self.payouts.parse_payout_notify(headers, body)
            except Exception as exc:
                with self.lock:
                    self.errors.append(exc)
                return Response("bad", status=400)
            with self.lock:
                self.updates.append(update)
                scripted = self.answers.pop(0) if self.answers else None
            if scripted is not None:
                return Response(scripted[1], status=scripted[0], mimetype="text/plain")
            ack = self.payouts.notify_ack
            return Response(ack.body, status=ack.status, content_type=ack.content_type)

        return app

    def wait_for(self, count: int, timeout: float = 10.0) -> list[PayoutUpdate]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.updates) >= count:
                    return list(self.updates)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} notifies, got {len(self.updates)}: {self.errors}")


@dataclass
class Harness:
    name: str
    sandbox: RunningSandbox
    payouts: PayoutProvider
    receiver: Receiver
    make: Callable[..., PayoutProvider]

    def balance_major(self) -> int:
        available, _frozen = self.sandbox.state.payouts.balance(
            self.name, MERCHANTS[self.name], "KRW"
        )
        return available.amount


@pytest.fixture(params=PROVIDERS)
def harness(
    request: pytest.FixtureRequest, sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles
) -> Iterator[Harness]:
    name: str = request.param
    sandbox.state.config.payout_settle_after = 0.1

    def make(**options: Any) -> PayoutProvider:
        return build_payout_provider(
            payout_config(name, sandbox.provider_url(name), teemopay_keys, **options)
        )

    payouts = make()
    receiver = Receiver(payouts)
    receiver.server = serve(receiver.app())
    try:
        yield Harness(name, sandbox, payouts, receiver, make)
    finally:
        receiver.server.shutdown()


# ---------------------------------------------------------------- outcomes
def test_registry_builds_each_providers_payout_client(harness: Harness) -> None:
    expected = {
        "paypro": PayProPayouts,
        "teemopay": TeemoPayPayouts,
        "diamondpay": DiamondPayPayouts,
    }
    assert isinstance(harness.payouts, expected[harness.name])


def test_payout_succeeds_after_processing(harness: Harness) -> None:
    before = harness.balance_major()
    req = payout_request(harness.receiver.url)
    result = harness.payouts.create_payout(req)
    assert result.payout_no == req.payout_no
    assert result.status in (PayoutStatus.ACCEPTED, PayoutStatus.PROCESSING)
    assert result.platform_payout_no
    (update,) = harness.receiver.wait_for(1)
    assert update.status == PayoutStatus.SUCCEEDED
    assert update.payout_no == req.payout_no
    assert update.platform_payout_no == result.platform_payout_no
    assert update.amount_sent == Money(30000, "KRW")
    assert harness.receiver.kinds == ["payout"]
    queried = harness.payouts.query_payout(req.payout_no)
    assert queried.status == PayoutStatus.SUCCEEDED
    assert queried.amount_sent == Money(30000, "KRW")
    fee = 300 if harness.name == "teemopay" else 0  # the TeemoPay sandbox charges 1 %
    assert harness.balance_major() == before - 30000 - fee
    balance = harness.payouts.balance()
    assert balance.available == Money(before - 30000 - fee, "KRW")


def test_payout_fails_after_processing_and_the_money_comes_back(harness: Harness) -> None:
    before = harness.balance_major()
    req = payout_request(harness.receiver.url, account="110123459999")
    harness.payouts.create_payout(req)
    (update,) = harness.receiver.wait_for(1)
    assert update.status == PayoutStatus.FAILED
    assert update.amount_sent is None
    assert harness.payouts.query_payout(req.payout_no).status == PayoutStatus.FAILED
    assert harness.balance_major() == before
    assert harness.payouts.balance().available == Money(before, "KRW")


def test_held_payout_is_processing_until_the_control_endpoint_ends_it(harness: Harness) -> None:
    req = payout_request(harness.receiver.url, account="110123458888")
    harness.payouts.create_payout(req)
    time.sleep(0.3)  # longer than payout_settle_after: a held payout does not move
    assert harness.payouts.query_payout(req.payout_no).status == PayoutStatus.PROCESSING
    balance = harness.payouts.balance()
    assert balance.frozen is not None and balance.frozen.amount >= 30000
    assert not harness.receiver.updates
    url = f"{harness.sandbox.url}/_sandbox/payouts/{harness.name}/{req.payout_no}"
    assert requests.post(url, json={"outcome": "bogus"}, timeout=5).status_code == 400
    assert requests.post(url, json={"outcome": "fail"}, timeout=5).status_code == 200
    assert requests.post(url, json={"outcome": "succeed"}, timeout=5).status_code == 409
    (update,) = harness.receiver.wait_for(1)
    assert update.status == PayoutStatus.FAILED


# ---------------------------------------------------------------- refusals
def test_duplicate_payout_number_is_refused(harness: Harness) -> None:
    req = payout_request(harness.receiver.url)
    harness.payouts.create_payout(req)
    with pytest.raises(DuplicatePayout) as info:
        harness.payouts.create_payout(req)
    assert info.value.code == REFUSAL_CODES[harness.name]["duplicate"]
    assert not info.value.retryable
    payouts = [p for p in harness.sandbox.state.payouts.all() if p.payout_no == req.payout_no]
    assert len(payouts) == 1


def test_insufficient_balance_is_refused_and_nothing_moves(harness: Harness) -> None:
    url = f"{harness.sandbox.url}/_sandbox/balances/{harness.name}/{MERCHANTS[harness.name]}"
    assert requests.put(url, json={"amount": "10000", "currency": "KRW"}, timeout=5).ok
    with pytest.raises(InsufficientBalance) as info:
        harness.payouts.create_payout(payout_request(harness.receiver.url, won=10001))
    assert info.value.code == REFUSAL_CODES[harness.name]["balance"]
    assert harness.payouts.balance().available == Money(10000, "KRW")
    assert requests.get(url, timeout=5).json()["available"] == "10000"
    assert harness.sandbox.state.payouts.all() == []


def test_unsupported_bank_is_refused(harness: Harness) -> None:
    with pytest.raises(UnsupportedBank) as info:
        harness.payouts.create_payout(payout_request(harness.receiver.url, bank="055"))
    assert info.value.code == REFUSAL_CODES[harness.name]["bank"]
    assert harness.sandbox.state.payouts.all() == []


def test_query_of_an_unknown_payout_is_order_not_found(harness: Harness) -> None:
    with pytest.raises(OrderNotFound):
        harness.payouts.query_payout(new_payout_no())


def test_bad_credentials_are_refused(
    harness: Harness, sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles
) -> None:
    config = payout_config(harness.name, sandbox.provider_url(harness.name), teemopay_keys)
    settings = dict(config.settings)
    if harness.name == "teemopay":
        settings["private_key_file"] = str(teemopay_keys.platform_private)  # not the merchant's
    elif harness.name == "paypro":
        settings["app_secret"] = "wrong"
    else:
        settings["key"] = "wrong"
        settings["api_token"] = "wrong"
    bad = build_payout_provider(
        ProviderConfig(config.name, config.type, config.base_url, settings, sandbox=True)
    )
    with pytest.raises(ProviderError) as info:
        bad.create_payout(payout_request(harness.receiver.url))
    assert not isinstance(info.value, DuplicatePayout | InsufficientBalance | UnsupportedBank)
    with pytest.raises(ProviderError):
        bad.balance()
    assert sandbox.state.payouts.all() == []


# ---------------------------------------------------------------- notify
def test_notify_is_retried_until_the_exact_ack(harness: Harness) -> None:
    harness.receiver.answers = [(500, "error"), (200, WRONG_ACKS[harness.name])]
    req = payout_request(harness.receiver.url)
    result = harness.payouts.create_payout(req)
    updates = harness.receiver.wait_for(3)
    assert [u.status for u in updates] == [PayoutStatus.SUCCEEDED] * 3
    assert harness.sandbox.state.notifier.wait_idle(5)
    tries = [
        d
        for d in harness.sandbox.state.notifier.deliveries
        if d.order_id == result.platform_payout_no
    ]
    assert [d.accepted for d in tries] == [False, False, True]
    assert len(harness.receiver.bodies) == 3


def test_tampered_notify_is_rejected(harness: Harness) -> None:
    req = payout_request(harness.receiver.url)
    harness.payouts.create_payout(req)
    harness.receiver.wait_for(1)
    headers = harness.receiver.headers[0]
    original = harness.receiver.bodies[0]
    harness.payouts.parse_payout_notify(headers, original)  # the genuine one verifies
    body = original.replace(b"30000", b"90000")
    assert body != original
    with pytest.raises(InvalidSignature):
        harness.payouts.parse_payout_notify(headers, body)


# ---------------------------------------------------------------- faults
def test_timed_out_payout_is_unknown_then_queried_never_resent(harness: Harness) -> None:
    harness.sandbox.state.inject_fault(harness.name, "read_timeout", endpoint="payout", delay=2.0)
    slow = harness.make(read_timeout=0.5)
    req = payout_request(harness.receiver.url)
    with pytest.raises(ProviderTimeout) as info:
        slow.create_payout(req)
    assert info.value.retryable  # retryable only under the same number: see below
    # The outcome is unknown: ask under the same number. The provider took it.
    update = harness.payouts.query_payout(req.payout_no)
    assert update.status in (PayoutStatus.ACCEPTED, PayoutStatus.PROCESSING, PayoutStatus.SUCCEEDED)
    # Sending again under the same number cannot pay twice: the provider refuses it.
    with pytest.raises(DuplicatePayout):
        harness.payouts.create_payout(req)
    assert (
        len([p for p in harness.sandbox.state.payouts.all() if p.payout_no == req.payout_no]) == 1
    )
    (notified,) = harness.receiver.wait_for(1)
    assert notified.status == PayoutStatus.SUCCEEDED


@pytest.mark.parametrize("endpoint", ["payout", "payout_query", "balance"])
def test_server_errors_on_payout_endpoints_are_retryable(harness: Harness, endpoint: str) -> None:
    req = payout_request(harness.receiver.url)
    if endpoint == "payout_query":
        harness.payouts.create_payout(req)
    harness.sandbox.state.inject_fault(harness.name, "http_500", endpoint=endpoint)
    call: dict[str, Callable[[], object]] = {
        "payout": lambda: harness.payouts.create_payout(req),
        "payout_query": lambda: harness.payouts.query_payout(req.payout_no),
        "balance": harness.payouts.balance,
    }
    with pytest.raises(ProviderError) as info:
        call[endpoint]()
    assert info.value.retryable
    assert not isinstance(info.value, ProviderTimeout)
    call[endpoint]()  # the fault was used up: the next call is answered


def test_fault_endpoint_names_are_accepted_over_http(harness: Harness) -> None:
    for endpoint in ("payout", "payout_query", "balance"):
        resp = requests.post(
            f"{harness.sandbox.url}/_sandbox/faults",
            json={"provider": harness.name, "kind": "http_500", "endpoint": endpoint},
            timeout=5,
        )
        assert resp.status_code == 201, resp.text


# ---------------------------------------------------------------- balances
def test_pay_ins_paid_in_the_sandbox_add_to_the_balance(sandbox: RunningSandbox) -> None:
    book = sandbox.state.payouts
    before, _ = book.balance("paypro", creds.PAYPRO_MERCHANT_NO, "KRW")
    order = sandbox.state.add(
        SandboxOrder("paypro", "o1", creds.PAYPRO_MERCHANT_NO, "t1", Money(5000, "KRW"), None, None)
    )
    sandbox.state.settle(order, OrderStatus.PAID, Money(5000, "KRW"))
    after, _ = book.balance("paypro", creds.PAYPRO_MERCHANT_NO, "KRW")
    assert after.amount - before.amount == 5000
    failed = sandbox.state.add(
        SandboxOrder("paypro", "o2", creds.PAYPRO_MERCHANT_NO, "t2", Money(5000, "KRW"), None, None)
    )
    sandbox.state.settle(failed, OrderStatus.FAILED, None)
    assert book.balance("paypro", creds.PAYPRO_MERCHANT_NO, "KRW")[0] == after


def test_teemopay_payout_returned_after_success(
    sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles
) -> None:
    sandbox.state.config.payout_settle_after = 0.1
    payouts = build_payout_provider(
        payout_config("teemopay", sandbox.provider_url("teemopay"), teemopay_keys)
    )
    receiver = Receiver(payouts)
    receiver.server = serve(receiver.app())
    try:
        before, _ = sandbox.state.payouts.balance("teemopay", creds.TEEMOPAY_APP_CODE, "KRW")
        req = payout_request(receiver.url, account="110123457777")
        payouts.create_payout(req)
        first, second = receiver.wait_for(2)
        assert first.status == PayoutStatus.SUCCEEDED
        assert second.status == PayoutStatus.RETURNED  # status 4: the money came back
        assert second.failure_code == "1016"
        after, _ = sandbox.state.payouts.balance("teemopay", creds.TEEMOPAY_APP_CODE, "KRW")
        assert after.amount == before.amount - 300  # the amount is back; the fee is not
        # The query page has no status 4: a returned payout reads as failed there.
        assert payouts.query_payout(req.payout_no).status == PayoutStatus.FAILED
    finally:
        receiver.server.shutdown()


def test_control_listing_masks_accounts_and_unknown_payouts_404(harness: Harness) -> None:
    req = payout_request(harness.receiver.url, account="110123458888")
    harness.payouts.create_payout(req)
    listed = requests.get(f"{harness.sandbox.url}/_sandbox/payouts", timeout=5).json()["payouts"]
    assert [p["account"] for p in listed] == ["****8888"]
    assert "110123458888" not in json.dumps(listed)
    missing = f"{harness.sandbox.url}/_sandbox/payouts/{harness.name}/PO-none"
    assert requests.post(missing, json={"outcome": "fail"}, timeout=5).status_code == 404


def test_concurrent_creates_of_one_payout_number_send_it_once(harness: Harness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    req = payout_request(harness.receiver.url)
    clients = [harness.make() for _ in range(6)]  # one session each, as separate workers

    def attempt(client: PayoutProvider) -> str:
        try:
            client.create_payout(req)
        except DuplicatePayout:
            return "duplicate"
        return "accepted"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(attempt, clients))
    assert outcomes == ["accepted"] + ["duplicate"] * 5
    assert (
        len([p for p in harness.sandbox.state.payouts.all() if p.payout_no == req.payout_no]) == 1
    )


def test_paypro_mexico_payout_to_a_clabe(
    sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles
) -> None:
    from checkout.providers.payouts import AccountType

    sandbox.state.config.payout_settle_after = 0.1
    config = payout_config("paypro", sandbox.provider_url("paypro"), teemopay_keys)
    mx = build_payout_provider(
        ProviderConfig(
            "paypro_mx",
            "paypro",
            config.base_url,
            {
                "country": "MX",
                "merchant_no": creds.PAYPRO_MERCHANT_NO,
                "app_secret": creds.PAYPRO_APP_SECRET,
            },
            sandbox=True,
        )
    )
    receiver = Receiver(mx)
    receiver.server = serve(receiver.app())
    try:
        req = PayoutRequest(
            payout_no=new_payout_no(),
            amount=Money(25000, "MXN"),  # 250.00 pesos
            destination=BankAccount(
                "BANXICO", "646180110400000007", "Ana Lopez", AccountType.CLABE
            ),
            notify_url=receiver.url,
        )
        mx.create_payout(req)
        (update,) = receiver.wait_for(1)
        assert update.status == PayoutStatus.SUCCEEDED
        assert update.amount_sent == Money(25000, "MXN")
        assert mx.query_payout(req.payout_no).amount_sent == Money(25000, "MXN")
        assert mx.balance().available == Money(100_000_00 - 25000, "MXN")
        with pytest.raises(UnsupportedBank):
            mx.create_payout(
                PayoutRequest(
                    new_payout_no(),
                    Money(100, "MXN"),
                    BankAccount("NOBANK", "646180110400000007", "Ana Lopez", AccountType.CLABE),
                    receiver.url,
                )
            )
    finally:
        receiver.server.shutdown()
