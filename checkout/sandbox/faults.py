"""Fault injection for the simulators: the ways a real provider's API misbehaves.

`SandboxState.inject_fault(provider, kind, endpoint=..., count=..., delay=...)` queues a
fault; the next matching call to that provider's endpoint suffers it: `create`, `query`,
`payout` (payout create), `payout_query` or `balance` (the balance inquiry); for the
`popbill` cash-receipt issuer `token`, `issue` (issues and cancels) or `receipt_query`.

| kind | the provider acts? | what the caller sees |
|---|---|---|
| `slow` | yes, after `delay` s | the normal answer, `delay` seconds late (a timeout if longer) |
| `read_timeout` | yes | the answer held back `delay` s: the caller's read timeout fires |
| `http_500` | no | HTTP 500, a plain-text body |
| `html_error` | no | HTTP 502 (or `status`) with a proxy's HTML error page |
| `malformed_json` | no | HTTP 200, `application/json`, a body that is not JSON |
| `truncated_json` | yes | HTTP 200, the real answer cut in half (Content-Length agrees) |
| `connection_reset` | yes | the connection closed with no answer: `requests.ConnectionError` |
| `refuse` | no | the provider's own refusal with `code` (and `message`): see below |

`refuse` answers as each provider words a refusal, before anything is created:
- PayPro: `{"code": <code>, "msg": ...}` (HTTP 200), e.g. `0100019` (the payee's daily
  cap), `00029` (rejected), `5000` (system error: down or in maintenance);
- TeemoPay: `{"code": <code>, "msg": ..., "data": null}`, e.g. `426` (duplicate order),
  `412`, `500`; the code `3` answers an accepted create failed at once (`data.status` 3) with
  `message` as `errorMsg` (default: the channel-maintenance message);
- Diamond Pay: `{"error_code": <code>, "error_msg": ...}`, e.g. `0004`, `0006`, `0012`, `0018`;
- Popbill: `{"code": -<code>, "message": ...}` (HTTP 400) for the digits given, e.g. `14001002`.

A connect timeout cannot come from a server that accepts the connection, so it is not a
kind here: point the client at `UnansweredListener().url` instead, a loopback listener
whose accept queue is full, so the kernel drops new SYNs and `connect()` times out.

People running `python3 dev.py run` trigger faults with `POST /_sandbox/faults` (JSON
`{"provider", "kind", "endpoint", "count", "delay", "status", "code", "message"}`); `GET`
lists what is queued, `DELETE` clears it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from checkout.providers.registry import SPECS

if TYPE_CHECKING:
    from checkout.sandbox.core import SandboxState

# One simulator per registered provider type, and the cash-receipt issuer (sandbox/popbill.py).
PROVIDERS = (*SPECS, "popbill")
ENDPOINTS = (
    "create",
    "query",
    "payout",
    "payout_query",
    "balance",
    "token",
    "issue",
    "receipt_query",
)
# Faults that let the simulator act first and spoil only the answer.
AFTER_ACTING = frozenset({"read_timeout", "truncated_json", "connection_reset"})
BEFORE_ACTING = frozenset({"slow", "http_500", "html_error", "malformed_json", "refuse"})
KINDS = BEFORE_ACTING | AFTER_ACTING
DEFAULT_DELAY = {"slow": 2.0, "read_timeout": 30.0}
MAX_DELAY = 120.0  # a sandbox thread never sleeps longer than this
MAX_COUNT = 1000
MAX_CODE = 16  # characters of a refusal code
MAX_MESSAGE = 200
# A provider's refusal answer for `refuse`: (code, message or None) -> the response.
Refusal = Callable[[str, str | None], Response]

HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
MALFORMED_JSON = "{'code': '0000', 'msg': 'success', data: {tradeNo: }"


class FaultError(ValueError):
    """An injection request that names no real provider, kind or endpoint."""


@dataclass
class Fault:
    provider: str
    kind: str
    endpoint: str = "create"
    remaining: int | None = 1  # None: every matching call until cleared
    delay: float = 0.0
    status: int | None = None  # http_500 / html_error: the HTTP status to answer
    code: str | None = None  # refuse: the provider's refusal code
    message: str | None = None  # refuse: its message (a default per provider when None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def make_fault(
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
    """A checked Fault; FaultError names what is wrong."""
    if kind == "connect_timeout":
        raise FaultError(
            "connect_timeout cannot be injected into a server that accepts connections: "
            "point the provider's base_url at an UnansweredListener (a full accept queue)"
        )
    if provider not in PROVIDERS:
        raise FaultError(f"provider must be one of {', '.join(PROVIDERS)}")
    if kind not in KINDS:
        raise FaultError(f"kind must be one of {', '.join(sorted(KINDS))}")
    if endpoint not in ENDPOINTS:
        raise FaultError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
    if count is not None and (isinstance(count, bool) or not 1 <= int(count) <= MAX_COUNT):
        raise FaultError(f"count must be 1 to {MAX_COUNT}, or null for every call")
    wait = DEFAULT_DELAY.get(kind, 0.0) if delay is None else float(delay)
    if not 0 <= wait <= MAX_DELAY:
        raise FaultError(f"delay must be 0 to {MAX_DELAY:g} seconds")
    if status is not None and not 200 <= int(status) <= 599:
        raise FaultError("status must be an HTTP status (200 to 599)")
    if kind == "refuse":
        if not isinstance(code, str) or not code.isalnum() or not 1 <= len(code) <= MAX_CODE:
            raise FaultError(f"refuse needs a code: 1 to {MAX_CODE} letters or digits")
        if message is not None and (not isinstance(message, str) or len(message) > MAX_MESSAGE):
            raise FaultError(f"message must be text of at most {MAX_MESSAGE} characters")
    elif code is not None or message is not None:
        raise FaultError("code and message go with kind refuse only")
    return Fault(
        provider,
        kind,
        endpoint,
        None if count is None else int(count),
        wait,
        None if status is None else int(status),
        code,
        message,
    )


class FaultBook:
    """The queued faults of one sandbox; thread-safe (the server is threaded)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, provider: str, endpoint: str) -> Fault | None:
        """The first matching fault, used up once its count reaches zero."""
        with self._lock:
            for fault in self._faults:
                if (fault.provider, fault.endpoint) != (provider, endpoint):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


# ---------------------------------------------------------------- applying faults
def install(
    bp: Blueprint,
    state: SandboxState,
    provider: str,
    endpoints: dict[str, str],
    refusal: Refusal | None = None,
) -> None:
    """Apply `state`'s faults to a simulator blueprint.

    `endpoints` maps the blueprint's view names to one of ENDPOINTS; `refusal` words the
    provider's refusal for `refuse`.
    """

    @bp.before_request
    def before() -> Response | None:
        view = (request.endpoint or "").rpartition(".")[2]
        endpoint = endpoints.get(view)
        if endpoint is None:
            return None
        fault = state.take_fault(provider, endpoint)
        if fault is None:
            return None
        if fault.kind in AFTER_ACTING:
            g.sandbox_fault = fault  # the simulator acts; after() spoils the answer
            return None
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return None
        if fault.kind == "refuse":
            if refusal is None:
                raise RuntimeError(f"the {provider} simulator words no refusal")
            return refusal(fault.code or "", fault.message)
        return _error_answer(fault)

    @bp.after_request
    def after(response: Response) -> Response:
        fault: Fault | None = g.pop("sandbox_fault", None)
        if fault is None:
            return response
        if fault.kind == "read_timeout":
            time.sleep(fault.delay)
        elif fault.kind == "truncated_json":
            body = response.get_data()
            response.set_data(body[: len(body) // 2])  # Content-Length follows the cut body
        elif fault.kind == "connection_reset":
            _drop_connection()
        return response


def _error_answer(fault: Fault) -> Response:
    if fault.kind == "http_500":
        return Response("Internal Server Error", fault.status or 500, mimetype="text/plain")
    if fault.kind == "html_error":
        return Response(HTML_ERROR_PAGE, fault.status or 502, mimetype="text/html")
    return Response(MALFORMED_JSON, 200, mimetype="application/json")  # malformed_json


def _drop_connection() -> None:
    """Close the client's connection before any byte of the answer is written.

    SO_LINGER 0 makes the final close a reset; the shutdown makes werkzeug's write of the
    answer fail with a broken pipe, which it treats as a dropped connection.
    """
    sock = request.environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        raise RuntimeError("connection_reset needs the werkzeug development server")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------- control endpoint
def control_blueprint(state: SandboxState) -> Blueprint:
    """`/_sandbox/faults`: queue, list and clear faults over HTTP (sandbox only)."""
    bp = Blueprint("sandbox_faults", __name__)

    @bp.post("/_sandbox/faults")
    def add_fault() -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(error="the body must be a JSON object"), 400
        unknown = set(data) - {
            "provider", "kind", "endpoint", "count", "delay", "status", "code", "message"
        }  # fmt: skip
        if unknown:
            return jsonify(error=f"unknown keys: {', '.join(sorted(unknown))}"), 400
        try:
            fault = state.inject_fault(
                str(data.get("provider", "")),
                str(data.get("kind", "")),
                endpoint=str(data.get("endpoint", "create")),
                count=data.get("count", 1),
                delay=data.get("delay"),
                status=data.get("status"),
                code=data.get("code"),
                message=data.get("message"),
            )
        except (FaultError, TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(fault.to_json()), 201

    @bp.get("/_sandbox/faults")
    def list_faults() -> Any:
        return jsonify(faults=[f.to_json() for f in state.faults.pending()])

    @bp.delete("/_sandbox/faults")
    def clear_faults() -> Any:
        state.faults.clear()
        return "", 204

    return bp


def register(app: Flask, state: SandboxState) -> None:
    app.register_blueprint(control_blueprint(state))


# ---------------------------------------------------------------- connect timeouts
class UnansweredListener:
    """A loopback port where `connect()` times out: the accept queue is full.

    Linux drops a SYN when the listener's accept queue is full, so the client never
    completes its handshake and its connect timeout fires, just as against a provider
    that is down behind a firewall. Nothing is ever accepted; close() frees the port.
    """

    FILLERS = 4  # backlog 0 queues one connection; more are harmless

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind((host, 0))
        self._server.listen(0)
        self.host = host
        self.port: int = self._server.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(self.FILLERS):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, self.port))  # completes in the kernel, never accepted
            self._fillers.append(filler)
        time.sleep(0.05)  # let the fillers' handshakes land in the queue

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        for sock in (*self._fillers, self._server):
            sock.close()

    def __enter__(self) -> UnansweredListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
