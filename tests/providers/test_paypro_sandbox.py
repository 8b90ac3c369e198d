"""The PayPro client against the PayPro simulator, over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers.base import (
    InstructionKind,
    MethodConfig,
    Payer,
    PaymentRequest,
    PaymentUpdate,
    ProviderConfig,
)
from checkout.providers.errors import InvalidSignature, NotifyError, ProviderError, ProviderTimeout
from checkout.providers.paypro import PayProProvider, build, signing
from checkout.sandbox import paypro as sim
from checkout.sandbox.core import OrderStatus
from tests.conftest import RunningSandbox
from tests.support import creds
from tests.support.live import LiveServer, serve

KAKAOPAY = MethodConfig(
    "kakaopay", "paypro_kr", "KakaoPay", {"channel_code": "EWALLET", "way_code": "KAKAOPAY"}
)
KR_VA = MethodConfig("paypro_kr_va", "paypro_kr", "VA", {"channel_code": "VA", "way_code": "VA"})
MX_VA = MethodConfig("mx_va", "paypro_mx", "SPEI", {"way_code": "va"})
MX_STORE = MethodConfig("mx_store", "paypro_mx", "Store", {"way_code": "store"})

KR_PAYER = Payer("Kevin", "Kim", "kevin@163.com", "01012459077", date(1992, 8, 15), "192.168.0.1")
MX_PAYER = Payer("Ana", "López", "ana@example.com", "5512345678", None, "203.0.113.9")


def provider(
    base_url: str,
    country: str = "KR",
    api: str = "paymentLink",
    *,
    secret: str = creds.PAYPRO_APP_SECRET,
    merchant_no: str = creds.PAYPRO_MERCHANT_NO,
    read_timeout: float = 5.0,
) -> PayProProvider:
    settings: dict[str, Any] = {
        "country": country,
        "api": api,
        "merchant_no": merchant_no,
        "app_secret": secret,
    }
    if country == "KR":
        settings["sub_merchant_no"] = creds.PAYPRO_SUB_MERCHANT_NO
        methods: tuple[MethodConfig, ...] = (KAKAOPAY, KR_VA)
        name = "paypro_kr"
    else:
        methods = (MX_VA, MX_STORE)
        name = "paypro_mx_api" if api == "payInApi" else "paypro_mx"
    return build(
        ProviderConfig(
            name=name,
            type="paypro",
            base_url=base_url,
            settings=settings,
            methods=methods,
            connect_timeout=1.0,
            read_timeout=read_timeout,
        )
    )


def payment(
    method: MethodConfig,
    amount: Money,
    payer: Payer = KR_PAYER,
    notify_url: str = "https://shop.example/notify/paypro",
) -> PaymentRequest:
    return PaymentRequest(
        trade_no=uuid.uuid4().hex,
        amount=amount,
        method=method,
        payer=payer,
        notify_url=notify_url,
        return_url="https://shop.example/return",
        description="Order 42",
    )


def clabe_is_valid(clabe: str) -> bool:
    weights = (3, 7, 1) * 6
    total = sum(int(d) * w % 10 for d, w in zip(clabe[:17], weights, strict=False))
    return len(clabe) == 18 and clabe.isdigit() and (10 - total % 10) % 10 == int(clabe[17])


# ---------------------------------------------------------------- create
def test_kr_kakaopay_redirects_to_the_sandbox_cashier(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    req = payment(KAKAOPAY, Money(15000, "KRW"))
    result = kr.create_payment(req)
    assert result.status == AttemptStatus.PENDING
    assert result.provider_status == "0015"
    assert result.instructions is None
    assert result.redirect_url == f"{sandbox.url}/cashier/paypro/{result.platform_trade_no}"
    order = sandbox.state.get("paypro", result.platform_trade_no or "")
    assert order is not None
    assert (order.trade_no, order.amount, order.is_va) == (req.trade_no, req.amount, False)
    page = requests.get(result.redirect_url, timeout=5)
    assert page.status_code == 200
    assert "EWALLET / KAKAOPAY" in page.text
    assert "kevin@163.com" not in page.text  # the cashier shows no personal data


def test_kr_va_gives_virtual_account_for_one_hour(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    before = datetime.now(UTC)
    hangul = Payer("민준", "김", "minjun@example.kr", "01098765432", date(1990, 1, 2), "10.0.0.7")
    result = kr.create_payment(payment(KR_VA, Money(50000, "KRW"), hangul))  # UTF-8 signed
    ins = result.instructions
    assert result.redirect_url is None
    assert ins is not None
    assert ins.kind == InstructionKind.BANK_TRANSFER
    assert ins.bank_name == "KB Kookmin Bank"
    assert ins.account_holder == "PAYPRO"
    assert ins.account_number is not None and ins.account_number.isdigit()
    assert ins.qr_content == ins.account_number
    assert ins.cashier_url == f"{sandbox.url}/cashier/paypro/{result.platform_trade_no}"
    assert ins.expires_at is not None
    # Korea-time text read back as UTC: one hour ahead, to the second.
    assert timedelta(minutes=59) < ins.expires_at - before <= timedelta(hours=1, seconds=1)
    assert ins.amount == Money(50000, "KRW")


def test_mx_payment_link_redirects(sandbox: RunningSandbox) -> None:
    mx = provider(sandbox.provider_url("paypro"), "MX")
    result = mx.create_payment(payment(MX_STORE, Money(30000, "MXN"), MX_PAYER))
    assert result.redirect_url == f"{sandbox.url}/cashier/paypro/{result.platform_trade_no}"
    order = sandbox.state.get("paypro", result.platform_trade_no or "")
    assert order is not None and order.amount == Money(30000, "MXN")


def test_pay_in_api_va_gives_a_clabe(sandbox: RunningSandbox) -> None:
    api = provider(sandbox.provider_url("paypro"), "MX", "payInApi")
    result = api.create_payment(payment(MX_VA, Money(30000, "MXN"), MX_PAYER))
    assert result.raw["data"]["payproTradeNo"] == result.platform_trade_no  # documented key
    ins = result.instructions
    assert ins is not None and ins.kind == InstructionKind.BANK_TRANSFER
    assert ins.account_number is not None and clabe_is_valid(ins.account_number)
    assert result.redirect_url is None


def test_pay_in_api_store_gives_a_reference(sandbox: RunningSandbox) -> None:
    api = provider(sandbox.provider_url("paypro"), "MX", "payInApi")
    result = api.create_payment(payment(MX_STORE, Money(30000, "MXN"), MX_PAYER))
    ins = result.instructions
    assert ins is not None and ins.kind == InstructionKind.STORE_REFERENCE
    assert ins.reference and ins.reference == ins.qr_content


# ---------------------------------------------------------------- refusals
def test_wrong_secret_is_refused(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"), secret="not-the-secret")
    with pytest.raises(ProviderError) as info:
        kr.create_payment(payment(KAKAOPAY, Money(15000, "KRW")))
    assert info.value.code == sim.CODE_SIGN_ERROR_INFERRED
    assert not info.value.retryable


def test_unknown_merchant_is_refused(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"), merchant_no="M9999999")
    with pytest.raises(ProviderError) as info:
        kr.create_payment(payment(KAKAOPAY, Money(15000, "KRW")))
    assert info.value.code == sim.CODE_MERCHANT_UNKNOWN


def test_missing_required_field_is_refused(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    no_mobile = Payer("Kevin", "Kim", "kevin@163.com", None, None, "192.168.0.1")
    with pytest.raises(ProviderError, match="mobile is required") as info:
        kr.create_payment(payment(KAKAOPAY, Money(15000, "KRW"), no_mobile))
    assert info.value.code == sim.CODE_PARAM_ERROR
    assert not info.value.retryable


def test_va_payer_under_18_is_refused(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    young = Payer("Kevin", "Kim", "kevin@163.com", "01012459077", date.today(), "192.168.0.1")
    with pytest.raises(ProviderError, match="18 to 59"):
        kr.create_payment(payment(KR_VA, Money(15000, "KRW"), young))


def raw_create(sandbox: RunningSandbox, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A signed call without our client, for shapes our client never sends."""
    body = {**body, "sign": signing.sign(body, creds.PAYPRO_APP_SECRET)}
    resp = requests.post(
        sandbox.provider_url("paypro") + path,
        json=body,
        headers={"merchantNo": creds.PAYPRO_MERCHANT_NO},
        timeout=5,
    )
    assert resp.status_code == 200  # PayPro answers errors with HTTP 200
    return resp.json()


def test_error_shape_numeric_amount_and_missing_way_code(sandbox: RunningSandbox) -> None:
    mx = {"timestamp": "1", "tradeNo": "t-num", "amount": 300, "notifyUrl": "https://x.example"}
    answer = raw_create(sandbox, "/v1/paypro/paymentLink", mx)
    assert list(answer) == ["msg", "code", "timestamp", "success", "data"]
    assert answer["code"] == sim.CODE_PARAM_ERROR
    assert answer["success"] is False and answer["data"] is None
    assert isinstance(answer["timestamp"], int)
    assert "amount" in answer["msg"]
    no_way = {**mx, "amount": "300"}
    assert raw_create(sandbox, "/v1/paypro/payInApi", no_way)["msg"] == "wayCode is required"


def test_duplicate_trade_no_is_refused(sandbox: RunningSandbox) -> None:
    mx = provider(sandbox.provider_url("paypro"), "MX")
    req = payment(MX_VA, Money(30000, "MXN"), MX_PAYER)
    mx.create_payment(req)
    with pytest.raises(ProviderError) as info:
        mx.create_payment(req)
    assert info.value.code == sim.CODE_DUPLICATE_TRADE_NO


def test_injected_business_error_then_normal_again(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    sandbox.state.inject_create_error("paypro", "00029", "REJECTED_TRANSACTION")
    with pytest.raises(ProviderError) as info:
        kr.create_payment(payment(KAKAOPAY, Money(15000, "KRW")))
    assert (info.value.code, info.value.message) == ("00029", "REJECTED_TRANSACTION")
    assert not info.value.retryable
    assert kr.create_payment(payment(KAKAOPAY, Money(15000, "KRW"))).status == "pending"


def test_amount_over_limit_answers_daily_limit(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    over = Money(sandbox.state.config.max_amount + 1, "KRW")
    with pytest.raises(ProviderError) as info:
        kr.create_payment(payment(KAKAOPAY, over))
    assert info.value.code == "0100019"
    assert info.value.message == "PAYEE_DAILY_CUMULATIVE_AMT_REACHED"


# ---------------------------------------------------------------- transport failures
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_provider_is_retryable() -> None:
    kr = provider(f"http://127.0.0.1:{closed_port()}/paypro")
    with pytest.raises(ProviderError) as info:
        kr.create_payment(payment(KAKAOPAY, Money(15000, "KRW")))
    assert info.value.retryable
    assert info.value.code == "connection_error"


@pytest.fixture
def fake_paypro() -> Iterator[tuple[LiveServer, dict[str, Callable[[], Response]]]]:
    """A stand-in PayPro whose answer each test sets (HTML pages, slow or broken bodies)."""
    handlers: dict[str, Callable[[], Response]] = {}
    app = Flask("fake_paypro")

    @app.post("/paypro/v1/paypro/<api>")
    def any_api(api: str) -> Response:
        return handlers["answer"]()

    server = serve(app)
    try:
        yield server, handlers
    finally:
        server.shutdown()


def test_timeout_is_provider_timeout(fake_paypro: tuple[LiveServer, dict[str, Any]]) -> None:
    server, handlers = fake_paypro

    def slow() -> Response:
        time.sleep(1.0)
        return Response("{}", mimetype="application/json")

    handlers["answer"] = slow
    kr = provider(server.url + "/paypro", read_timeout=0.2)
    with pytest.raises(ProviderTimeout) as info:
        kr.create_payment(payment(KAKAOPAY, Money(15000, "KRW")))
    assert info.value.retryable


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (502, "<html><body>Bad Gateway</body></html>", "http_502", True),
        (200, "<html><body>maintenance</body></html>", "invalid_response", True),
        (200, '{"msg": "success", "code": "0000", "data": {"tradeNo"', "invalid_response", True),
        (200, '{"msg": "system error", "code": "5000", "data": null}', "5000", True),
        (404, "not found", "http_404", False),
    ],
)
def test_broken_answers(
    fake_paypro: tuple[LiveServer, dict[str, Any]],
    status: int,
    body: str,
    code: str,
    retryable: bool,
) -> None:
    server, handlers = fake_paypro
    handlers["answer"] = lambda: Response(body, status, mimetype="text/html")
    mx = provider(server.url + "/paypro", "MX")
    with pytest.raises(ProviderError) as info:
        mx.create_payment(payment(MX_VA, Money(30000, "MXN"), MX_PAYER))
    assert (info.value.code, info.value.retryable) == (code, retryable)


# ---------------------------------------------------------------- settle and query
def settle(url: str, action: str) -> requests.Response:
    return requests.post(url, data={"action": action}, allow_redirects=False, timeout=5)


@pytest.mark.parametrize(
    ("action", "status", "paid"),
    [
        ("pay", AttemptStatus.PAID, Money(15000, "KRW")),
        ("part", AttemptStatus.PARTIALLY_PAID, Money(7500, "KRW")),
        ("fail", AttemptStatus.FAILED, None),
    ],
)
def test_query_after_cashier_action(
    sandbox: RunningSandbox, action: str, status: AttemptStatus, paid: Money | None
) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    req = payment(KAKAOPAY, Money(15000, "KRW"))
    created = kr.create_payment(req)
    pending = kr.query_payment(req.trade_no, created.platform_trade_no)
    assert (pending.status, pending.amount_paid) == (AttemptStatus.PENDING, None)

    resp = settle(created.redirect_url or "", action)
    assert resp.status_code == 303  # a cashier sends the shopper back
    assert resp.headers["Location"] == req.return_url

    update = kr.query_payment(req.trade_no, created.platform_trade_no)
    assert update.status == status
    assert update.amount_paid == paid
    assert update.platform_trade_no == created.platform_trade_no
    assert update.trade_no == req.trade_no


def test_query_mx_partial_deposit_is_whole_pesos(sandbox: RunningSandbox) -> None:
    api = provider(sandbox.provider_url("paypro"), "MX", "payInApi")
    req = payment(MX_VA, Money(30100, "MXN"), MX_PAYER)  # 301.00 MXN
    created = api.create_payment(req)
    cashier = f"{sandbox.url}/cashier/paypro/{created.platform_trade_no}"
    assert settle(cashier, "part").status_code == 200  # deposits stay on the page
    update = api.query_payment(req.trade_no, None)
    assert update.status == AttemptStatus.PARTIALLY_PAID
    assert update.amount_paid == Money(15000, "MXN")


def test_query_unknown_trade_no_and_bad_sign(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    with pytest.raises(ProviderError) as info:
        kr.query_payment("no-such-trade", None)
    assert info.value.code == sim.CODE_ORDER_NOT_FOUND
    wrong = provider(sandbox.provider_url("paypro"), secret="not-the-secret")
    with pytest.raises(ProviderError) as info:
        wrong.query_payment("no-such-trade", None)
    assert info.value.code == sim.CODE_SIGN_ERROR_INFERRED


# ---------------------------------------------------------------- notify delivery
@dataclass
class Receiver:
    """A merchant notify endpoint: parses with the provider, answers as scripted."""

    server: LiveServer
    updates: list[PaymentUpdate] = field(default_factory=list)
    errors: list[NotifyError] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url + "/notify"


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(parser: PayProProvider, answers: list[tuple[int, str]] | None = None) -> Receiver:
        script = list(answers or [])
        lock = threading.Lock()
        app = Flask("receiver")
        receiver: Receiver

        @app.post("/notify")
        def notify() -> Response:
            try:
                update = parser.parse_notify(dict(request.headers), request.get_data())
            except NotifyError as error:
                receiver.errors.append(error)
                return Response(error.message, error.http_status)
            with lock:
                receiver.updates.append(update)
                status, text = script.pop(0) if script else (200, "OK")
            return Response(text, status, mimetype="text/plain")

        receiver = Receiver(serve(app))
        started.append(receiver)
        return receiver

    try:
        yield start
    finally:
        for receiver in started:
            receiver.server.shutdown()


def deliveries(sandbox: RunningSandbox, order_id: str | None) -> list[Any]:
    return [d for d in sandbox.state.notifier.deliveries if d.order_id == order_id]


def test_paid_notify_is_delivered_and_parsed(
    sandbox: RunningSandbox, receivers: Callable[..., Receiver]
) -> None:
    mx = provider(sandbox.provider_url("paypro"), "MX")
    receiver = receivers(mx)
    req = payment(MX_VA, Money(30000, "MXN"), MX_PAYER, notify_url=receiver.url)
    created = mx.create_payment(req)
    settle(created.redirect_url or "", "pay")
    assert sandbox.state.notifier.wait_idle()
    [update] = receiver.updates
    assert update.trade_no == req.trade_no
    assert update.status == AttemptStatus.PAID
    assert update.amount_paid == Money(30000, "MXN")
    assert update.platform_trade_no == created.platform_trade_no
    [delivery] = deliveries(sandbox, created.platform_trade_no)
    assert delivery.accepted and delivery.body == "OK"


def test_failed_notify_maps_to_failed(
    sandbox: RunningSandbox, receivers: Callable[..., Receiver]
) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    receiver = receivers(kr)
    req = payment(KR_VA, Money(20000, "KRW"), notify_url=receiver.url)
    created = kr.create_payment(req)
    order = sandbox.state.get("paypro", created.platform_trade_no or "")
    assert order is not None
    sandbox.state.settle(order, OrderStatus.FAILED, None)
    assert sandbox.state.notifier.wait_idle()
    [update] = receiver.updates
    assert (update.status, update.amount_paid) == (AttemptStatus.FAILED, None)
    assert update.failure_message == "REJECTED_TRANSACTION"


def test_notify_retries_until_exactly_ok(
    sandbox: RunningSandbox, receivers: Callable[..., Receiver]
) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    receiver = receivers(kr, [(200, "ok"), (500, "OK"), (200, " OK\n"), (200, "OK")])
    req = payment(KAKAOPAY, Money(15000, "KRW"), notify_url=receiver.url)
    created = kr.create_payment(req)
    settle(created.redirect_url or "", "part")
    assert sandbox.state.notifier.wait_idle()
    tries = deliveries(sandbox, created.platform_trade_no)
    assert [(d.try_no, d.status_code, d.accepted) for d in tries] == [
        (1, 200, False),
        (2, 500, False),
        (3, 200, False),
        (4, 200, True),
    ]
    assert len(receiver.updates) == 4  # the same notify each time, freshly signed
    assert {u.status for u in receiver.updates} == {AttemptStatus.PARTIALLY_PAID}
    assert {u.amount_paid for u in receiver.updates} == {Money(7500, "KRW")}
    stamps = [u.raw["timestamp"] for u in receiver.updates]
    assert len(set(stamps)) == len(stamps)  # a fresh timestamp on every try


def test_notify_signed_with_another_secret_is_rejected(
    sandbox: RunningSandbox, receivers: Callable[..., Receiver]
) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    # The merchant side holds another secret than the one PayPro signs with.
    receiver = receivers(provider(sandbox.provider_url("paypro"), secret="other-secret"))
    req = payment(KAKAOPAY, Money(15000, "KRW"), notify_url=receiver.url)
    created = kr.create_payment(req)
    settle(created.redirect_url or "", "pay")
    assert sandbox.state.notifier.wait_idle()
    assert receiver.updates == []
    assert receiver.errors and all(isinstance(e, InvalidSignature) for e in receiver.errors)
    tries = deliveries(sandbox, created.platform_trade_no)
    assert len(tries) == 1 + len(creds.TEST_NOTIFY_SCHEDULE)  # retried, never accepted
    assert not any(d.accepted for d in tries)
    assert {d.status_code for d in tries} == {401}


def test_forged_notify_body_is_invalid_signature(sandbox: RunningSandbox) -> None:
    kr = provider(sandbox.provider_url("paypro"))
    body = {"status": "0000", "tradeNo": "t1", "amount": "15000", "timestamp": "1"}
    body["sign"] = signing.sign(body, "wrong-secret")
    with pytest.raises(InvalidSignature):
        kr.parse_notify({}, json.dumps(body).encode())
