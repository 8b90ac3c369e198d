"""The Popbill issuer: transport, token cache and signing around the pure mapping.

Every operation (issue, cancel, query) has one total deadline covering the token request
(when one is due) and the call itself: the socket timeouts are set to what is left, and the
body is read against the same clock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from urllib3.util import Timeout

from checkout.domain.receipts import CancelPlan, IssuePlan
from checkout.providers.http import PROVIDER_BODY_LIMIT, connection_never_made, parse_json
from checkout.receipts.errors import (
    IssuerAuthError,
    IssuerError,
    IssuerTimeout,
    MgtKeyInUse,
    ReceiptNotFound,
    UnexpectedAnswer,
)
from checkout.receipts.popbill import mapping, signing
from checkout.receipts.popbill.mapping import (
    IssueResult,
    PopbillSettings,
    ReceiptDetails,
    ReceiptInfo,
    Token,
)

log = logging.getLogger(__name__)

DEFAULT_DEADLINE = 10.0  # seconds for one operation, token included
DEFAULT_CONNECT_TIMEOUT = 3.0
READ_CHUNK = 16 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


class TokenCache:
    """Tokens per (auth host, mode, link id, member): one serves every call until it is due
    for refresh (mapping.refresh_due). Thread-safe; tokens live in this process only."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str, str], Token] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(settings: PopbillSettings) -> tuple[str, str, str, str]:
        return (settings.auth_base, settings.service_id, settings.link_id, settings.corp_num)

    def get(self, settings: PopbillSettings, now: datetime) -> Token | None:
        with self._lock:
            token = self._tokens.get(self.key(settings))
        return None if token is None or mapping.refresh_due(token, now) else token

    def put(self, settings: PopbillSettings, token: Token) -> None:
        with self._lock:
            self._tokens[self.key(settings)] = token

    def drop(self, settings: PopbillSettings) -> None:
        with self._lock:
            self._tokens.pop(self.key(settings), None)


SHARED_TOKENS = TokenCache()


@dataclass
class _Deadline:
    at: float  # time.monotonic()

    def left(self) -> float:
        return self.at - time.monotonic()


class PopbillIssuer:
    """One store's Popbill member. Raises IssuerError subclasses (checkout/receipts/errors)."""

    def __init__(
        self,
        settings: PopbillSettings,
        *,
        deadline: float = DEFAULT_DEADLINE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        tokens: TokenCache | None = None,
        clock: Callable[[], datetime] = utcnow,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.tokens = tokens if tokens is not None else SHARED_TOKENS
        self.clock = clock
        self.session = session or requests.Session()
        self.session.trust_env = False  # no netrc, no proxies from the environment per call

    # ------------------------------------------------------------ operations
    def issue(self, plan: IssuePlan, details: ReceiptDetails) -> IssueResult:
        """RegistIssue. MgtKeyInUse: a receipt under this key exists (query it); IssuerTimeout:
        the outcome is unknown (query it before anything else)."""
        body = mapping.issue_body(self.settings, plan, details)
        payload = self._api("POST", mapping.CASHBILL_PATH, body, override="ISSUE")
        result = mapping.issue_result(self.name, payload)
        log.info(
            "popbill issue issuer=%s mgt_key=%s identity=%s total=%s confirm=%s",
            self.name,
            plan.mgt_key,
            plan.masked_identity,
            plan.amounts.total,
            result.confirm_num,
        )
        return result

    def cancel(self, plan: CancelPlan, memo: str | None = None) -> IssueResult:
        """RevokeRegistIssue. OriginalNotFiled (retryable): the original is not at the NTS
        yet; try again once a query shows it filed."""
        body = mapping.cancel_body(plan, memo)
        payload = self._api("POST", mapping.CASHBILL_PATH, body, override="REVOKEISSUE")
        result = mapping.issue_result(self.name, payload)
        log.info(
            "popbill cancel issuer=%s mgt_key=%s partial=%s total=%s confirm=%s",
            self.name,
            plan.mgt_key,
            plan.partial,
            plan.amounts.total,
            result.confirm_num,
        )
        return result

    def query(self, mgt_key: str) -> ReceiptInfo:
        """GetInfo; ReceiptNotFound when nothing was ever issued under `mgt_key`."""
        payload = self._api("GET", mapping.mgt_key_path(mgt_key), None)
        return mapping.receipt_info(self.name, payload)

    def find(self, mgt_key: str) -> ReceiptInfo | None:
        try:
            return self.query(mgt_key)
        except ReceiptNotFound:
            return None

    def issue_once(self, plan: IssuePlan, details: ReceiptDetails) -> ReceiptInfo:
        """Issue unless a receipt exists under the plan's key: the worker's call after a crash
        or an unknown outcome can never make a second receipt. Query, issue when absent,
        and read the receipt back (a refused key means an earlier try got through)."""
        found = self.find(plan.mgt_key)
        if found is None:
            with contextlib.suppress(MgtKeyInUse):  # a concurrent or earlier try issued it
                self.issue(plan, details)
            found = self.query(plan.mgt_key)
        if not mapping.is_same_receipt(found, plan.amounts.total):
            raise UnexpectedAnswer(
                self.name,
                "foreign_receipt",
                f"the receipt under {plan.mgt_key} is for {found.total}, not ours",
            )
        return found

    # ------------------------------------------------------------ token
    def _token(self, deadline: _Deadline) -> Token:
        cached = self.tokens.get(self.settings, self.clock())
        if cached is not None:
            return cached
        s = self.settings
        body = mapping.token_body(s.corp_num)
        date = signing.lh_date(self.clock())
        forwarded = mapping.forwarded_value(s.ip_restrict)
        signature = signing.sign(s.secret_key, body, date, forwarded, s.service_id)
        headers = {
            "x-lh-date": date,
            "x-lh-version": signing.API_VERSION,
            "Authorization": signing.authorization(s.link_id, signature),
            "Content-Type": mapping.AUTH_CONTENT_TYPE,
        }
        if forwarded is not None:
            headers["x-lh-forwarded"] = forwarded
        url = s.auth_base + signing.token_path(s.service_id)
        status, payload = self._send("POST", url, body, headers, deadline)
        if status != 200:
            raise mapping.error_for(self.name, status, payload)
        token = mapping.parse_token(self.name, payload)
        self.tokens.put(s, token)
        return token

    # ------------------------------------------------------------ transport
    def _api(
        self, method: str, path: str, body: Mapping[str, object] | None, *, override: str = ""
    ) -> Any:
        deadline = _Deadline(time.monotonic() + self.deadline)
        for attempt in (1, 2):
            token = self._token(deadline)
            headers = {
                "Authorization": f"Bearer {token.session_token}",
                "x-pb-version": "1.0",
                "Accept-Encoding": "gzip,deflate",
            }
            data: bytes | None = None
            if body is not None:
                headers["Content-Type"] = mapping.JSON_CONTENT_TYPE
                data = mapping_json(body)
            if override:
                headers["X-HTTP-Method-Override"] = override
            status, payload = self._send(
                method, self.settings.api_base + path, data, headers, deadline
            )
            if status == 200:
                return payload
            error = mapping.error_for(self.name, status, payload)
            if isinstance(error, IssuerAuthError):
                self.tokens.drop(self.settings)  # a refused token is never sent again
                if error.retryable and attempt == 1:
                    continue  # an unreadable token: one more try with a fresh one
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str],
        deadline: _Deadline,
    ) -> tuple[int, Any]:
        """One HTTP exchange within what is left of the deadline: (status, parsed JSON)."""
        left = deadline.left()
        if left <= 0:
            raise IssuerTimeout(self.name, "timeout", "Popbill deadline passed", retryable=True)
        timeout = Timeout(connect=min(self.connect_timeout, left), read=left, total=left)
        path = url.split("://", 1)[-1].partition("/")[2]
        try:
            resp = self.session.request(
                method,
                url,
                data=data,
                headers={"Accept": "application/json", **headers},
                timeout=timeout,
                stream=True,
            )
            try:
                content = self._read(resp, deadline)
            finally:
                resp.close()
        except requests.ConnectTimeout as exc:
            raise IssuerError(
                self.name,
                "connection_error",
                f"Popbill unreachable ({method} /{path})",
                retryable=True,
                not_sent=True,
            ) from exc
        except (requests.Timeout, TimeoutError) as exc:
            # The request may have been taken: the caller must query before trying again.
            raise IssuerTimeout(
                self.name, "timeout", f"Popbill did not answer in time ({method} /{path})",
                retryable=True,
            ) from exc  # fmt: skip
        except requests.ConnectionError as exc:
            raise IssuerError(
                self.name,
                "connection_error",
                f"Popbill connection failed ({method} /{path})",
                retryable=True,
                not_sent=connection_never_made(exc),
            ) from exc
        except requests.RequestException as exc:
            raise IssuerError(
                self.name, "request_error", type(exc).__name__, retryable=True
            ) from exc
        try:
            payload = parse_json(content)
        except ValueError:
            if resp.status_code == 200:
                raise UnexpectedAnswer(
                    self.name, "invalid_response", "Popbill answered non-JSON", retryable=True,
                    http_status=200,
                ) from None  # fmt: skip
            payload = None
        return resp.status_code, payload

    @staticmethod
    def _read(resp: requests.Response, deadline: _Deadline) -> bytes:
        """The body, read against the deadline and bounded in size."""
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_content(READ_CHUNK):
            size += len(chunk)
            if size > PROVIDER_BODY_LIMIT:
                raise requests.RequestException("answer too large")
            if deadline.left() <= 0:
                raise TimeoutError("deadline passed while reading the answer")
            chunks.append(chunk)
        return b"".join(chunks)


def mapping_json(body: Mapping[str, object]) -> bytes:
    """UTF-8 JSON of a request body (Korean text as is, as the SDKs send it)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
