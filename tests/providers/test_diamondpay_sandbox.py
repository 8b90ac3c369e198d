"""Diamond Pay client against the sandbox simulator, over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers.base import (
    MethodConfig,
    Payer,
    PaymentRequest,
    PaymentUpdate,
    ProviderConfig,
)
from checkout.providers.diamondpay import DiamondPayProvider, build, signing
from checkout.providers.errors import (
    InvalidSignature,
    MalformedNotify,
    ProviderError,
    ProviderTimeout,
)
from checkout.sandbox.core import OrderStatus
from tests.conftest import RunningSandbox
from tests.support import creds
from tests.support.live import LiveServer, serve

METHODS = (
    MethodConfig("diamond_card", "diamondpay_kr", "Card", {"service_id": "SVC0015"}),
    MethodConfig("diamond_bank", "diamondpay_kr", "Bank", {"service_id": "SVC0016"}),
    MethodConfig("diamond_qr", "diamondpay_kr", "QR", {"service_id": "SVC0017"}),
)

_counter = iter(range(10**6))


def make_provider(
    base_url: str,
    *,
    sign_type: str = "HMAC-SHA256",
    key: str = creds.DIAMOND_KEY,
    api_token: str | None = None,
    read_timeout: float = 5.0,
) -> DiamondPayProvider:
    if api_token is None:
        api_token = creds.DIAMOND_MD5_API_TOKEN if sign_type == "MD5" else creds.DIAMOND_API_TOKEN
    return build(
        ProviderConfig(
            name="diamondpay_kr",
            type="diamondpay",
            base_url=base_url,
            settings={
                # The sandbox's platforms each speak one sign type.
                "platform_id": creds.DIAMOND_MD5_PLATFORM_ID
                if sign_type == "MD5"
                else creds.DIAMOND_PLATFORM_ID,
                "key": key,
                "sign_type": sign_type,
                "api_token": api_token,
            },
            methods=METHODS,
            connect_timeout=2.0,
            read_timeout=read_timeout,
            sandbox=True,
        )
    )


def make_request(
    notify_url: str = "http://127.0.0.1:9/notify", won: int = 15000, method: int = 0
) -> PaymentRequest:
    payer = Payer("Minji", "Kim", "minji@example.com", None, date(1990, 1, 1), "127.0.0.1")
    return PaymentRequest(
        trade_no=f"T{time.time_ns()}{next(_counter)}",
        amount=Money(won, "KRW"),
        method=METHODS[method],
        payer=payer,
        notify_url=notify_url,
        return_url="https://shop.example/return",
    )


class Receiver:
    """The merchant's notify endpoint: verifies with the provider, answers per `answers`."""

    def __init__(
        self,
        provider: DiamondPayProvider,
        answers: list[Callable[[], Response]] | None = None,
    ) -> None:
        self.provider = provider
        self.answers = list(answers or [])
        self.bodies: list[bytes] = []
        self.updates: list[PaymentUpdate] = []
        self.lock = threading.Lock()
        app = Flask(__name__)

        @app.post("/notify")
        def notify() -> Response:
            body = request.get_data()
            with self.lock:
                self.bodies.append(body)
                answer = self.answers.pop(0) if self.answers else None
            if answer is not None:
                return answer()
            update = provider.parse_notify(dict(request.headers), body)
            with self.lock:
                self.updates.append(update)
            ack = provider.notify_ack
            return Response(ack.body, status=ack.status, content_type=ack.content_type)

        self.server: LiveServer = serve(app)
        self.url = f"{self.server.url}/notify"


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.server.shutdown()


def start_receiver(
    made: list[Receiver],
    provider: DiamondPayProvider,
    answers: list[Callable[[], Response]] | None = None,
) -> Receiver:
    receiver = Receiver(provider, answers)
    made.append(receiver)
    return receiver


def signed_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform_id": creds.DIAMOND_PLATFORM_ID,
        "service_id": "SVC0015",
        "payment_cl_id": f"RAW{time.time_ns()}",
        "amount": 1500000,
        "notify_url": "http://127.0.0.1:9/notify",
        "request_time": int(time.time()),
        "sign_type": "HMAC-SHA256",  # the test platform's (MD5 is retired)
    }
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not None}
    body["sign"] = signing.sign(body, creds.DIAMOND_KEY, body.get("sign_type") or "MD5")
    return body


def post_raw(sandbox: RunningSandbox, body: dict[str, Any]) -> dict[str, Any]:
    resp = requests.post(
        sandbox.provider_url("diamondpay") + "/gateway/api/v2/payments",
        data=json.dumps(body),
        headers={"Content-Type": "application/json;charset=utf-8"},
        timeout=5,
    )
    assert resp.status_code == 200
    return resp.json()


# ---------------------------------------------------------------- create
@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
@pytest.mark.parametrize("method", [0, 1, 2])
def test_create_success(sandbox: RunningSandbox, sign_type: str, method: int) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"), sign_type=sign_type)
    req = make_request(won=15000, method=method)
    result = provider.create_payment(req)

    assert result.status == AttemptStatus.PENDING
    assert result.redirect_url is None
    assert result.platform_trade_no and result.platform_trade_no.startswith("DEMOPM")
    ins = result.instructions
    assert ins is not None
    assert ins.amount == Money(15000, "KRW")
    assert ins.bank_name == "KB Kookmin Bank" and ins.bank_code == "KB"
    assert ins.account_number and ins.account_number.isdigit()
    assert ins.account_holder and ins.reference and ins.qr_content
    assert ins.cashier_url == f"{sandbox.url}/cashier/diamondpay/{result.platform_trade_no}"
    assert result.raw["data"]["amount"] == 1500000

    order = sandbox.state.get("diamondpay", result.platform_trade_no)
    assert order is not None
    assert order.trade_no == req.trade_no
    assert order.amount == Money(15000, "KRW")
    assert order.is_va and order.return_url is None
    assert order.extra["service_id"] == METHODS[method].options["service_id"]
    assert order.extra["sign_type"] == sign_type  # sent on every request

    page = requests.get(ins.cashier_url, timeout=5)
    assert page.status_code == 200
    assert ins.account_number in page.text and "Deposit full amount" in page.text


def test_create_sends_integers(sandbox: RunningSandbox) -> None:
    # The simulator also takes digit strings (as the page's example sends); ours are ints.
    answer = post_raw(sandbox, signed_body(amount="1500000", request_time=str(int(time.time()))))
    assert answer["error_code"] == "0000"


def test_wrong_key_is_signature_failure(sandbox: RunningSandbox) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"), key="not-the-key")
    with pytest.raises(ProviderError) as info:
        provider.create_payment(make_request())
    assert info.value.code == "0004"
    assert info.value.message == "Signature verification failed!"
    assert not info.value.retryable


@pytest.mark.parametrize("sign_type", [None, "MD5"])
def test_hmac_platform_refuses_md5_requests(sandbox: RunningSandbox, sign_type: str | None) -> None:
    """MD5 is retired: an HMAC-SHA256 platform refuses an MD5-signed create (psp-docs)."""
    body = signed_body(sign_type=sign_type)  # None: absent, which means MD5
    assert body.get("sign_type") == sign_type
    assert post_raw(sandbox, body)["error_code"] == "0004"


def test_hmac_signature_checked_as_hmac(sandbox: RunningSandbox) -> None:
    body = signed_body(sign_type="HMAC-SHA256")
    body["sign"] = signing.sign(body, creds.DIAMOND_KEY, "MD5")  # wrong algorithm
    assert post_raw(sandbox, body)["error_code"] == "0004"


@pytest.mark.parametrize("missing", ["notify_url", "amount", "service_id", "request_time"])
def test_missing_field_rejected(sandbox: RunningSandbox, missing: str) -> None:
    answer = post_raw(sandbox, signed_body(**{missing: None}))
    assert answer["error_code"] == "0001"
    assert answer["error_msg"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"amount": 150050}, "0001"),  # not whole won
        ({"amount": 12345678901}, "0001"),  # 11 digits
        ({"amount": "15.00"}, "0001"),
        ({"notify_url": "ftp://shop.example/n"}, "0001"),
        ({"payment_cl_id": "x" * 65}, "0001"),
        ({"service_id": "SVC0099"}, "0003"),
        ({"request_time": int(time.time()) - 3600}, "0007"),
        ({"platform_id": "PF9999"}, "0002"),
        ({"sign_type": "SHA1"}, "0001"),
    ],
)
def test_invalid_fields_rejected(
    sandbox: RunningSandbox, fields: dict[str, Any], code: str
) -> None:
    body = signed_body(**{k: v for k, v in fields.items() if k != "sign_type"})
    if "sign_type" in fields:
        body["sign_type"] = fields["sign_type"]
    assert post_raw(sandbox, body)["error_code"] == code


def test_bad_json_rejected(sandbox: RunningSandbox) -> None:
    resp = requests.post(
        sandbox.provider_url("diamondpay") + "/gateway/api/v2/payments",
        data=b'{"platform_id": "PF0002",}',
        timeout=5,
    )
    assert resp.json()["error_code"] == "0001"


def test_duplicate_trade_no_rejected(sandbox: RunningSandbox) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"))
    req = make_request()
    provider.create_payment(req)
    with pytest.raises(ProviderError) as info:
        provider.create_payment(req)
    assert info.value.code == "0005"


def test_amount_over_limit(sandbox: RunningSandbox) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"))
    over = sandbox.state.config.max_amount + 1
    with pytest.raises(ProviderError) as info:
        provider.create_payment(make_request(won=over))
    assert info.value.code == "0006"
    assert not info.value.retryable


def test_injected_error(sandbox: RunningSandbox) -> None:
    sandbox.state.inject_create_error("diamondpay", "0099", "Channel under maintenance")
    provider = make_provider(sandbox.provider_url("diamondpay"))
    with pytest.raises(ProviderError) as info:
        provider.create_payment(make_request())
    assert (info.value.code, info.value.message) == ("0099", "Channel under maintenance")
    # Only the next call: the one after succeeds.
    assert provider.create_payment(make_request()).status == AttemptStatus.PENDING


def test_supports_amount() -> None:
    provider = make_provider("http://127.0.0.1:9")
    assert provider.supports_amount(Money(1, "KRW"))
    assert provider.supports_amount(Money(99_999_999, "KRW"))
    assert not provider.supports_amount(Money(100_000_000, "KRW"))  # 11 wire digits
    assert not provider.supports_amount(Money(0, "KRW"))
    assert not provider.supports_amount(Money(1500, "MXN"))


# ---------------------------------------------------------------- transport failures
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_is_retryable() -> None:
    provider = make_provider(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError) as info:
        provider.create_payment(make_request())
    assert info.value.retryable
    assert not isinstance(info.value, ProviderTimeout)


@pytest.fixture
def fake_diamond() -> Iterator[tuple[str, dict[str, Any]]]:
    """A misbehaving server in Diamond Pay's place; `behaviour["answer"]` is its reply."""
    behaviour: dict[str, Any] = {}
    app = Flask(__name__)

    @app.route("/gateway/api/v2/payments", methods=["POST"])
    def create() -> Response:
        delay = behaviour.get("delay")
        if delay:
            time.sleep(delay)
        status, body, ctype = behaviour["answer"]
        return Response(body, status=status, content_type=ctype)

    server = serve(app)
    try:
        yield server.url, behaviour
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "answer",
    [
        (200, "<html><body>Bad gateway</body></html>", "text/html"),
        (200, '{"error_code": "0000", "data": {"payment_id": "DEM', "application/json"),
        (502, "<html>502</html>", "text/html"),
        (503, '{"error_code": "9999", "error_msg": "busy"}', "application/json"),
        (404, "Not Found", "text/plain"),
        (200, "[1, 2]", "application/json"),
    ],
)
def test_garbage_answers_are_retryable(
    fake_diamond: tuple[str, dict[str, Any]], answer: tuple[int, str, str]
) -> None:
    url, behaviour = fake_diamond
    behaviour["answer"] = answer
    with pytest.raises(ProviderError) as info:
        make_provider(url).create_payment(make_request())
    assert info.value.retryable
    assert info.value.http_status == answer[0]


def test_timeout(fake_diamond: tuple[str, dict[str, Any]]) -> None:
    url, behaviour = fake_diamond
    behaviour.update(delay=1.0, answer=(200, '{"error_code": "0000"}', "application/json"))
    with pytest.raises(ProviderTimeout) as info:
        make_provider(url, read_timeout=0.3).create_payment(make_request())
    assert info.value.retryable


# ---------------------------------------------------------------- pay, notify, query
@pytest.mark.parametrize(
    ("action", "status", "paid"),
    [
        ("pay", AttemptStatus.PAID, Money(15000, "KRW")),
        ("part", AttemptStatus.PAID, Money(7500, "KRW")),  # no partial status at Diamond
        ("fail", AttemptStatus.FAILED, Money(0, "KRW")),
    ],
)
@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_settle_notify_and_query(
    sandbox: RunningSandbox,
    receivers: list[Receiver],
    action: str,
    status: AttemptStatus,
    paid: Money,
    sign_type: str,
) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"), sign_type=sign_type)
    receiver = start_receiver(receivers, provider)
    req = make_request(notify_url=receiver.url, won=15000)
    result = provider.create_payment(req)
    assert result.instructions and result.instructions.cashier_url

    before = provider.query_payment(req.trade_no, result.platform_trade_no)
    assert before.status == AttemptStatus.PENDING
    assert before.amount_paid == Money(0, "KRW")

    resp = requests.post(result.instructions.cashier_url, data={"action": action}, timeout=5)
    assert resp.status_code == 200  # no return URL: the page stays, never redirects
    assert sandbox.state.notifier.wait_idle()

    assert len(receiver.updates) == 1
    update = receiver.updates[0]
    assert update.trade_no == req.trade_no
    assert update.platform_trade_no == result.platform_trade_no
    assert update.status == status
    assert update.amount_paid == paid
    wire = json.loads(receiver.bodies[0])
    assert wire["amount"] == 1500000
    assert wire["real_amount"] == paid.amount * 100
    assert wire.get("sign_type") == ("HMAC-SHA256" if sign_type == "HMAC-SHA256" else None)
    deliveries = [
        d for d in sandbox.state.notifier.deliveries if d.order_id == update.platform_trade_no
    ]
    assert [(d.try_no, d.accepted) for d in deliveries] == [(1, True)]
    assert deliveries[0].body == '{"error_code": "0000"}'

    after = provider.query_payment(req.trade_no, result.platform_trade_no)
    assert after.status == status
    assert after.amount_paid == paid
    assert after.platform_trade_no == result.platform_trade_no
    assert (after.raw["data"]["success_time"] is not None) == (status == AttemptStatus.PAID)
    order = sandbox.state.get("diamondpay", result.platform_trade_no or "")
    assert (
        order is not None
        and order.status
        == {
            "pay": OrderStatus.PAID,
            "part": OrderStatus.PARTIAL,
            "fail": OrderStatus.FAILED,
        }[action]
    )


def test_retries_stop_only_at_error_code_0000(
    sandbox: RunningSandbox, receivers: list[Receiver]
) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"))
    receiver = start_receiver(
        receivers,
        provider,
        answers=[
            lambda: Response("OK", content_type="text/plain"),  # PayPro's ack, not ours
            lambda: Response("boom", status=500),
            lambda: Response('{"error_code": "0001"}', content_type="application/json"),
        ],
    )
    req = make_request(notify_url=receiver.url)
    result = provider.create_payment(req)
    assert result.instructions and result.instructions.cashier_url
    requests.post(result.instructions.cashier_url, data={"action": "pay"}, timeout=5)
    assert sandbox.state.notifier.wait_idle()

    tries = [
        (d.try_no, d.status_code, d.accepted)
        for d in sandbox.state.notifier.deliveries
        if d.order_id == result.platform_trade_no
    ]
    assert tries == [(1, 200, False), (2, 500, False), (3, 200, False), (4, 200, True)]
    assert len(receiver.bodies) == 4
    assert [u.status for u in receiver.updates] == [AttemptStatus.PAID]


def test_notify_gives_up_after_the_schedule(
    sandbox: RunningSandbox, receivers: list[Receiver]
) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"))
    wrong = [lambda: Response('{"error_code":"0001"}', content_type="application/json")] * 10
    receiver = start_receiver(receivers, provider, answers=wrong)
    result = provider.create_payment(make_request(notify_url=receiver.url))
    assert result.instructions and result.instructions.cashier_url
    requests.post(result.instructions.cashier_url, data={"action": "fail"}, timeout=5)
    assert sandbox.state.notifier.wait_idle()
    # One try plus one per delay in the (test) schedule, none accepted.
    assert len(receiver.bodies) == 1 + len(creds.TEST_NOTIFY_SCHEDULE)


def test_resent_notify_is_the_same_word(sandbox: RunningSandbox, receivers: list[Receiver]) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"))
    receiver = start_receiver(receivers, provider)
    result = provider.create_payment(make_request(notify_url=receiver.url))
    assert result.instructions and result.instructions.cashier_url
    requests.post(result.instructions.cashier_url, data={"action": "pay"}, timeout=5)
    assert sandbox.state.notifier.wait_idle()
    order = sandbox.state.get("diamondpay", result.platform_trade_no or "")
    assert order is not None
    sandbox.state.resend_notify(order)
    assert sandbox.state.notifier.wait_idle()
    assert len(receiver.updates) == 2
    assert receiver.updates[0] == receiver.updates[1]


def captured_notify(
    sandbox: RunningSandbox, receivers: list[Receiver], provider: DiamondPayProvider
) -> dict[str, Any]:
    receiver = start_receiver(receivers, provider)
    result = provider.create_payment(make_request(notify_url=receiver.url))
    assert result.instructions and result.instructions.cashier_url
    requests.post(result.instructions.cashier_url, data={"action": "part"}, timeout=5)
    assert sandbox.state.notifier.wait_idle()
    return json.loads(receiver.bodies[0])


@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_tampered_notify_rejected(
    sandbox: RunningSandbox, receivers: list[Receiver], sign_type: str
) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"), sign_type=sign_type)
    body = captured_notify(sandbox, receivers, provider)
    assert provider.parse_notify({}, json.dumps(body).encode()).status == AttemptStatus.PAID

    for field, value in [("real_amount", body["amount"]), ("status", 3), ("payment_cl_id", "X")]:
        with pytest.raises(InvalidSignature):
            provider.parse_notify({}, json.dumps({**body, field: value}).encode())
    # Dropping sign_type makes the receiver check MD5: an HMAC signature then fails.
    if sign_type == "HMAC-SHA256":
        stripped = {k: v for k, v in body.items() if k != "sign_type"}
        with pytest.raises(InvalidSignature):
            provider.parse_notify({}, json.dumps(stripped).encode())
    unsigned = {k: v for k, v in body.items() if k != "sign"}
    with pytest.raises(InvalidSignature):
        provider.parse_notify({}, json.dumps(unsigned).encode())


def _signed_notify(sign_type: str | None, kind: str) -> bytes:
    body: dict[str, Any] = {
        "payment_id": "DEMOPM1",
        "payment_cl_id": "T1",
        "platform_id": creds.DIAMOND_PLATFORM_ID,
        "amount": 1500000,
        "real_amount": 1500000,
        "fee": 0,
        "status": 2,
    }
    if sign_type is not None:
        body["sign_type"] = sign_type
    body["sign"] = signing.sign(body, creds.DIAMOND_KEY, kind)
    return json.dumps(body).encode()


@pytest.mark.parametrize("declared", [None, "MD5", "md5"])
def test_hmac_provider_refuses_md5_signed_notifies(declared: str | None) -> None:
    """No downgrade: with HMAC-SHA256 configured, a notify correctly MD5-signed with the
    platform key (sign_type MD5 or absent) is refused; the same notify HMAC-signed passes."""
    provider = make_provider("http://127.0.0.1:9", sign_type="HMAC-SHA256")
    with pytest.raises(InvalidSignature):
        provider.parse_notify({}, _signed_notify(declared, "MD5"))
    assert provider.parse_notify({}, _signed_notify("HMAC-SHA256", "HMAC-SHA256")).status == (
        AttemptStatus.PAID
    )


def test_md5_provider_accepts_only_md5() -> None:
    """The other way round too: only the configured type verifies."""
    provider = build(config(sign_type="MD5"))
    assert provider.parse_notify({}, _signed_notify(None, "MD5")).status == AttemptStatus.PAID
    with pytest.raises(InvalidSignature):
        provider.parse_notify({}, _signed_notify("HMAC-SHA256", "HMAC-SHA256"))


def test_notify_for_another_platform_rejected(sandbox: RunningSandbox) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"))
    body: dict[str, Any] = {
        "payment_id": "DEMOPM1",
        "payment_cl_id": "T1",
        "platform_id": "PF0009",
        "amount": 100,
        "real_amount": 100,
        "fee": 0,
        "status": 2,
        "sign_type": "HMAC-SHA256",
    }
    body["sign"] = signing.sign(body, creds.DIAMOND_KEY, "HMAC-SHA256")
    with pytest.raises(InvalidSignature):
        provider.parse_notify({}, json.dumps(body).encode())


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"a": 1,}', b"\xff\xfe"])
def test_notify_not_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedNotify):
        make_provider("http://127.0.0.1:9").parse_notify({}, raw)


def test_signed_notify_with_missing_field_is_malformed() -> None:
    provider = make_provider("http://127.0.0.1:9")
    body: dict[str, Any] = {
        "payment_id": "DEMOPM1",
        "platform_id": creds.DIAMOND_PLATFORM_ID,
        "sign_type": "HMAC-SHA256",
    }
    body["sign"] = signing.sign(body, creds.DIAMOND_KEY, "HMAC-SHA256")
    with pytest.raises(MalformedNotify):
        provider.parse_notify({}, json.dumps(body).encode())


def test_query_unknown_order(sandbox: RunningSandbox) -> None:
    provider = make_provider(sandbox.provider_url("diamondpay"))
    with pytest.raises(ProviderError) as info:
        provider.query_payment("NO-SUCH-ORDER", None)
    assert info.value.code == "0050"
    assert not info.value.retryable


def test_query_needs_the_platform_token(sandbox: RunningSandbox) -> None:
    good = make_provider(sandbox.provider_url("diamondpay"))
    req = make_request()
    good.create_payment(req)
    bad = make_provider(sandbox.provider_url("diamondpay"), api_token="wrong-token")
    with pytest.raises(ProviderError) as info:
        bad.query_payment(req.trade_no, None)
    assert info.value.code == "0008"
    resp = requests.get(
        sandbox.provider_url("diamondpay") + f"/gateway/api/v2/payments/{req.trade_no}",
        headers={"Authorization": f"Bearer {creds.DIAMOND_API_TOKEN}"},
        timeout=5,
    )
    assert resp.status_code == 200 and resp.json()["error_code"] == "0008"


# ---------------------------------------------------------------- configuration
def config(**settings: Any) -> ProviderConfig:
    base = {
        "platform_id": creds.DIAMOND_PLATFORM_ID,
        "key": creds.DIAMOND_KEY,
        "api_token": creds.DIAMOND_API_TOKEN,
    }
    base.update(settings)
    return ProviderConfig(
        "diamondpay_kr",
        "diamondpay",
        "http://127.0.0.1:9",
        {k: v for k, v in base.items() if v is not None},
        METHODS,
    )


def test_build_defaults_to_hmac_sha256() -> None:
    """MD5 is retired (psp-docs, Corrections): HMAC-SHA256 unless MD5 is configured."""
    assert build(config()).sign_type == "HMAC-SHA256"
    assert build(config(sign_type="md5")).sign_type == "MD5"


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"key": None}, "key"),
        ({"api_token": ""}, "api_token"),
        ({"platform_id": "PF00001"}, "platform_id"),
        ({"sign_type": "SHA1"}, "sign_type"),
    ],
)
def test_build_validates_settings(settings: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as info:
        build(config(**settings))
    assert "diamondpay_kr" in str(info.value)


def test_build_validates_service_id() -> None:
    bad = MethodConfig("diamond_x", "diamondpay_kr", "X", {"service_id": "SVC0099"})
    cfg = ProviderConfig(
        "diamondpay_kr", "diamondpay", "http://x", config().settings, (*METHODS, bad)
    )
    with pytest.raises(ValueError, match="diamond_x"):
        build(cfg)


def test_ack_and_rules() -> None:
    provider = make_provider("http://127.0.0.1:9")
    assert provider.currency == "KRW"
    assert provider.notify_ack.body == '{"error_code": "0000"}'
    assert provider.notify_ack.content_type == "application/json"
    rules = provider.payer_rules(METHODS[0])
    assert (rules.name, rules.email, rules.mobile, rules.birth_date) == (
        "required",
        "required",
        "optional",
        "hidden",
    )
    assert rules.timezone == "Asia/Seoul" and rules.mobile_country == "KR"
