"""Real HTTP servers on 127.0.0.1 for tests: the app, the sandboxes, receivers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer

from checkout.sandbox.serving import make_sandbox_server


@dataclass
class LiveServer:
    url: str  # e.g. "http://127.0.0.1:54321", no trailing slash
    server: BaseWSGIServer
    thread: threading.Thread

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class LateBoundApp:
    """A WSGI app whose target is set after the server knows its port."""

    def __init__(self) -> None:
        self.app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None, "LateBoundApp served before its app was set"
        return self.app(environ, start_response)


def serve(
    app: Callable[..., Any], host: str = "127.0.0.1", url_host: str | None = None
) -> LiveServer:
    """Serve a WSGI app on a free loopback port in a daemon thread.

    `url_host` names the server in its URL instead of `host` (e.g. "localhost" for a server
    on 127.0.0.1, so that browser tests get two sites on one machine).
    Underscore headers (TeemoPay's `app_code`) pass through, as on the real network.
    """
    server = make_sandbox_server(host, 0, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return LiveServer(f"http://{url_host or host}:{server.server_port}", server, thread)


def free_port() -> int:
    """A loopback port free at this moment (a server started right after takes it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
