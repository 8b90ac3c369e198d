"""Property-based tests: arbitrary input at every door of a live app.

One app (with the sandboxes) serves the whole module on loopback ports, so hypothesis can
run many examples without starting servers each time. For every example:

- never a 5xx;
- API errors are JSON with `error.code`;
- invalid input changes no checkout or attempt (a notify may be stored with a
  non-accepted verdict: that is the inbox doing its job);
- no personal data or configured secret in any log record (ours, werkzeug's request
  lines), whatever we feed through the form, the API or a notify.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from checkout import create_app
from checkout.forms import form_token
from checkout.providers.diamondpay import signing as diamond_signing
from checkout.providers.paypro import signing as paypro_signing
from checkout.sandbox.core import create_sandbox_app, sandbox_state
from checkout.sandbox.keys import TeemoPayKeyFiles
from checkout.store.db import db as app_db
from checkout.store.models import Base, Checkout, NotifyMessage, PaymentAttempt
from tests.conftest import _database_url
from tests.support import creds
from tests.support.app_config import (
    LINK_SECRET,
    OTHER_STORE_API_KEY,
    SHOP_ORIGIN,
    TEST_API_KEY,
)
from tests.support.app_config import test_config as app_test_config
from tests.support.live import LateBoundApp, LiveServer, serve
from tests.support.shopper import FLOWS, Shopper, api_headers, create_checkout

SECRET_KEY = "test-secret-key"
# Distinctive personal data: none of it may reach a log line.
PII_EMAIL = "zelda.quokka+pii@example.org"
PII_MOBILE_KR = "01098765432"
PII_MOBILE_MX = "5587654321"
PII_BIRTH = "1987-11-23"
PII_NAME = "Quokkarina Zeldovich"
PII = [PII_EMAIL, PII_MOBILE_KR, PII_MOBILE_MX, PII_BIRTH, PII_NAME]
SECRETS = [
    SECRET_KEY,
    TEST_API_KEY,
    OTHER_STORE_API_KEY,
    LINK_SECRET,
    creds.PAYPRO_APP_SECRET,
    creds.DIAMOND_KEY,
    creds.DIAMOND_API_TOKEN,
]
SENSITIVE = PII + SECRETS
# Values that may travel in a URL (werkzeug logs the request line): no name, since names
# are only masked by never being logged, and a name typed into a URL is the client's doing.
URL_SAFE_SENSITIVE = [PII_EMAIL, PII_MOBILE_KR, PII_MOBILE_MX, PII_BIRTH, *SECRETS]

INSTANCES = ["paypro_kr", "paypro_mx", "paypro_mx_api", "teemopay_kr", "diamondpay_kr"]
METHOD_CODES = [
    "kakaopay",
    "naverpay",
    "paypro_kr_va",
    "mx_store_cashier",
    "mx_spei_cashier",
    "mx_spei",
    "mx_cash",
    "teemopay_va",
    "diamond_card",
    "diamond_bank",
    "diamond_qr",
]
NOTIFY_FIELDS = {
    "paypro": [
        "status",
        "message",
        "platFormTradeNo",
        "tradeNo",
        "amount",
        "successTime",
        "channelCode",
        "wayCode",
        "timestamp",
        "sign",
    ],
    "teemopay": [
        "merchantOrderNo",
        "tradeNo",
        "paymentOrderNo",
        "status",
        "paymentAmount",
        "serviceAmount",
        "paymentInfo",
        "paymentType",
        "completeTime",
        "errorMessage",
        "sign",
    ],
    "diamondpay": [
        "payment_id",
        "payment_cl_id",
        "platform_id",
        "amount",
        "real_amount",
        "fee",
        "status",
        "create_time",
        "update_time",
        "sign_type",
        "sign",
    ],
}
NOTIFY_HEADERS = [
    "Content-Type",
    "timestamp",
    "nonce",
    "country",
    "appCode",
    "app_code",
    "sign",
    "X-Forwarded-For",
    "Authorization",
]
EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------- the module's app
class CapturingHandler(logging.Handler):
    """Keeps every record's final text (message and traceback) from every thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + "\n" + (record.exc_text or "")
        with self._guard:
            self.lines.append(f"{record.name}: {text}")

    def take(self) -> list[str]:
        with self._guard:
            lines, self.lines = self.lines, []
        return lines


@dataclass
class PropApp:
    url: str
    app: Any
    http: requests.Session
    logs: CapturingHandler
    open_checkout: str  # a checkout with nothing started: the form's target
    trade_nos: dict[str, str] = field(default_factory=dict)  # instance -> pending trade_no

    def session(self):  # type: ignore[no-untyped-def]
        return app_db.bound(self.app).session_factory()


@pytest.fixture(scope="module")
def prop_app(
    teemopay_keys: TeemoPayKeyFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PropApp]:
    tmp_path: Path = tmp_path_factory.mktemp("properties")
    sandbox_app = create_sandbox_app(creds.sandbox_config(teemopay_keys))
    sandbox_server = serve(sandbox_app)
    late = LateBoundApp()
    server: LiveServer = serve(late)
    config = app_test_config(
        sandbox_url=sandbox_server.url,
        public_base_url=server.url,
        database_url=_database_url(tmp_path),
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    # Hundreds of requests from one IP in seconds: the rate limits are not under test here.
    config["rate_limits"] = {k: "100000/minute" for k in ("checkout_form", "api", "notify")}
    app = create_app(config)
    Base.metadata.create_all(app_db.bound(app).engine)
    late.app = app

    handler = CapturingHandler()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        # One pending attempt per provider instance: notifies aim at real trade numbers.
        trade_nos: dict[str, str] = {}
        for flow in FLOWS:
            if flow.instance in trade_nos:
                continue
            checkout = create_checkout(server.url, amount=flow.amount, currency=flow.currency)
            resp = Shopper(checkout["url"]).submit(flow.method, flow.payer)
            assert resp.status_code == 303, resp.text
            with app_db.bound(app).session_factory() as session:
                trade_nos[flow.instance] = session.scalars(
                    select(PaymentAttempt.trade_no).where(
                        PaymentAttempt.checkout_id == checkout["id"]
                    )
                ).one()
        open_checkout = create_checkout(server.url)["id"]
        http = requests.Session()
        yield PropApp(server.url, app, http, handler, open_checkout, trade_nos)
        http.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        sandbox_state(sandbox_app).notifier.stop()
        server.shutdown()
        sandbox_server.shutdown()
        app_db.bound(app).engine.dispose()


@dataclass(frozen=True)
class Snapshot:
    checkouts: tuple[tuple[Any, ...], ...]
    attempts: tuple[tuple[Any, ...], ...]
    notifies: int


def snapshot(prop: PropApp) -> Snapshot:
    with prop.session() as session:
        checkouts = session.execute(
            select(
                Checkout.id,
                Checkout.status,
                Checkout.amount_paid,
                Checkout.review_reason,
                Checkout.event_seq,
            ).order_by(Checkout.id)
        ).all()
        attempts = session.execute(
            select(
                PaymentAttempt.id,
                PaymentAttempt.status,
                PaymentAttempt.amount_paid,
                PaymentAttempt.review_reason,
                PaymentAttempt.platform_trade_no,
            ).order_by(PaymentAttempt.id)
        ).all()
        notifies = session.scalar(select(func.count()).select_from(NotifyMessage)) or 0
    return Snapshot(tuple(map(tuple, checkouts)), tuple(map(tuple, attempts)), notifies)


def money_state(snap: Snapshot) -> tuple[Any, ...]:
    """Statuses and amounts only (a signed notify may flag review_reason legitimately)."""
    return (
        tuple((c[0], c[1], c[2]) for c in snap.checkouts),
        tuple((a[0], a[1], a[2]) for a in snap.attempts),
    )


def assert_no_sensitive_logs(prop: PropApp) -> None:
    lines = prop.logs.take()
    leaks = [(value, line) for line in lines for value in SENSITIVE if value in line]
    assert not leaks, leaks[:3]


@pytest.fixture(autouse=True)
def _fresh_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    if "prop_app" not in request.fixturenames:
        yield
        return
    prop: PropApp = request.getfixturevalue("prop_app")
    prop.logs.take()
    yield
    assert_no_sensitive_logs(prop)


# ---------------------------------------------------------------- strategies
sensitive = st.sampled_from(SENSITIVE)
url_sensitive = st.sampled_from(URL_SAFE_SENSITIVE)
any_text = st.one_of(
    st.text(max_size=60),
    sensitive,
    st.sampled_from(["", " ", "0", "-1", "null", "010", "1990-01-01", "🙂" * 5, "\x00"]),
    st.just("A" * 300_000),  # past MAX_CONTENT_LENGTH (256 KiB)
    st.text(min_size=1000, max_size=3000),
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    sensitive,
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
# Header values as HTTP carries them (latin-1, no line breaks).
header_value = st.one_of(
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
        max_size=80,
    ).map(str.lstrip),  # a client cannot send leading whitespace (requests refuses)
    sensitive,
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- (a) the checkout form
@EXAMPLES
@given(
    fields=st.dictionaries(
        st.sampled_from(
            ["first_name", "last_name", "email", "mobile", "birth_date", "method", "action"]
        )
        | st.text(min_size=1, max_size=12),
        any_text,
        max_size=8,
    ),
    method=st.one_of(st.sampled_from(METHOD_CODES), st.text(max_size=20)),
    token=st.one_of(
        st.just("valid"),
        st.none(),
        st.text(max_size=80),
        st.sampled_from(["0.0", "1.abc", "9999999999.deadbeef", "valid-other-checkout"]),
    ),
)
def test_checkout_form_takes_anything(
    prop_app: PropApp, fields: dict[str, str], method: str, token: str | None
) -> None:
    checkout_id = prop_app.open_checkout
    data = dict(fields)
    if token == "valid":
        data["csrf_token"] = form_token(SECRET_KEY, checkout_id)
    elif token == "valid-other-checkout":  # a genuine token of another checkout
        data["csrf_token"] = form_token(SECRET_KEY, "co_" + "x" * 20)
    elif token is not None:
        data["csrf_token"] = token
    data.setdefault("method", method)
    before = snapshot(prop_app)
    resp = prop_app.http.post(
        f"{prop_app.url}/c/{checkout_id}",
        params={"method": method},
        data={k: v.encode("utf-8", "surrogatepass") for k, v in data.items()},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code < 500, resp.text[:500]
    if resp.status_code == 303 and token == "valid":
        return  # a valid submission: starting a payment is the point
    assert snapshot(prop_app) == before


# ---------------------------------------------------------------- (b) the shop API
CHECKOUT_FIELDS = [
    "order_id",
    "amount",
    "currency",
    "return_url",
    "cancel_url",
    "description",
    "methods",
    "locale",
    "expires_at",
    "prefill",
]
field_value = st.one_of(
    json_value,
    st.sampled_from(
        [
            "KRW",
            "MXN",
            15000,
            25000,
            f"{SHOP_ORIGIN}/done",
            "https://evil.example/x",
            ["kakaopay"],
            "nul\x00inside",  # PostgreSQL cannot store NUL in text
            {"email": PII_EMAIL, "mobile": PII_MOBILE_KR, "first_name": PII_NAME},
        ]
    ),
)
api_body = st.one_of(
    st.binary(max_size=300),
    json_value.map(_dumps),
    st.dictionaries(st.sampled_from(CHECKOUT_FIELDS), field_value, max_size=10).map(_dumps),
    st.just(b"{" * 5000),
)
auth_header = st.one_of(
    st.just(f"Bearer {TEST_API_KEY}"),
    st.just(f"Bearer {TEST_API_KEY}"),
    st.builds(lambda v: f"Bearer {v}", header_value),
    header_value,
)


def _assert_api_error_shape(resp: requests.Response) -> None:
    if resp.status_code >= 400:
        body = resp.json()
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], body


@EXAMPLES
@given(
    body=api_body,
    auth=auth_header,
    extra=st.dictionaries(
        st.sampled_from(["Content-Type", "Idempotency-Key", "Accept", "X-Forwarded-For"]),
        header_value,
        max_size=3,
    ),
)
def test_api_create_takes_anything(
    prop_app: PropApp, body: bytes, auth: str, extra: dict[str, str]
) -> None:
    headers = {"Content-Type": "application/json", **extra, "Authorization": auth}
    before = snapshot(prop_app)
    resp = prop_app.http.post(
        f"{prop_app.url}/api/v1/checkouts",
        data=body,
        headers={k: v.encode("latin-1") for k, v in headers.items()},
        timeout=30,
    )
    assert resp.status_code < 500, resp.text[:500]
    _assert_api_error_shape(resp)
    after = snapshot(prop_app)
    if resp.status_code == 201:  # valid input: exactly one new checkout, nothing else moved
        assert len(after.checkouts) == len(before.checkouts) + 1
        assert after.attempts == before.attempts
    else:
        assert after == before


@EXAMPLES
@given(
    order_id=st.one_of(st.text(max_size=50), url_sensitive),
    checkout_id=st.one_of(st.text(min_size=1, max_size=50), url_sensitive, st.just("co_\x00")),
    auth=auth_header,
)
def test_api_read_takes_anything(
    prop_app: PropApp, order_id: str, checkout_id: str, auth: str
) -> None:
    headers = {"Authorization": auth.encode("latin-1")}
    before = snapshot(prop_app)
    for url in (
        f"{prop_app.url}/api/v1/checkouts?order_id={quote(order_id, safe='')}",
        f"{prop_app.url}/api/v1/checkouts/{quote(checkout_id, safe='')}",
        f"{prop_app.url}/api/v1/checkouts/{quote(checkout_id, safe='')}/cancel",
    ):
        resp = (
            prop_app.http.post(url, headers=headers, timeout=30)
            if url.endswith("/cancel")
            else prop_app.http.get(url, headers=headers, timeout=30)
        )
        assert resp.status_code < 500, resp.text[:500]
        _assert_api_error_shape(resp)
    assert snapshot(prop_app) == before


# ---------------------------------------------------------------- (c) notifies
def _notify_fields(provider_type: str, trade_no: str) -> st.SearchStrategy[dict[str, Any]]:
    value = st.one_of(
        field_value,
        st.just(trade_no),
        st.sampled_from(["0000", "0001", "1", "2", "3", 0, 1, 2, "MD5", "HMAC-SHA256"]),
        st.sampled_from(["15000", "150.00", "1e3", "-1", "NaN", "Infinity", 1e308]),
    )
    return st.dictionaries(st.sampled_from(NOTIFY_FIELDS[provider_type]), value, max_size=11)


PROVIDER_TYPE = {
    "paypro_kr": "paypro",
    "paypro_mx": "paypro",
    "paypro_mx_api": "paypro",
    "teemopay_kr": "teemopay",
    "diamondpay_kr": "diamondpay",
}
FAILED_VERDICTS = {"bad_signature", "malformed", "unknown_trade"}


def _post_notify(
    prop: PropApp, instance: str, body: bytes, headers: dict[str, str]
) -> requests.Response:
    return prop.http.post(
        f"{prop.url}/notify/{instance}",
        data=body,
        headers={k: v.encode("latin-1") for k, v in headers.items()},
        timeout=30,
    )


def _latest_verdict(prop: PropApp) -> str:
    with prop.session() as session:
        return session.scalars(
            select(NotifyMessage.verdict).order_by(NotifyMessage.id.desc()).limit(1)
        ).one()


@pytest.mark.parametrize("instance", INSTANCES)
def test_notify_takes_anything(prop_app: PropApp, instance: str) -> None:
    trade_no = prop_app.trade_nos[instance]
    provider_type = PROVIDER_TYPE[instance]

    @EXAMPLES
    @given(
        body=st.one_of(
            st.binary(max_size=500),
            json_value.map(_dumps),
            _notify_fields(provider_type, trade_no).map(_dumps),
        ),
        headers=st.dictionaries(st.sampled_from(NOTIFY_HEADERS), header_value, max_size=5),
    )
    def check(body: bytes, headers: dict[str, str]) -> None:
        before = snapshot(prop_app)
        resp = _post_notify(prop_app, instance, body, headers)
        assert resp.status_code < 500, resp.text[:500]
        after = snapshot(prop_app)
        # Stored, with a refusing verdict, and nothing else moved.
        assert after.notifies == before.notifies + 1
        assert _latest_verdict(prop_app) in FAILED_VERDICTS
        assert resp.status_code in (400, 401, 404)
        assert (after.checkouts, after.attempts) == (before.checkouts, before.attempts)

    check()


def _sign(provider_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    if provider_type == "paypro":
        return {**fields, "sign": paypro_signing.sign(fields, creds.PAYPRO_APP_SECRET)}
    sign_type = fields.get("sign_type")
    kind = sign_type if sign_type in ("MD5", "HMAC-SHA256") else "MD5"
    return {**fields, "sign": diamond_signing.sign(fields, creds.DIAMOND_KEY, kind)}


@pytest.mark.parametrize("instance", ["paypro_kr", "paypro_mx_api", "diamondpay_kr"])
def test_signed_notify_with_random_values(prop_app: PropApp, instance: str) -> None:
    """Genuinely signed, semantically random: the mapping must refuse, never crash."""
    trade_no = prop_app.trade_nos[instance]
    provider_type = PROVIDER_TYPE[instance]

    @EXAMPLES
    @given(fields=_notify_fields(provider_type, trade_no))
    def check(fields: dict[str, Any]) -> None:
        fields.pop("sign", None)
        try:
            signed = _sign(provider_type, fields)
        except (TypeError, ValueError, AttributeError):
            return  # not signable by the provider's rules either: nothing to send
        before = snapshot(prop_app)
        resp = _post_notify(
            prop_app, instance, _dumps(signed), {"Content-Type": "application/json"}
        )
        assert resp.status_code < 500, resp.text[:500]
        verdict = _latest_verdict(prop_app)
        if verdict != "accepted":
            assert money_state(snapshot(prop_app)) == money_state(before), verdict

    check()


# ---------------------------------------------------------------- the logs themselves
def test_request_lines_are_logged_and_masked(prop_app: PropApp) -> None:
    """werkzeug's request line is captured, and what a query string carries is masked."""
    prop_app.logs.take()
    query = (
        f"order_id={quote(PII_EMAIL)}&m={PII_MOBILE_KR}&mx={PII_MOBILE_MX}&dob={PII_BIRTH}"
        f"&k={creds.PAYPRO_APP_SECRET}&return_url={quote(f'{SHOP_ORIGIN}/?e={PII_EMAIL}')}"
    )
    resp = prop_app.http.get(
        f"{prop_app.url}/api/v1/checkouts?{query}", headers=api_headers(), timeout=10
    )
    assert resp.status_code == 200
    lines = prop_app.logs.take()
    request_lines = [line for line in lines if line.startswith("werkzeug:") and "GET /api" in line]
    assert request_lines, lines  # the request line is there, masked
    for value in SENSITIVE:
        assert all(value not in line for line in lines), value
    assert "<email>" in request_lines[0] and "<mobile>" in request_lines[0]


def test_pii_through_the_form_and_a_payment_stays_out_of_the_logs(prop_app: PropApp) -> None:
    """A whole payment with distinctive personal data: form, provider call, notify, API."""
    checkout = create_checkout(prop_app.url, order_id=f"pii-{secrets.token_hex(4)}")
    payer = {
        "first_name": PII_NAME.split()[0],
        "last_name": PII_NAME.split()[1],
        "email": PII_EMAIL,
        "mobile": PII_MOBILE_KR,
        "birth_date": PII_BIRTH,
    }
    resp = Shopper(checkout["url"]).submit("paypro_kr_va", payer)
    assert resp.status_code in (303, 422), resp.text[:300]
    resp = prop_app.http.get(
        f"{prop_app.url}/api/v1/checkouts/{checkout['id']}", headers=api_headers(), timeout=10
    )
    assert resp.status_code == 200
    lines = prop_app.logs.take()
    assert lines  # something was logged (request lines at least)
    for value in [*SENSITIVE, PII_NAME.split()[0], PII_NAME.split()[1]]:
        assert all(value not in line for line in lines), value


# ---------------------------------------------------------------- hostile shapes (issue 12)
# Deep nesting, 256 KB runs of one character class, exotic digits and exponent forms:
# the shapes that once cost a RecursionError 500, minutes of masking, or a 30 s conversion.
HOSTILE_RUN_UNITS = ["a", "Z", "7", "@", ".", "@.", "%40", "a%40", "-", " ", "2 ", "+", "_"]
hostile_run = st.lists(
    st.tuples(st.sampled_from(HOSTILE_RUN_UNITS), st.integers(min_value=1, max_value=65_536)),
    min_size=1,
    max_size=4,
).map(lambda parts: "".join(unit * count for unit, count in parts)[: 256 * 1024])
deep_json = st.builds(
    lambda opener, depth, tail: (opener * depth + tail).encode()[:200_000],  # < 256 KiB
    st.sampled_from(["[", '{"a":', '[{"tradeNo":"x","n":', '{"amount":[']),
    st.integers(min_value=33, max_value=60_000),
    st.sampled_from(["", "1", "]" * 10, "}" * 10, '"x"']),
)
# Digits that are not ASCII (full-width, Arabic-Indic, Devanagari, ...), exponent forms,
# signs, separators, blanks: never an amount.
exotic_digit = st.characters(categories=["Nd"]).filter(lambda c: not "0" <= c <= "9")
exotic_amount = st.one_of(
    st.lists(exotic_digit, min_size=1, max_size=8).map("".join),
    st.builds(
        lambda m, e, sign: f"{m}{'eE'[e % 2]}{sign}{e}",
        st.integers(min_value=1, max_value=99_999),
        st.integers(min_value=0, max_value=999_999),
        st.sampled_from(["", "+", "-"]),
    ),
    st.builds(
        lambda pre, n, post: f"{pre}{n}{post}",
        st.sampled_from(["+", "-", " ", "\t", "\u00a0", "\u200b", "_", "0x", "\ufeff"]),
        st.integers(min_value=0, max_value=10**6),
        st.sampled_from(["", " ", "_000", ".", "e3", "\n"]),
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999999", "1e30", "9" * 40, ""]),
)


@EXAMPLES
@given(text=hostile_run)
def test_masking_hostile_runs_is_linear_and_bounded(text: str) -> None:
    import time

    from checkout.logging_setup import MASK_LIMIT, mask_text

    started = time.perf_counter()
    full = mask_text(text, limit=len(text) + 1)
    shown = mask_text(text)
    assert time.perf_counter() - started < 3.0  # linear: ~0.1 s per 256 KB here
    assert len(shown) <= MASK_LIMIT + 40
    assert len(full) <= len(text) * 7 + 7  # every match is replaced by a short token


@EXAMPLES
@given(body=deep_json)
def test_deep_json_is_refused_by_the_shared_parser(body: bytes) -> None:
    from checkout import jsonsafe
    from checkout.services.exchanges import mask_body

    with pytest.raises(jsonsafe.UnsafeJson):
        jsonsafe.loads(body)
    assert mask_body(body) is not None  # shown as text, never a crash


@pytest.mark.parametrize("instance", INSTANCES)
def test_notify_hostile_shapes(prop_app: PropApp, instance: str) -> None:
    """Deep nesting and 256 KB runs at the notify door: a 400 or 401 verdict, stored, and
    nothing moved; never a 500."""
    trade_no = prop_app.trade_nos[instance]

    @settings(EXAMPLES, max_examples=15)
    @given(
        body=st.one_of(
            deep_json,
            hostile_run.map(lambda run: _dumps({"tradeNo": trade_no, "x": run})[: 256 * 1024]),
            hostile_run.map(lambda run: run.encode()[: 256 * 1024]),
        )
    )
    def check(body: bytes) -> None:
        before = snapshot(prop_app)
        resp = _post_notify(prop_app, instance, body, {"Content-Type": "application/json"})
        assert resp.status_code in (400, 401, 404), resp.text[:300]
        after = snapshot(prop_app)
        assert after.notifies == before.notifies + 1
        assert _latest_verdict(prop_app) in FAILED_VERDICTS
        assert (after.checkouts, after.attempts) == (before.checkouts, before.attempts)

    check()


@settings(EXAMPLES, max_examples=15)
@given(body=deep_json)
def test_api_deep_json_is_a_400(prop_app: PropApp, body: bytes) -> None:
    before = snapshot(prop_app)
    resp = prop_app.http.post(
        f"{prop_app.url}/api/v1/checkouts",
        data=body,
        headers={**api_headers(), "Content-Type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 400, resp.text[:300]
    assert resp.json()["error"]["code"] == "invalid_json"
    assert snapshot(prop_app) == before


@EXAMPLES
@given(value=exotic_amount)
def test_exotic_amounts_are_refused_at_once(value: str) -> None:
    import time

    from checkout.domain.errors import MoneyError
    from checkout.domain.money import Money

    for currency in ("KRW", "MXN"):
        started = time.perf_counter()
        with pytest.raises(MoneyError):
            Money.parse_provider_amount(value, currency)
        assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize("instance", ["paypro_kr", "paypro_mx_api", "diamondpay_kr"])
def test_signed_notify_with_exotic_amounts_moves_no_money(prop_app: PropApp, instance: str) -> None:
    """Genuinely signed paid notifies whose amounts are exotic digits, exponents, signs or
    blanks: malformed (or amount_mismatch), never a 5xx, money unchanged."""
    trade_no = prop_app.trade_nos[instance]
    provider_type = PROVIDER_TYPE[instance]

    @settings(EXAMPLES, max_examples=25)
    @given(amount=exotic_amount)
    def check(amount: str) -> None:
        if provider_type == "paypro":
            fields: dict[str, Any] = {
                "status": "0000",
                "tradeNo": trade_no,
                "platFormTradeNo": "PP-prop",
                "amount": amount,
            }
        else:
            fields = {
                "payment_id": trade_no,
                "payment_cl_id": "DP-prop",
                "platform_id": creds.DIAMOND_PLATFORM_ID,
                "amount": amount,
                "real_amount": amount,
                "status": 2,
                "sign_type": "HMAC-SHA256",
            }
        try:
            signed = _sign(provider_type, fields)
        except (TypeError, ValueError, AttributeError):
            return
        before = snapshot(prop_app)
        resp = _post_notify(
            prop_app, instance, _dumps(signed), {"Content-Type": "application/json"}
        )
        assert resp.status_code < 500, resp.text[:300]
        assert _latest_verdict(prop_app) in ("malformed", "amount_mismatch")
        assert money_state(snapshot(prop_app)) == money_state(before)

    check()


# ---------------------------------------------------------------- URL tricks
# Pieces of the shapes that make Python's urlsplit and a browser read different hosts, or that
# a browser silently repairs: backslashes, user-info, blanks and controls, percent-encoding,
# IDNA, brackets and ports.
_url_noise = st.sampled_from(
    [
        "\\",
        "\\\\",
        "@",
        ":@",
        "\t",
        "\n",
        "\r",
        " ",
        "\x00",
        "\x1f",
        "\x7f",
        "\u200b",
        "\u202e",
        "\u3000",
        "%2e",
        "%40",
        "%5c",
        "%00",
        "%65",
        "#",
        "?",
        "/",
        "//",
        ":",
        "[",
        "]",
        ".",
        "。",
        "ｅ",
        "xn--",
        "evil.example",
        "shop.example",
        ":443",
        ":80",
        ":abc",
        ":99999",
        ":-1",
        "[::1",
        "[::1]",
    ]
)
hostile_url = st.builds(
    lambda scheme, sep, parts: scheme + sep + "".join(parts),
    st.sampled_from(["https", "HTTPS", "http", "javascript", "data", "ftp", "", "https\t"]),
    st.sampled_from(["://", ":", ":/", ":///", ":\\\\", "://\\"]),
    st.lists(_url_noise, min_size=1, max_size=8),
)


@EXAMPLES
@given(text=st.one_of(hostile_url, st.text(max_size=60)))
def test_url_tricks_are_refused_or_read_as_a_browser_does(text: str) -> None:
    """Whatever a URL looks like, we either refuse it or keep what a browser would visit:
    the serialisation reads back the same, carries no blank, control, backslash or
    user-info, and Python's urlsplit sees the very host the browser's parser sees."""
    from urllib.parse import urlsplit

    import ada_url

    from checkout.urls import UrlRefused, parse_web_url

    try:
        url = parse_web_url(text)
    except UrlRefused as refused:
        assert refused.reason
        return
    assert parse_web_url(url.href) == url
    assert not any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in url.href)
    assert "\\" not in url.href
    browser = ada_url.URL(text)  # the original input, as a browser reads it
    assert browser.hostname == url.host and not browser.username and not browser.password
    split = urlsplit(url.href)
    assert split.username is None and split.password is None
    assert (split.hostname or "") == url.host.strip("[]").lower()


@EXAMPLES
@given(
    field_name=st.sampled_from(["return_url", "cancel_url"]),
    tail=st.lists(_url_noise, min_size=1, max_size=6).map("".join),
    head=st.sampled_from([SHOP_ORIGIN, "https://evil.example", "https://shop.example"]),
)
def test_api_urls_off_the_store_origins_are_never_stored(
    prop_app: PropApp, field_name: str, tail: str, head: str
) -> None:
    """A 400 naming the field, or a checkout whose stored URL a browser reads as on one of
    the store's origins: never a 5xx, never a stored trick."""
    import ada_url

    body = {
        "order_id": f"url-{secrets.token_hex(6)}",
        "amount": 15000,
        "currency": "KRW",
        "return_url": f"{SHOP_ORIGIN}/done",
        field_name: head + tail,
    }
    resp = prop_app.http.post(
        f"{prop_app.url}/api/v1/checkouts", json=body, headers=api_headers(), timeout=30
    )
    assert resp.status_code in (201, 400), resp.text[:300]
    if resp.status_code == 400:
        error = resp.json()["error"]
        # NUL is refused for the whole body before any field is read.
        assert error.get("field") == field_name or error["code"] == "invalid_request", error
        return
    stored = resp.json()[field_name]
    assert ada_url.URL(stored).origin in (SHOP_ORIGIN, prop_app.url)
    assert ada_url.URL(stored).href == stored


# ---------------------------------------------------------------- notify floods
@pytest.fixture(scope="module")
def flood_app(
    teemopay_keys: TeemoPayKeyFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """An app with small notify limits (3 a minute per IP, 5 an hour per instance)."""
    tmp_path: Path = tmp_path_factory.mktemp("floods")
    config = app_test_config(
        sandbox_url="http://127.0.0.1:9",
        public_base_url="http://127.0.0.1:9",
        database_url=_database_url(tmp_path),
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    config["rate_limits"] = {"notify": "3/minute", "notify_instance": "5/hour"}
    app = create_app(config)
    Base.metadata.create_all(app_db.bound(app).engine)
    yield app
    app_db.bound(app).engine.dispose()


def _signed_paypro(trade_no: str) -> bytes:
    fields = {"status": "0000", "tradeNo": trade_no, "amount": "15000", "timestamp": "1"}
    return _dumps({**fields, "sign": paypro_signing.sign(fields, creds.PAYPRO_APP_SECRET)})


_flood_message = st.tuples(
    st.sampled_from(["genuine", "genuine", "forged", "malformed"]),
    st.integers(min_value=0, max_value=2),  # which of a few trade numbers: repeats are copies
    st.sampled_from(["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]),
)


@EXAMPLES
@given(messages=st.lists(_flood_message, min_size=1, max_size=40))
def test_a_flood_never_refuses_a_genuine_notify_and_stores_boundedly(
    flood_app: Any, messages: list[tuple[str, int, str]]
) -> None:
    """Any interleaving of genuine notifies (and many copies of them), forgeries and junk
    from a few addresses: every genuine one is taken and stored (a signed notify for an
    unknown trade here: 404 unknown_trade, never 429); what does not verify is stored at
    most 3 a minute per address and 5 an hour for the instance, the rest answered 429."""
    flood_app.extensions["checkout_limiter"].reset()
    flood_app.extensions["checkout_notify_guard"]._suspects.clear()
    with app_db.bound(flood_app).session_factory() as session:
        session.query(NotifyMessage).delete()
        session.commit()
    client = flood_app.test_client()
    run = secrets.token_hex(4)
    stored_unverified: dict[str, int] = {}
    for kind, which, address in messages:
        genuine = _signed_paypro(f"FLOOD{run}{which}")
        body = {
            "genuine": genuine,
            "forged": genuine.replace(b'"sign": "', b'"sign": "0'),
            "malformed": b'{"tradeNo": ' + b"[" * 50,
        }[kind]
        resp = client.post(
            "/notify/paypro_kr",
            data=body,
            headers={"Content-Type": "application/json"},
            environ_base={"REMOTE_ADDR": address},
        )
        assert resp.status_code < 500
        if kind == "genuine":
            assert resp.status_code == 404 and resp.text == "unknown trade"
        else:
            assert resp.status_code in (400, 401, 429)
            if resp.status_code != 429:
                stored_unverified[address] = stored_unverified.get(address, 0) + 1
    assert all(n <= 3 for n in stored_unverified.values())
    assert sum(stored_unverified.values()) <= 5
    with app_db.bound(flood_app).session_factory() as session:
        verdicts = list(session.scalars(select(NotifyMessage.verdict)))
    assert verdicts.count("unknown_trade") == sum(1 for m in messages if m[0] == "genuine")
    assert len(verdicts) - verdicts.count("unknown_trade") == sum(stored_unverified.values())
