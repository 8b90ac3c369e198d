"""What every provider simulator shares: orders, the cashier page, notify delivery."""

from __future__ import annotations

import importlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
from flask import Blueprint, Flask, abort, redirect, render_template, request

from checkout.domain.money import Money
from checkout.providers.registry import SPECS
from checkout.sandbox import faults, payouts, popbill
from checkout.sandbox.faults import Fault, FaultBook, make_fault
from checkout.sandbox.payouts import PayoutBook, SandboxPayout
from checkout.sandbox.popbill import PopbillBook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiamondPlatform:
    key: str
    api_token: str
    # The one sign type the platform speaks: its requests must use it and its notifies are
    # signed with it (HMAC-SHA256 since Diamond Pay retired MD5; "MD5" for a legacy one).
    sign_type: str = "HMAC-SHA256"


@dataclass
class SandboxConfig:
    """The merchants the simulated providers know, and how they call back."""

    paypro_merchants: dict[str, str] = field(default_factory=dict)  # merchantNo -> app secret
    teemopay_apps: dict[str, bytes] = field(default_factory=dict)  # app_code -> merchant pub PEM
    teemopay_private_key: bytes | None = None  # TeemoPay's own key, signs callbacks
    diamond_platforms: dict[str, DiamondPlatform] = field(default_factory=dict)
    # Seconds between notify tries: the providers' real schedules, shortened.
    notify_schedule: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
    notify_timeout: float = 5.0
    # Amounts (major units) above which create answers the provider's limit error.
    max_amount: int = 50_000_000
    # Payouts (checkout/sandbox/payouts.py): each merchant's starting balance per currency
    # (major units; pay-ins paid in the sandbox add to it) and how long one is processing.
    payout_opening_balance: dict[str, int] = field(
        default_factory=lambda: {"KRW": 10_000_000, "MXN": 100_000}
    )
    payout_settle_after: float = 0.5
    # Popbill cash receipts (checkout/sandbox/popbill.py): link id -> secret key, members.
    popbill_partners: dict[str, str] = field(default_factory=dict)
    popbill_members: set[str] = field(default_factory=set)


class OrderStatus:
    PENDING = "pending"
    PAID = "paid"
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass
class SandboxOrder:
    provider: str  # "paypro" | "teemopay" | "diamondpay"
    id: str  # the provider's own order number
    merchant: str  # merchantNo, app_code or platform_id
    trade_no: str  # the merchant's order number
    amount: Money  # what was asked
    notify_url: str | None
    return_url: str | None
    is_va: bool = False  # the shopper pays by deposit rather than on the cashier
    status: str = OrderStatus.PENDING
    paid: Money | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific details


@dataclass
class Delivery:
    """One try at sending a notify, as the provider would log it."""

    order_id: str
    url: str
    try_no: int
    status_code: int | None
    body: str
    accepted: bool
    error: str | None = None
    at: float = field(default_factory=time.time)


class Notifier:
    """Sends notifies in background threads, retrying until the expected ack."""

    def __init__(self, schedule: tuple[float, ...], timeout: float) -> None:
        self.schedule = schedule
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def deliver(
        self,
        order_id: str,
        url: str,
        build: Callable[[], tuple[dict[str, str], bytes]],
        accepted: Callable[[requests.Response], bool],
    ) -> threading.Thread:
        """Send now, then after each delay in the schedule until `accepted`.

        `build` is called for every try, so headers like nonces are fresh.
        """
        thread = threading.Thread(
            target=self._run, args=(order_id, url, build, accepted), daemon=True
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def _run(
        self,
        order_id: str,
        url: str,
        build: Callable[[], tuple[dict[str, str], bytes]],
        accepted: Callable[[requests.Response], bool],
    ) -> None:
        delays = (0.0, *self.schedule)
        session = requests.Session()  # one per delivery thread: Session is not thread-safe
        for try_no, delay in enumerate(delays, start=1):
            if delay and self._stop.wait(delay):
                return
            headers, body = build()
            try:
                resp = session.post(url, data=body, headers=headers, timeout=self.timeout)
                ok = accepted(resp)
                record = Delivery(order_id, url, try_no, resp.status_code, resp.text[:500], ok)
            except requests.RequestException as exc:
                ok = False
                record = Delivery(order_id, url, try_no, None, "", False, type(exc).__name__)
            with self._lock:
                self.deliveries.append(record)
            if ok:
                return

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is running; True if all finished in time."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [t for t in self._threads if t.is_alive()]
                self._threads = threads
            if not threads:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            threads[0].join(min(remaining, 0.1))

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


class ProviderSimulator(Protocol):
    """What a provider module gives the shared cashier."""

    name: str

    def send_notify(self, state: SandboxState, order: SandboxOrder) -> None: ...

    def send_payout_notify(self, state: SandboxState, payout: SandboxPayout) -> None: ...


class SandboxState:
    """All a running sandbox knows. Thread-safe: the server is threaded."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.orders: dict[tuple[str, str], SandboxOrder] = {}
        # The first order per (provider, merchant, merchant's trade number): every create
        # looks its trade number up, and a scan of every order grew with each one made
        # (3 ms at 30,000, under the lock every request takes; bench/notes.md).
        self._by_trade_no: dict[tuple[str, str, str], SandboxOrder] = {}
        self.simulators: dict[str, ProviderSimulator] = {}
        self.notifier = Notifier(config.notify_schedule, config.notify_timeout)
        self.lock = threading.RLock()
        # Errors to answer the next create call with, per provider (for tests and demos).
        self._injected: dict[str, list[tuple[str, str]]] = {}
        # Transport faults (timeouts, broken answers): see checkout/sandbox/faults.py.
        self.faults = FaultBook()
        self.seen_nonces: dict[str, float] = {}
        self.payouts = PayoutBook(self)  # merchants' balances and payouts
        self.popbill = PopbillBook()  # cash-receipt issuer: members, tokens, receipts

    # -- orders
    def new_id(self, prefix: str) -> str:
        return prefix + secrets.token_hex(8)

    def add(self, order: SandboxOrder) -> SandboxOrder:
        with self.lock:
            self.orders[(order.provider, order.id)] = order
            self._by_trade_no.setdefault((order.provider, order.merchant, order.trade_no), order)
        return order

    def get(self, provider: str, order_id: str) -> SandboxOrder | None:
        with self.lock:
            return self.orders.get((provider, order_id))

    def find_by_trade_no(self, provider: str, merchant: str, trade_no: str) -> SandboxOrder | None:
        with self.lock:
            return self._by_trade_no.get((provider, merchant, trade_no))

    def settle(self, order: SandboxOrder, status: str, paid: Money | None) -> None:
        """Finish an order as the shopper did, and notify the merchant."""
        with self.lock:
            if order.status != OrderStatus.PENDING:
                raise ValueError(f"order {order.id} is already {order.status}")
            order.status = status
            order.paid = paid
            order.extra["completed_at"] = datetime.now(UTC)
            if paid is not None:
                order.extra.setdefault("transfers", []).append((new_transfer_id(), paid))
        if paid is not None and status in (OrderStatus.PAID, OrderStatus.PARTIAL):
            self.payouts.credit(order.provider, order.merchant, paid)  # pay-ins feed payouts
        self.simulators[order.provider].send_notify(self, order)

    def deposit_more(self, order: SandboxOrder, amount: Money) -> None:
        """A further transfer into a part-paid virtual account (one more notify: TeemoPay's
        names the transfer, the others report the new total)."""
        with self.lock:
            if not order.is_va or order.status != OrderStatus.PARTIAL or order.paid is None:
                raise ValueError(f"order {order.id} takes no further deposit")
            order.paid = Money(order.paid.amount + amount.amount, amount.currency)
            order.extra.setdefault("transfers", []).append((new_transfer_id(), amount))
            if order.paid.amount >= order.amount.amount:
                order.status = OrderStatus.PAID
        self.payouts.credit(order.provider, order.merchant, amount)
        self.simulators[order.provider].send_notify(self, order)

    def resend_notify(self, order: SandboxOrder) -> None:
        """Send the same notify again (providers do; merchants must cope)."""
        self.simulators[order.provider].send_notify(self, order)

    # -- fault injection
    def inject_create_error(self, provider: str, code: str, message: str) -> None:
        """The next create call to `provider` answers this business error."""
        with self.lock:
            self._injected.setdefault(provider, []).append((code, message))

    def take_injected_error(self, provider: str) -> tuple[str, str] | None:
        with self.lock:
            queue = self._injected.get(provider)
            return queue.pop(0) if queue else None

    def inject_fault(
        self,
        provider: str,
        kind: str,
        *,
        endpoint: str = "create",
        count: int | None = 1,
        delay: float | None = None,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> Fault:
        """The next `count` calls to `provider`'s `endpoint` suffer `kind` (faults.py)."""
        fault = make_fault(
            provider,
            kind,
            endpoint=endpoint,
            count=count,
            delay=delay,
            status=status,
            code=code,
            message=message,
        )
        return self.faults.add(fault)

    def take_fault(self, provider: str, endpoint: str) -> Fault | None:
        return self.faults.take(provider, endpoint)

    def nonce_seen(self, nonce: str, ttl: float = 86400.0) -> bool:
        """Record a nonce; True if it was already used within `ttl` seconds."""
        now = time.time()
        with self.lock:
            for key in [k for k, at in self.seen_nonces.items() if now - at > ttl]:
                del self.seen_nonces[key]
            if nonce in self.seen_nonces:
                return True
            self.seen_nonces[nonce] = now
            return False


def _cashier_blueprint(state: SandboxState) -> Blueprint:
    bp = Blueprint("cashier", __name__, template_folder="templates")

    def load(provider: str, order_id: str) -> SandboxOrder:
        order = state.get(provider, order_id)
        if order is None:
            abort(404)
        return order

    @bp.get("/cashier/<provider>/<order_id>")
    def cashier(provider: str, order_id: str) -> str:
        return render_template("sandbox/cashier.html", order=load(provider, order_id))

    @bp.post("/cashier/<provider>/<order_id>")
    def act(provider: str, order_id: str) -> Any:
        order = load(provider, order_id)
        action = request.form.get("action", "")
        if action == "rest" and order.status == OrderStatus.PARTIAL and order.paid is not None:
            # The shopper transfers the rest into the same virtual account.
            try:
                rest = Money(order.amount.amount - order.paid.amount, order.amount.currency)
                state.deposit_more(order, rest)
            except ValueError:
                abort(409)
            return render_template("sandbox/cashier.html", order=order)
        if order.status != OrderStatus.PENDING:
            return render_template("sandbox/cashier.html", order=order, error="already final"), 409
        outcomes = {
            "pay": (OrderStatus.PAID, order.amount),
            "part": (OrderStatus.PARTIAL, partial_amount(order.amount)),
            "fail": (OrderStatus.FAILED, None),
        }
        if action not in outcomes:
            abort(400)
        try:
            state.settle(order, *outcomes[action])
        except ValueError:  # settled by a concurrent click
            return render_template("sandbox/cashier.html", order=order, error="already final"), 409
        if order.return_url and not order.is_va:
            return redirect(order.return_url, code=303)
        return render_template("sandbox/cashier.html", order=order)

    return bp


def new_transfer_id() -> str:
    """A provider's id for one transfer into an order (TeemoPay's paymentOrderNo)."""
    return "P" + "".join(str(secrets.randbelow(10)) for _ in range(19))


def partial_amount(amount: Money) -> Money:
    """Half the amount, rounded down to a whole major unit (at least one)."""
    unit = 10**amount.exponent
    half = (amount.amount // 2) // unit * unit
    return Money(max(half, unit), amount.currency)


def create_sandbox_app(config: SandboxConfig | None = None) -> Flask:
    """The WSGI app serving every simulator; `app.extensions['sandbox']` is its state."""
    state = SandboxState(config or SandboxConfig())
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secrets.token_hex(16)  # sandbox pages keep no session
    app.extensions["sandbox"] = state
    app.register_blueprint(_cashier_blueprint(state))
    faults.register(app, state)
    payouts.register(app, state)
    popbill.register(app, state)
    app.add_url_rule("/", "sandbox_index", _sandbox_index)
    for spec in SPECS.values():  # each provider's simulator, sandbox/<type>.py
        module = importlib.import_module(spec.sandbox_module)
        simulator = module.Simulator()
        state.simulators[simulator.name] = simulator
        app.register_blueprint(module.blueprint(state), url_prefix=f"/{simulator.name}")
    return app


_INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Provider sandboxes</title>
</head><body><main><h1>Provider sandboxes</h1>
<p>Simulators of PayPro (<code>/paypro</code>), TeemoPay (<code>/teemopay</code>) and Diamond Pay
(<code>/diamondpay</code>), speaking each provider's wire protocol, and of the Popbill cash-receipt
issuer (<code>/popbill</code>; receipts at
<a href="/_sandbox/popbill/receipts">/_sandbox/popbill/receipts</a>). The checkout sends shoppers
to their cashier pages (<code>/cashier/&lt;provider&gt;/&lt;trade no&gt;</code>: Pay, Pay part,
Fail); there is nothing to open here directly.</p>
<p>Queued faults: <a href="/_sandbox/faults">/_sandbox/faults</a>
(docs/contributors/sandboxes.md).</p>
</main></body></html>"""


def _sandbox_index() -> str:
    """What the printed sandbox URL shows: what is served here."""
    return _INDEX


def sandbox_state(app: Flask) -> SandboxState:
    return app.extensions["sandbox"]


def headers_lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
