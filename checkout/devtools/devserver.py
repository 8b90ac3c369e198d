"""`python -m checkout.devtools.devserver`: the whole loop on SQLite, one command.

Migrates the database, then serves: the provider simulators (sandbox_url), the worker
(a thread running `flask worker`'s own loop, cli.run_worker: delivers the shop's webhooks,
reconciles silent attempts, sends approved refunds), the demo shop that receives and
verifies those webhooks and shows them live (and frames a checkout at /embed, from an
origin of its own), and the app on public_base_url (each server threaded, so the app
calling a provider never waits on itself). Prints checkout URLs and the commands to go on,
all on the ports of this run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
from urllib.parse import urlsplit

from checkout import create_app
from checkout.cli import create_demo_checkout, run_worker, upgrade_database
from checkout.devtools.demo_shop import create_demo_shop_app
from checkout.extensions import settings_of
from checkout.logging_setup import configure_logging
from checkout.sandbox import create_sandbox_app
from checkout.sandbox.from_settings import sandbox_config_from_settings
from checkout.sandbox.serving import make_sandbox_server, serve_in_thread

DEFAULT_PORT = 5000
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEMO_TEST_KEY = "sk_test_demo"  # checkout/sandbox.toml's demo store


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py run",
        description=(
            "The checkout in sandbox mode on SQLite, with every provider simulated, the "
            "webhook worker and a demo shop receiving the webhooks."
        ),
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=(
            f"the app's port (default {DEFAULT_PORT}, or public_base_url's); the provider "
            "sandboxes take the next port, the demo shop the one after"
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to serve on (default 127.0.0.1)"
    )
    return parser.parse_args(argv)


def apply_port(port: int, host: str) -> None:
    """`--port`: the app, the sandboxes and the demo shop on three ports from `port`; the
    demo shop's origin is one the demo store allows (its embed page frames the checkout)."""
    os.environ["CHECKOUT_PUBLIC_BASE_URL"] = f"http://{host}:{port}"
    os.environ["CHECKOUT_SANDBOX_URL"] = f"http://{host}:{port + 1}"
    os.environ["CHECKOUT__STORES__DEMO__WEBHOOK_URL"] = f"http://{host}:{port + 2}/webhooks"
    os.environ["CHECKOUT__STORES__DEMO__ALLOWED_ORIGINS"] = f'["self", "http://{host}:{port + 2}"]'


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.port is not None:
        apply_port(args.port, args.host)

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
    shop_url = start_demo_shop(settings)
    stop = threading.Event()
    # The very loop `flask worker` runs (webhooks, reconciliation, refunds, receipts), in a thread.
    threading.Thread(target=run_worker, args=(app, stop), daemon=True).start()

    tag = secrets.token_hex(3)
    krw = create_demo_checkout(app, "KRW", 15000, f"demo-krw-{tag}")
    mxn = create_demo_checkout(app, "MXN", 25000, f"demo-mxn-{tag}")
    public = urlsplit(settings.public_base_url)
    print(banner(settings.public_base_url, settings.sandbox_url, shop_url, krw, mxn), flush=True)
    try:
        app.run(host=public.hostname, port=public.port or 5000, threaded=True, use_reloader=False)
    finally:
        stop.set()
    return 0


def banner(base: str, sandbox_url: str, shop_url: str | None, krw: str, mxn: str) -> str:
    """What `run` prints: every URL and command carries the ports this run serves on."""
    # A second shell reads the configuration afresh: the base URL goes with the command.
    env = "" if base == DEFAULT_BASE_URL else f"CHECKOUT_PUBLIC_BASE_URL={base} "
    if os.environ.get("CHECKOUT_INSTANCE_PATH"):
        env += f"CHECKOUT_INSTANCE_PATH={os.environ['CHECKOUT_INSTANCE_PATH']} "
    shop = shop_url or "(no webhook_url on the first store)"
    embed = f"{shop_url}embed" if shop_url else "(no demo shop)"
    return (
        "\n  Checkout is running in sandbox mode (no real money).\n"
        f"  Korean checkout (15,000 KRW): {krw}\n"
        f"  Mexican checkout (250.00 MXN): {mxn}\n"
        f"  Provider sandboxes:           {sandbox_url}/\n"
        f"  Demo shop (webhooks, live):   {shop}\n"
        f"  Demo shop page (embedded):    {embed}\n"
        f"  Operator console:             {base}/admin\n"
        "  Worker:                       running in this process (webhooks, reconciliation,"
        " refunds, receipts)\n"
        f"  Shop API examples:  BASE={base} API_KEY=sk_test_demo\n"
        f"  Another checkout:   {env}.venv/bin/flask --app wsgi create-checkout --currency KRW\n"
        f"  An operator:        {env}.venv/bin/flask --app wsgi create-operator alice\n"
    )


def start_demo_shop(settings: object) -> str | None:
    """Serve the demo shop where the first store's webhook_url points, if on this machine."""

    stores = getattr(settings, "stores", {})
    store = next(iter(stores.values()), None)
    url = urlsplit(store.webhook_url) if store is not None and store.webhook_url else None
    if url is None or url.hostname not in ("127.0.0.1", "localhost") or not store.webhook_secret:
        return None
    # The embed page creates its checkouts with the store's test key, as a shop's server would.
    shop_app = create_demo_shop_app(
        store.webhook_secret, getattr(settings, "public_base_url", None), DEMO_TEST_KEY
    )
    server = make_sandbox_server(url.hostname, url.port or 80, shop_app)
    serve_in_thread(server)
    return f"{url.scheme}://{url.netloc}/"


if __name__ == "__main__":
    sys.exit(main())
