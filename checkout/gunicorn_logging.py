"""gunicorn's own log lines (its error log and access log) as JSON, like the app's.

`gunicorn.conf.py` names `JsonLogger` as gunicorn's `logger_class` when
CHECKOUT_LOG_FORMAT=json: the master's and workers' lines ("Booting worker", a worker
timeout, each access line) then go through the app's JsonFormatter and masking, and an
access line carries the request id the app answered in `X-Request-Id`.
"""

from __future__ import annotations

from typing import Any

from gunicorn import glogging

from checkout.logging_setup import (
    JsonFormatter,
    MaskingFilter,
    current_request_id,
    install_masking,
    set_request_id,
)


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        install_masking()  # the master never imports the app: mask its records here too
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
                if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                    handler.addFilter(MaskingFilter())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        # The app has already cleared its request id when gunicorn writes the access line:
        # take the one it answered, so the line joins the request's other lines.
        request_id = _header(resp, "x-request-id")
        previous = current_request_id()
        set_request_id(request_id)
        try:
            super().access(resp, req, environ, request_time)
        finally:
            set_request_id(previous)


def _header(resp: Any, name: str) -> str | None:
    for key, value in getattr(resp, "headers", None) or ():
        if str(key).lower() == name:
            return str(value)[:64]
    return None


__all__ = ["JsonLogger"]
