"""The TeemoPay client against the TeemoPay simulator, over real HTTP."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers import teemopay
from checkout.providers.base import (
    MethodConfig,
    Payer,
    PaymentRequest,
    PaymentUpdate,
    ProviderConfig,
)
from checkout.providers.errors import InvalidSignature, ProviderError, ProviderTimeout
from checkout.providers.teemopay import TeemoPayProvider, signing
from checkout.providers.teemopay.client import CREATE_PATH
from checkout.sandbox import teemopay as sim
from checkout.sandbox.keys import TeemoPayKeyFiles, generate_keypair
from tests.conftest import RunningSandbox
from tests.support import creds
from tests.support.live import LiveServer, serve

METHOD = MethodConfig("teemopay_va", "teemopay_kr", "VA", {"payment_type": 801})


def _provider(
    base_url: str,
    keys: TeemoPayKeyFiles,
    *,
    private_key_file: Path | None = None,
    read_timeout: float = 5.0,
) -> TeemoPayProvider:
    return teemopay.build(
        ProviderConfig(
            name="teemopay_kr",
            type="teemopay",
            base_url=base_url,
            settings={
                "app_code": creds.TEEMOPAY_APP_CODE,
                "merchant_name": creds.TEEMOPAY_MERCHANT_NAME,
                "private_key_file": str(private_key_file or keys.merchant_private),
                "platform_public_key_file": str(keys.platform_public),
            },
            methods=(METHOD,),
            connect_timeout=1.0,
            read_timeout=read_timeout,
            sandbox=True,
        )
    )


def _request(
    notify_url: str = "http://127.0.0.1:9/notify",
    *,
    amount: int = 10000,
    first_name: str = "길동",
    last_name: str = "홍",
) -> PaymentRequest:
    return PaymentRequest(
        trade_no=datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(9),
        amount=Money(amount, "KRW"),
        method=METHOD,
        payer=Payer(first_name, last_name, "buyer@example.com", "01012345678", None, "127.0.0.1"),
        notify_url=notify_url,
        return_url="https://shop.example/done",
        expires_at=datetime.now(UTC) + timedelta(hours=24),
    )


@pytest.fixture
def provider(sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles) -> TeemoPayProvider:
    return _provider(sandbox.provider_url("teemopay"), teemopay_keys)


# ---------------------------------------------------------------- a callback receiver
@dataclass
class Receiver:
    """Our side of the callback: verifies with the provider, answers per a script."""

    provider: TeemoPayProvider
    answers: list[tuple[int, str]] = field(default_factory=list)  # then "SUCCESS"
    updates: list[PaymentUpdate] = field(default_factory=list)
    raw: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: LiveServer | None = None
    got: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/notify/teemopay_kr"

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.post("/notify/teemopay_kr")
        def notify() -> Response:
            body = request.get_data()
            self.raw.append((dict(request.headers), body))
            update = self.provider.parse_notify(request.headers, body)
            self.updates.append(update)
            self.got.set()
            status, text = self.answers.pop(0) if self.answers else (200, "SUCCESS")
            return Response(text, status=status, mimetype="text/plain")

        return app


@pytest.fixture
def receiver(provider: TeemoPayProvider) -> Iterator[Receiver]:
    rec = Receiver(provider)
    rec.server = serve(rec.app())
    try:
        yield rec
    finally:
        rec.server.shutdown()


def _deliveries(sandbox: RunningSandbox, order_id: str) -> list[Any]:
    return [d for d in sandbox.state.notifier.deliveries if d.order_id == order_id]


# ---------------------------------------------------------------- raw requests
def _raw_create(
    sandbox: RunningSandbox,
    keys: TeemoPayKeyFiles,
    *,
    nonce: str,
    timestamp: int | None = None,
    order_no: str | None = None,
) -> dict[str, Any]:
    fields = {
        "merchantOrderNo": order_no or secrets.token_hex(16),
        "paymentType": 801,
        "realName": "TeemoPay",
        "merchantName": "MerchantNameExample",
        "amount": "1000",
    }
    private = signing.load_private_key(keys.merchant_private.read_bytes())
    body = {**fields, "sign": signing.sign(fields, nonce, private)}
    headers = {
        "timestamp": str(timestamp if timestamp is not None else int(time.time() * 1000)),
        "nonce": nonce,
        "country": "KR",
        "app_code": creds.TEEMOPAY_APP_CODE,
    }
    resp = requests.post(
        sandbox.provider_url("teemopay") + CREATE_PATH, json=body, headers=headers, timeout=5
    )
    assert resp.status_code == 200
    return resp.json()


# ---------------------------------------------------------------- create
def test_create_success_documented_shape(
    sandbox: RunningSandbox, provider: TeemoPayProvider
) -> None:
    req = _request()
    result = provider.create_payment(req)
    assert result.status == AttemptStatus.PENDING
    ins = result.instructions
    assert ins is not None
    assert ins.amount == Money(10000, "KRW")
    assert ins.account_number is not None and len(ins.account_number) == 14
    assert ins.account_number.isdigit()
    assert ins.bank_name in {name for _, name in sim.BANKS}
    assert ins.expires_at is not None
    # Clamped to TeemoPay's 2 h, never our 24 h.
    assert ins.expires_at <= datetime.now(UTC) + timedelta(hours=2)

    raw = result.raw
    assert list(raw) == ["msg", "traceId", "code", "data"]
    assert (raw["code"], raw["msg"]) == (200, "success")
    data = raw["data"]
    assert data["amount"] == "10000.00"
    assert data["paymentType"] == 801 and data["status"] == 1
    assert data["merchantOrderNo"] == req.trade_no
    assert len(data["tradeNo"]) == 30 and data["tradeNo"].startswith("TS")
    assert set(data["additionalInfo"]) == {"bankCode", "bankName", "expiredTime"}

    order = sandbox.state.get("teemopay", result.platform_trade_no or "")
    assert order is not None and order.is_va
    assert order.extra["display"]["Account"] == ins.account_number


def test_wrong_merchant_key_is_refused(
    sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(generate_keypair().private_pem)
    provider = _provider(sandbox.provider_url("teemopay"), teemopay_keys, private_key_file=stranger)
    with pytest.raises(ProviderError) as info:
        provider.create_payment(_request())
    assert info.value.message == sim.MSG_SIGNATURE
    assert not info.value.retryable


def test_name_over_20_characters_is_refused(provider: TeemoPayProvider) -> None:
    with pytest.raises(ProviderError) as info:
        provider.create_payment(_request(first_name="Maximiliana", last_name="Lindqvister"))
    assert info.value.message == sim.MSG_INVALID
    assert not info.value.retryable


def test_duplicate_merchant_order_is_refused(provider: TeemoPayProvider) -> None:
    req = _request()
    provider.create_payment(req)
    with pytest.raises(ProviderError) as info:
        provider.create_payment(req)
    assert info.value.message == sim.MSG_DUPLICATE
    assert not info.value.retryable


def test_amount_over_limit_is_refused(sandbox: RunningSandbox, provider: TeemoPayProvider) -> None:
    with pytest.raises(ProviderError) as info:
        provider.create_payment(_request(amount=sandbox.state.config.max_amount + 1))
    assert info.value.message.startswith("Transaction amount exceeds limit")
    assert not info.value.retryable


def test_reused_nonce_is_refused(sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles) -> None:
    nonce = secrets.token_hex(16)
    first = _raw_create(sandbox, teemopay_keys, nonce=nonce)
    assert first["code"] == 200
    again = _raw_create(sandbox, teemopay_keys, nonce=nonce)  # another order, same nonce
    assert again["code"] != 200
    assert again["msg"] == sim.MSG_NONCE_USED
    assert again["data"] is None
    assert set(again) == {"msg", "traceId", "code", "data"}


def test_stale_timestamp_and_short_nonce_are_refused(
    sandbox: RunningSandbox, teemopay_keys: TeemoPayKeyFiles
) -> None:
    stale = int(time.time() * 1000) - 60_000
    answer = _raw_create(sandbox, teemopay_keys, nonce=secrets.token_hex(16), timestamp=stale)
    assert (answer["code"] != 200, answer["msg"]) == (True, sim.MSG_STALE)
    short = _raw_create(sandbox, teemopay_keys, nonce=secrets.token_hex(8))
    assert short["code"] != 200


def test_injected_errors(sandbox: RunningSandbox, provider: TeemoPayProvider) -> None:
    sandbox.state.inject_create_error("teemopay", "500", sim.MSG_NETWORK)
    with pytest.raises(ProviderError) as info:
        provider.create_payment(_request())
    assert (info.value.code, info.value.message) == ("500", sim.MSG_NETWORK)
    assert info.value.retryable

    sandbox.state.inject_create_error("teemopay", "500", sim.MSG_AMOUNT_LIMIT)
    with pytest.raises(ProviderError) as info:
        provider.create_payment(_request())
    assert not info.value.retryable
    # Only the next call: the one after succeeds.
    assert provider.create_payment(_request()).status == AttemptStatus.PENDING


# ---------------------------------------------------------------- transport faults
def test_unreachable_port_is_retryable(teemopay_keys: TeemoPayKeyFiles) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = _provider(f"http://127.0.0.1:{port}/teemopay", teemopay_keys)
    with pytest.raises(ProviderError) as info:
        provider.create_payment(_request())
    assert info.value.retryable
    assert not isinstance(info.value, ProviderTimeout)


@pytest.fixture
def broken_provider_server() -> Iterator[str]:
    app = Flask(__name__)

    @app.post("/html/api/pay/payment/create/v1")
    def html() -> Response:
        return Response("<html><body>Bad gateway</body></html>", 200, mimetype="text/html")

    @app.post("/truncated/api/pay/payment/create/v1")
    def truncated() -> Response:
        return Response('{"msg": "success", "code": 200, "data": {"amo', 200)

    @app.post("/bad-gateway/api/pay/payment/create/v1")
    def bad_gateway() -> Response:
        return Response("", 502)

    @app.post("/slow/api/pay/payment/create/v1")
    def slow() -> Response:
        time.sleep(1.0)
        return Response("{}", 200)

    server = serve(app)
    try:
        yield server.url
    finally:
        server.shutdown()


@pytest.mark.parametrize("path", ["html", "truncated", "bad-gateway"])
def test_garbage_answers_are_retryable(
    broken_provider_server: str, teemopay_keys: TeemoPayKeyFiles, path: str
) -> None:
    provider = _provider(f"{broken_provider_server}/{path}", teemopay_keys)
    with pytest.raises(ProviderError) as info:
        provider.create_payment(_request())
    assert info.value.retryable


def test_slow_answer_is_a_timeout(
    broken_provider_server: str, teemopay_keys: TeemoPayKeyFiles
) -> None:
    provider = _provider(f"{broken_provider_server}/slow", teemopay_keys, read_timeout=0.2)
    with pytest.raises(ProviderTimeout) as info:
        provider.create_payment(_request())
    assert info.value.retryable


# ---------------------------------------------------------------- settle, callback, query
@pytest.mark.parametrize(
    ("action", "status", "paid"),
    [
        ("pay", AttemptStatus.PAID, Money(10000, "KRW")),
        ("part", AttemptStatus.PAID, Money(5000, "KRW")),  # short deposit: PAID, less money
        ("fail", AttemptStatus.FAILED, None),
    ],
)
def test_cashier_action_then_callback_and_query(
    sandbox: RunningSandbox,
    provider: TeemoPayProvider,
    receiver: Receiver,
    action: str,
    status: AttemptStatus,
    paid: Money | None,
) -> None:
    req = _request(receiver.url)
    result = provider.create_payment(req)
    assert provider.query_payment(req.trade_no, None).status == AttemptStatus.PENDING

    resp = requests.post(
        f"{sandbox.url}/cashier/teemopay/{result.platform_trade_no}",
        data={"action": action},
        timeout=5,
    )
    assert resp.status_code == 200
    assert sandbox.state.notifier.wait_idle()

    assert len(receiver.updates) == 1
    update = receiver.updates[0]
    assert (update.trade_no, update.status, update.amount_paid) == (req.trade_no, status, paid)
    assert update.platform_trade_no == result.platform_trade_no
    if status == AttemptStatus.FAILED:
        assert update.failure_message

    queried = provider.query_payment(req.trade_no, result.platform_trade_no)
    assert (queried.status, queried.amount_paid) == (status, paid)
    assert queried.platform_trade_no == result.platform_trade_no


def test_callback_wire_format(
    sandbox: RunningSandbox, provider: TeemoPayProvider, receiver: Receiver
) -> None:
    result = provider.create_payment(_request(receiver.url))
    sandbox.state.settle(
        sandbox.state.get("teemopay", result.platform_trade_no or ""), "paid", Money(10000, "KRW")
    )
    assert sandbox.state.notifier.wait_idle()
    headers, body = receiver.raw[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["appcode"] == creds.TEEMOPAY_APP_CODE
    assert lowered["country"] == "KR"
    assert len(lowered["nonce"]) == 32
    assert len(lowered["timestamp"]) == 13
    data = json.loads(body)
    assert data["status"] == 2
    assert data["paymentAmount"] == "10000.00"
    assert data["paymentType"] == 801
    assert {"merchantOrderNo", "tradeNo", "paymentOrderNo", "serviceAmount", "sign"} <= set(data)


def test_only_exact_success_stops_retries(
    sandbox: RunningSandbox, provider: TeemoPayProvider, receiver: Receiver
) -> None:
    receiver.answers = [(200, "success"), (500, "SUCCESS"), (200, "SUCCESS\n")]
    result = provider.create_payment(_request(receiver.url))
    order_id = result.platform_trade_no or ""
    requests.post(f"{sandbox.url}/cashier/teemopay/{order_id}", data={"action": "pay"}, timeout=5)
    assert sandbox.state.notifier.wait_idle()

    tries = _deliveries(sandbox, order_id)
    assert [d.accepted for d in tries] == [False, False, False, True]
    assert [d.status_code for d in tries] == [200, 500, 200, 200]
    # Every try is freshly signed with a new nonce and still verifies.
    assert len(receiver.updates) == 4
    assert len({h.get("Nonce") for h, _ in receiver.raw}) == 4
    assert {u.status for u in receiver.updates} == {AttemptStatus.PAID}


def test_no_callback_url_means_no_callback(
    sandbox: RunningSandbox, provider: TeemoPayProvider
) -> None:
    result = provider.create_payment(_request())
    order = sandbox.state.get("teemopay", result.platform_trade_no or "")
    assert order is not None
    order.notify_url = None  # as if created without callbackUrl
    sandbox.state.settle(order, "paid", order.amount)
    assert sandbox.state.notifier.wait_idle()
    assert _deliveries(sandbox, order.id) == []


def test_tampered_callback_is_rejected(
    sandbox: RunningSandbox, provider: TeemoPayProvider, receiver: Receiver
) -> None:
    result = provider.create_payment(_request(receiver.url))
    requests.post(
        f"{sandbox.url}/cashier/teemopay/{result.platform_trade_no}",
        data={"action": "part"},
        timeout=5,
    )
    assert sandbox.state.notifier.wait_idle()
    headers, body = receiver.raw[0]
    assert provider.parse_notify(headers, body).status == AttemptStatus.PAID  # genuine

    data = json.loads(body)
    data["paymentAmount"] = "10000.00"  # claim the full amount
    with pytest.raises(InvalidSignature):
        provider.parse_notify(headers, json.dumps(data).encode())

    other_nonce = {**headers, "Nonce": secrets.token_hex(16)}
    with pytest.raises(InvalidSignature):
        provider.parse_notify(other_nonce, body)

    other_app = {**headers, "Appcode": "APP999999"}
    with pytest.raises(InvalidSignature):
        provider.parse_notify(other_app, body)

    unsigned = json.loads(body)
    del unsigned["sign"]
    with pytest.raises(InvalidSignature):
        provider.parse_notify(headers, json.dumps(unsigned).encode())


def test_query_unknown_order_is_an_error(provider: TeemoPayProvider) -> None:
    with pytest.raises(ProviderError) as info:
        provider.query_payment("no-such-order", None)
    assert info.value.message == sim.MSG_NO_ORDER
