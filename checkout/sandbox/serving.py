"""Serving the sandbox: a threaded werkzeug server that keeps underscore headers.

TeemoPay sends `app_code`; werkzeug (and gunicorn by default) drop header names
with underscores to avoid spoofing behind proxies. The simulator must see them
as the provider does, so this handler passes them through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class UnderscoreHeadersHandler(WSGIRequestHandler):
    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        for key, value in self.headers.items():
            if "_" in key:
                environ.setdefault("HTTP_" + key.upper().replace("-", "_"), value)
        return environ


def make_sandbox_server(
    host: str, port: int, app: Callable[..., Any], *, threaded: bool = True
) -> BaseWSGIServer:
    server = make_server(
        host, port, app, threaded=threaded, request_handler=UnderscoreHeadersHandler
    )
    # A provider takes hundreds of connections at once; werkzeug's backlog of 128 would drop
    # some (the caller then waits a second for the SYN to be sent again).
    server.socket.listen(1024)
    return server


def serve_in_thread(server: BaseWSGIServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    return thread
