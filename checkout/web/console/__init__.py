"""The operator console (/admin) and the health endpoints (/healthz, /readyz, /metrics).

One blueprint, `admin` (common.py), with one module per feature: auth (login, logout, the
operator check on every request), checkouts (search, a checkout's page), actions (query,
resend, review, cancel), refunds, queue (what waits for an operator), notifies (the
inbox), providers, and filters (the templates' masking filters); their queries and use
cases are in services/admin/. health.py is the `ops` blueprint.

Every admin page needs a logged-in operator; every form and action is a POST checked with
Flask-WTF's session CSRF token (the app leaves CSRF checking to each form). Personal data
(payer e-mail, mobile, name) is only ever shown masked.

May import what the web floor may (checkout/web/__init__.py).
"""

from __future__ import annotations

from flask import Flask

# Imported for their routes, filters and hooks, which they add to `bp`.
from checkout.web.console import (  # noqa: F401
    actions,
    auth,
    checkouts,
    filters,
    notifies,
    providers,
    queue,
    receipts,
    refunds,
)
from checkout.web.console.common import SESSION_LIFETIME, bp
from checkout.web.console.health import ops


def init_app(app: Flask) -> None:
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    app.register_blueprint(bp)
    app.register_blueprint(ops)


__all__ = ["bp", "init_app", "ops"]
