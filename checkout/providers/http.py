"""The HTTP transport every provider client shares.

One place holds the session, the timeouts and the mapping of `requests` failures
to ProviderError, so no client can forget a timeout or leak a `requests` exception
into the services. What an answer *means* (which statuses may be retried, whether
a JSON body on an error status is a business refusal) stays with each client.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import requests

from checkout import jsonsafe
from checkout.providers.base import ProviderConfig
from checkout.providers.errors import ProviderError, ProviderTimeout

JSON = "application/json"
log = logging.getLogger(__name__)

# Told about every call once it ends: (provider instance, seconds, outcome), where outcome is
# "ok" (a 2xx answer), "http_3xx"/"http_4xx"/"http_5xx" (another answer), "timeout" (no
# answer in time: the provider may have acted), "connect_timeout" (no connection),
# "connection_error" (refused, reset, DNS, TLS) or "error" (anything else).
# The app adds one that counts into its metrics (checkout/metrics.py).
CallObserver = Callable[[str, float, str], None]
_call_observers: list[CallObserver] = []


def add_call_observer(observer: CallObserver) -> None:
    """Tell `observer` about every provider call from now on (idempotent, process-wide)."""
    if observer not in _call_observers:
        _call_observers.append(observer)


def _observe_call(provider: str, seconds: float, outcome: str) -> None:
    for observer in _call_observers:
        try:
            observer(provider, seconds, outcome)
        except Exception:  # counting must never fail a payment
            log.warning("provider call observer failed", exc_info=True)


@dataclass(frozen=True)
class Exchange:
    """One provider call as it went over the wire (for the operator console): the body we
    sent, what came back (None: no answer), how it ended and how long it took."""

    provider: str
    method: str
    path: str
    request_body: bytes | None
    status: int | None
    response_body: bytes | None
    outcome: str
    seconds: float


_exchanges: ContextVar[list[Exchange] | None] = ContextVar("provider_exchanges", default=None)


@contextmanager
def capture_exchanges() -> Iterator[list[Exchange]]:
    """Collect every provider call made in this block (this thread or task only)."""
    captured: list[Exchange] = []
    token = _exchanges.set(captured)
    try:
        yield captured
    finally:
        _exchanges.reset(token)


def answer_outcome(status: int) -> str:
    return "ok" if 200 <= status < 300 else f"http_{status // 100}xx"


def compact_json(body: Any) -> bytes:
    """UTF-8 JSON without spaces: what PayPro and Diamond Pay receive."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


PROVIDER_BODY_LIMIT = 1024 * 1024  # a provider answer larger than this is no answer of theirs


def parse_json(body: bytes | str) -> Any:
    """Decode a provider body; Decimal keeps fractional numbers' exact (signed) text.

    Raises ValueError (jsonsafe.UnsafeJson) when the body is not JSON, nests too deep or
    holds a number no provider sends (checkout/jsonsafe.py).
    """
    return jsonsafe.loads(body, max_bytes=PROVIDER_BODY_LIMIT)


def decode_json(resp: requests.Response) -> Any | None:
    """The parsed body, or None for HTML pages, truncated bodies and bad encodings."""
    try:
        return parse_json(resp.content)
    except ValueError:
        return None


@dataclass(frozen=True)
class TransportMessages:
    """How a provider words its transport failures, so each keeps its own errors.

    Messages are format strings with `{method}`, `{path}` and `{error}` (the name
    of the `requests` exception).
    """

    timeout: str = "{method} {path} timed out"
    unreachable: str = "{method} {path}: {error}"
    other: str = "{method} {path}: {error}"
    unreachable_code: str = "connection_error"
    other_code: str = "request_error"


POOL_MAXSIZE = 128  # idle keep-alive connections kept per provider instance and process


def _session_for(base_url: str) -> requests.Session:
    """A session that reads the environment (proxies, CA bundle) once, here, not per call.

    requests would otherwise look up proxy variables, no_proxy and ~/.netrc on every request:
    a tenth of a create-payment's CPU. The proxy for this provider's host and a
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE are honoured as before; providers authenticate by
    signature, never by netrc.
    """
    session = requests.Session()
    # Keep as many connections as a gunicorn worker has threads (gunicorn.conf.py): with
    # requests' default of 10, every call beyond ten at once opened and dropped a connection.
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_MAXSIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


def connection_never_made(exc: requests.ConnectionError) -> bool:
    """True when no connection was ever made (refused, unreachable, name not resolved), so
    no byte of the request left. A reset or a dropped connection after sending is not: the
    provider may have acted on what it got."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


class ProviderHttp:
    """A provider instance's HTTP client: one session, its base URL and timeouts."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        messages: TransportMessages | None = None,
        json_content_type: str = JSON,
        encode_json: Callable[[Any], bytes] = compact_json,
        session: requests.Session | None = None,
    ) -> None:
        self.provider = provider  # ProviderError.provider: the instance name
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.messages = messages or TransportMessages()
        self.json_content_type = json_content_type
        self.encode_json = encode_json
        # One session per instance: connections are reused, never shared across providers.
        self.session = session or _session_for(self.base_url)

    @classmethod
    def for_config(cls, config: ProviderConfig, **options: Any) -> ProviderHttp:
        """The transport for a configured instance, named by its instance name."""
        return cls(
            config.name,
            config.base_url,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            **options,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one request; any answer is returned, transport failures raise.

        Raises ProviderTimeout when the answer did not come in time (the provider may
        have acted), and a retryable ProviderError when the provider could not be reached
        (connect timeout, refused) or the request failed otherwise.
        """
        send_headers = {"Accept": JSON, **(headers or {})}
        data: bytes | None = None
        if json_body is not None:
            send_headers["Content-Type"] = self.json_content_type
            data = self.encode_json(json_body)
        started = time.perf_counter()
        outcome = "error"
        resp: requests.Response | None = None
        try:
            resp = self.session.request(
                method,
                self.base_url + path,
                data=data,
                headers=send_headers,
                timeout=self.timeout,
            )
            outcome = answer_outcome(resp.status_code)
            return resp
        except requests.ConnectTimeout as exc:
            outcome = "connect_timeout"
            # No connection, so no request reached the provider: a plain failure, safe to
            # retry, not an unknown outcome. (Checked before Timeout and ConnectionError,
            # which it also is.)
            raise ProviderError(
                self.provider,
                self.messages.unreachable_code,
                self._message(self.messages.unreachable, method, path, exc),
                retryable=True,
                not_sent=True,
            ) from exc
        except requests.Timeout as exc:
            outcome = "timeout"
            # The request may have been taken: the services treat the outcome as unknown.
            raise ProviderTimeout(
                self.provider,
                "timeout",
                self._message(self.messages.timeout, method, path, exc),
                retryable=True,
            ) from exc
        except requests.ConnectionError as exc:  # refused, reset, DNS, TLS
            outcome = "connection_error"
            raise ProviderError(
                self.provider,
                self.messages.unreachable_code,
                self._message(self.messages.unreachable, method, path, exc),
                retryable=True,
                not_sent=connection_never_made(exc),
            ) from exc
        except requests.RequestException as exc:
            raise ProviderError(
                self.provider,
                self.messages.other_code,
                self._message(self.messages.other, method, path, exc),
                retryable=True,
            ) from exc
        finally:
            seconds = time.perf_counter() - started
            _observe_call(self.provider, seconds, outcome)
            captured = _exchanges.get()
            if captured is not None:
                captured.append(
                    Exchange(
                        self.provider,
                        method,
                        path,
                        data,
                        resp.status_code if resp is not None else None,
                        resp.content if resp is not None else None,
                        outcome,
                        seconds,
                    )
                )

    def read_json(self, resp: requests.Response, *, code: str, message: str) -> Any:
        """The parsed body, or a retryable ProviderError(code, message) if it is not JSON."""
        try:
            return parse_json(resp.content)
        except ValueError as exc:  # HTML error pages, truncated bodies, bad encodings
            raise self.error(resp, code, message) from exc

    def error(
        self, resp: requests.Response, code: str, message: str, *, retryable: bool = True
    ) -> ProviderError:
        """A ProviderError about `resp`; retryable unless the client knows better."""
        return ProviderError(
            self.provider, code, message, retryable=retryable, http_status=resp.status_code
        )

    def status_error(
        self, resp: requests.Response, message: str, *, retryable: bool = True
    ) -> ProviderError:
        """`http_<status>` for an HTTP status the client will not read as an answer."""
        return self.error(resp, f"http_{resp.status_code}", message, retryable=retryable)

    @staticmethod
    def _message(template: str, method: str, path: str, exc: Exception) -> str:
        return template.format(method=method, path=path, error=type(exc).__name__)
