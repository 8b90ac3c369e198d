"""`python -m checkout.devserver`: the app on SQLite with the sandboxes, one command.

Migrates the database, serves the provider simulators on sandbox_url and the app
on public_base_url (each its own threaded server, so the app calling a provider
never waits on itself), and prints checkout URLs to open.
"""

from __future__ import annotations

import secrets
import sys
from urllib.parse import urlsplit

from checkout import create_app
from checkout.cli import create_demo_checkout, upgrade_database
from checkout.extensions import settings_of
from checkout.logging_setup import configure_logging
from checkout.sandbox import create_sandbox_app
from checkout.sandbox.from_settings import sandbox_config_from_settings
from checkout.sandbox.serving import make_sandbox_server, serve_in_thread


def main() -> int:
    configure_logging()
    app = create_app()
    settings = settings_of(app)
    if not settings.sandbox:
        print("devserver runs sandbox mode only; use gunicorn for a live setup", file=sys.stderr)
        return 2
    upgrade_database(settings.database_url)

    sandbox_url = urlsplit(settings.sandbox_url)
    sandbox_server = make_sandbox_server(
        sandbox_url.hostname or "127.0.0.1",
        sandbox_url.port or 5001,
        create_sandbox_app(sandbox_config_from_settings(settings)),
    )
    serve_in_thread(sandbox_server)

    tag = secrets.token_hex(3)
    krw = create_demo_checkout(app, "KRW", 15000, f"demo-krw-{tag}")
    mxn = create_demo_checkout(app, "MXN", 25000, f"demo-mxn-{tag}")
    public = urlsplit(settings.public_base_url)
    print(
        "\n  Checkout is running in sandbox mode (no real money).\n"
        f"  Korean checkout (15,000 KRW): {krw}\n"
        f"  Mexican checkout (250.00 MXN): {mxn}\n"
        f"  Provider sandboxes:           {settings.sandbox_url}\n"
        "  Another checkout:  .venv/bin/flask --app wsgi create-checkout --currency KRW\n",
        flush=True,
    )
    app.run(host=public.hostname, port=public.port or 5000, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
