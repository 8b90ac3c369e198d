"""The shared provider transport, against a real loopback server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from checkout.providers.errors import ProviderError, ProviderTimeout
from checkout.providers.http import ProviderHttp, TransportMessages, decode_json
from tests.support.live import serve

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 0.3


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    app = Flask("fake_provider")

    @app.post("/echo")
    def echo() -> Response:
        return Response(request.get_data(), content_type=request.content_type or "")

    @app.get("/amount")
    def amount() -> Response:
        return Response('{"amount": 1000.50}', mimetype="application/json")

    @app.get("/slow")
    def slow() -> Response:
        time.sleep(1.0)
        return Response("{}", mimetype="application/json")

    @app.get("/truncated")
    def truncated() -> Response:
        return Response('{"code": "0000", "data": {"trade', mimetype="application/json")

    @app.get("/html")
    def html() -> Response:
        return Response("<html><body>Bad gateway</body></html>", 502, mimetype="text/html")

    server = serve(app)
    try:
        yield server.url
    finally:
        server.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_http(base_url: str, **options: Any) -> ProviderHttp:
    return ProviderHttp(
        "paypro_kr",
        base_url,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        **options,
    )


def test_json_body_is_sent_compact_utf8_and_decimals_come_back_exact(server_url: str) -> None:
    http = make_http(server_url + "/")  # a trailing slash on the base URL is dropped
    resp = http.request("POST", "/echo", json_body={"name": "홍길동", "amount": "1000"})
    assert resp.status_code == 200
    assert resp.content == '{"name":"홍길동","amount":"1000"}'.encode()
    assert resp.headers["Content-Type"] == "application/json"
    assert decode_json(http.request("GET", "/amount")) == {"amount": Decimal("1000.50")}


def test_timeout_is_a_retryable_provider_timeout(server_url: str) -> None:
    with pytest.raises(ProviderTimeout) as info:
        make_http(server_url).request("GET", "/slow")
    assert info.value.retryable
    assert (info.value.provider, info.value.code) == ("paypro_kr", "timeout")
    assert info.value.message == "GET /slow timed out"
    assert isinstance(info.value.__cause__, requests.Timeout)


def test_closed_port_is_a_retryable_provider_error() -> None:
    http = make_http(
        f"http://127.0.0.1:{closed_port()}",
        messages=TransportMessages(unreachable="cannot reach {path} ({error})"),
    )
    with pytest.raises(ProviderError) as info:
        http.request("POST", "/pay", json_body={"a": 1})
    assert info.value.retryable
    assert not isinstance(info.value, ProviderTimeout)
    assert (info.value.provider, info.value.code) == ("paypro_kr", "connection_error")
    assert info.value.message == "cannot reach /pay (ConnectionError)"
    assert info.value.http_status is None


def test_truncated_or_html_body_does_not_decode(server_url: str) -> None:
    http = make_http(server_url)
    truncated = http.request("GET", "/truncated")
    assert truncated.status_code == 200  # the transport returns any answer it got
    assert decode_json(truncated) is None
    with pytest.raises(ProviderError) as info:
        http.read_json(truncated, code="invalid_response", message="not JSON")
    assert info.value.retryable
    assert (info.value.code, info.value.http_status) == ("invalid_response", 200)
    html = http.request("GET", "/html")
    assert decode_json(html) is None
    error = http.status_error(html, "HTTP 502")
    assert (error.code, error.http_status, error.retryable) == ("http_502", 502, True)


class RecordingSession(requests.Session):
    """A real session that remembers the keyword arguments of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return super().request(method, url, *args, **kwargs)


def test_every_call_passes_the_timeouts(server_url: str) -> None:
    # A call without a timeout can hang a worker forever on a silent provider.
    session = RecordingSession()
    http = make_http(server_url, session=session)
    http.request("POST", "/echo", json_body={"a": 1})
    http.request("GET", "/amount", headers={"Authorization": "token"})
    http.request("GET", "/truncated")
    with pytest.raises(ProviderTimeout):
        http.request("GET", "/slow")
    assert len(session.calls) == 4
    assert all(call["timeout"] == (CONNECT_TIMEOUT, READ_TIMEOUT) for call in session.calls)


def test_the_environment_is_read_once_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy and CA bundle come from the environment when the client is built; no_proxy
    exempts a host; later changes to the environment do not leak into calls."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "sandbox.local")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/provider-ca.pem")
    proxied = ProviderHttp("paypro_kr", "https://api.paypro.example/v1", connect_timeout=1,
                           read_timeout=1)  # fmt: skip
    exempt = ProviderHttp("diamond", "https://sandbox.local/api", connect_timeout=1,
                          read_timeout=1)  # fmt: skip
    assert proxied.session.proxies.get("https") == "http://proxy.internal:3128"
    assert "https" not in exempt.session.proxies
    assert proxied.session.verify == "/etc/ssl/provider-ca.pem"
    assert proxied.session.trust_env is False  # nothing re-read per request


def test_concurrent_calls_reuse_their_connections() -> None:
    """More calls at once than requests' default pool (10) to a keep-alive server: the
    connections are kept, so a second round of as many calls opens none (the server sees
    the same client ports). With the default pool, ten of them would be new."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from checkout.providers.http import POOL_MAXSIZE

    calls = 20
    ports: set[int] = set()
    barrier = threading.Barrier(calls)

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # werkzeug's server always closes; this one keeps

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            ports.add(self.client_address[1])
            barrier.wait(10)  # all calls in flight at once
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/v1"
        http = ProviderHttp("paypro_kr", base, connect_timeout=2, read_timeout=10)

        def call() -> None:
            http.request("POST", "/ping", json_body={})

        for _round in range(2):
            threads = [threading.Thread(target=call) for _ in range(calls)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
        assert len(ports) == calls <= POOL_MAXSIZE
    finally:
        server.shutdown()
        server.server_close()
