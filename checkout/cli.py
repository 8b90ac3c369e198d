"""Flask CLI commands: `flask --app wsgi <command>`."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask

from checkout.domain.states import CheckoutStatus
from checkout.extensions import catalog_of, settings_of
from checkout.logging_setup import mask_text
from checkout.sandbox import create_sandbox_app
from checkout.sandbox.from_settings import sandbox_config_from_settings
from checkout.sandbox.serving import make_sandbox_server
from checkout.services.admin import (
    OperatorRefused,
    create_operator,
    daily_summary,
    format_amounts,
    reset_password,
    review_reason_of,
    set_operator_active,
    store_label,
)
from checkout.services.checkouts import create_checkout, parse_new_checkout
from checkout.services.errors import NotFound
from checkout.services.receipts import run_receipts
from checkout.services.reconcile import reconcile_due
from checkout.services.refunds import send_refunds
from checkout.services.retention import purge_notify_bodies
from checkout.services.webhooks import resend_event
from checkout.services.webhooks import run_worker as deliver_webhooks
from checkout.store.db import db
from checkout.store.models import utcnow

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade_database(database_url: str) -> None:
    from alembic import command

    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), "head")


def create_demo_checkout(app: Flask, currency: str, amount: int, order_id: str) -> str:
    """Create a checkout for the sandbox demo store and return its URL."""

    settings = settings_of(app)
    store = next(iter(settings.stores.values()))
    with app.app_context():
        new = parse_new_checkout(
            {
                "order_id": order_id,
                "amount": amount,
                "currency": currency,
                "return_url": f"{settings.public_base_url}/demo/shop-return",
                "description": "Sandbox demo order",
            },
            store,
            catalog_of(app),
        )
        checkout, _created = create_checkout(
            db.session, store, new, timedelta(minutes=settings.checkout_ttl_minutes)
        )
        return f"{settings.public_base_url}/c/{checkout.id}"


def _read_password(from_stdin: bool) -> str:
    """A new password: one line of standard input (scripts), or asked twice at a terminal."""
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _set_operator_active(app: Flask, name: str, active: bool) -> None:

    with db.bound(app).session_factory() as session:
        try:
            operator = set_operator_active(session, name, active)
        except OperatorRefused as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"operator {operator.name} {'reactivated' if active else 'deactivated'}")


def register(app: Flask) -> None:
    @app.cli.command("db-upgrade")
    def db_upgrade() -> None:
        """Apply the Alembic migrations to DATABASE_URL."""
        upgrade_database(app.config["DATABASE_URL"])
        click.echo("database is up to date")

    @app.cli.command("sandbox")
    @click.option("--host", default=None, help="default: the host of sandbox_url")
    @click.option("--port", default=None, type=int, help="default: the port of sandbox_url")
    def sandbox(host: str | None, port: int | None) -> None:
        """Serve the provider simulators (run beside gunicorn in sandbox mode)."""

        settings = settings_of(app)
        url = urlsplit(settings.sandbox_url)
        server = make_sandbox_server(
            host or url.hostname or "127.0.0.1",
            port or url.port or 5001,
            create_sandbox_app(sandbox_config_from_settings(settings)),
        )
        click.echo(f"sandbox providers on {settings.sandbox_url}")
        server.serve_forever()

    @app.cli.command("create-checkout")
    @click.option("--currency", type=click.Choice(["KRW", "MXN"]), default="KRW")
    @click.option("--amount", type=int, default=15000, help="minor units (won, centavos)")
    @click.option("--order-id", default=None)
    def create_checkout_cmd(currency: str, amount: int, order_id: str | None) -> None:
        """Create a checkout for the first configured store and print its URL."""
        import secrets

        click.echo(
            create_demo_checkout(app, currency, amount, order_id or f"demo-{secrets.token_hex(4)}")
        )

    @app.cli.command("worker")
    @click.option("--once", is_flag=True, help="deliver what is due now, then exit")
    @click.option("--interval", type=float, default=1.0, show_default=True, help="seconds idle")
    @click.option("--batch", type=int, default=10, show_default=True)
    def worker(once: bool, interval: float, batch: int) -> None:
        """Deliver queued webhooks to the shops (run beside gunicorn)."""
        import signal
        import threading

        stop = threading.Event()
        # SIGTERM (systemd, docker stop) finishes the event in hand instead of dying mid-POST.
        in_main = threading.current_thread() is threading.main_thread()  # signal's rule
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
        click.echo("webhook worker started" + (" (once)" if once else ""))
        try:
            sent = run_worker(app, stop, once=once, interval=interval, batch=batch)
        except KeyboardInterrupt:
            click.echo("webhook worker stopped")
            return
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        click.echo(f"webhook worker stopped after {sent} event(s)")

    @app.cli.command("reconcile")
    @click.option("--once", is_flag=True, help="one pass over what is due, then exit")
    @click.option("--interval", type=float, default=15.0, show_default=True, help="seconds idle")
    def reconcile(once: bool, interval: float) -> None:
        """Query providers about silent attempts; expire overdue VAs and checkouts."""
        import signal
        import threading

        factory = db.bound(app).session_factory
        after, grace = settings_of(app).reconcile_after, settings_of(app).va_expiry_grace
        stop = threading.Event()
        in_main = threading.current_thread() is threading.main_thread()  # signal's rule
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
        try:
            while not stop.is_set():
                report = reconcile_due(factory, catalog_of(app), after=after, grace=grace)
                if once:
                    click.echo(
                        f"queried {report.queried} attempt(s), {report.changed} changed, "
                        f"{report.failed_queries} failed; "
                        f"expired {report.expired_checkouts} checkout(s)"
                    )
                    return
                stop.wait(max(interval, 0.1))
        except KeyboardInterrupt:
            pass
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        click.echo("reconcile stopped")

    @app.cli.command("webhooks-resend")
    @click.argument("event_id")
    def webhooks_resend(event_id: str) -> None:
        """Queue a webhook event (evt_...) to be sent again now."""

        with db.bound(app).session_factory() as session:
            try:
                event = resend_event(session, event_id)
            except NotFound as exc:
                raise click.ClickException(exc.message) from None
            click.echo(f"{event.public_id} ({event.type}, seq {event.seq}) queued again")

    @app.cli.command("purge-notifies")
    @click.option(
        "--days",
        type=click.IntRange(min=1),
        default=None,
        help="keep raw notifies this many days (default: notify_retention_days, 90)",
    )
    def purge_notifies(days: int | None) -> None:
        """Blank raw notify bodies and headers past retention; rows and verdicts stay."""

        keep = days if days is not None else app.config["NOTIFY_RETENTION_DAYS"]
        with db.bound(app).session_factory() as session:
            purged = purge_notify_bodies(session, timedelta(days=keep), utcnow())
        click.echo(f"purged {purged} notify message(s) older than {keep} day(s)")

    @app.cli.command("create-operator")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input")
    def create_operator_cmd(name: str, password_stdin: bool) -> None:
        """Create an operator of the console (/admin); asks for the password."""

        password = _read_password(password_stdin)
        with db.bound(app).session_factory() as session:
            try:
                operator = create_operator(session, name, password)
            except OperatorRefused as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"operator {operator.name} created")

    @app.cli.command("deactivate-operator")
    @click.argument("name")
    def deactivate_operator_cmd(name: str) -> None:
        """Stop an operator from logging in; their open sessions end at once."""
        _set_operator_active(app, name, False)

    @app.cli.command("reactivate-operator")
    @click.argument("name")
    def reactivate_operator_cmd(name: str) -> None:
        """Let a deactivated operator log in again."""
        _set_operator_active(app, name, True)

    @app.cli.command("reset-operator-password")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input")
    def reset_operator_password_cmd(name: str, password_stdin: bool) -> None:
        """Set an operator's password (asked twice, or read from standard input); their
        open sessions end."""

        password = _read_password(password_stdin)
        with db.bound(app).session_factory() as session:
            try:
                operator = reset_password(session, name, password)
            except OperatorRefused as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"password of operator {operator.name} reset")

    @app.cli.command("daily-summary")
    @click.option("--date", "day", default=None, help="YYYY-MM-DD (UTC); default: yesterday")
    def daily_summary_cmd(day: str | None) -> None:
        """Checkouts per store, attempts per store and provider, amounts; review queue."""
        from datetime import date

        try:
            when = date.fromisoformat(day) if day else utcnow().date() - timedelta(days=1)
        except ValueError:
            raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
        with db.bound(app).session_factory() as session:
            summary = daily_summary(session, when)
            review = [(c, review_reason_of(c)) for c in summary.review]
        echo = click.echo
        echo(f"summary for {when.isoformat()} (UTC); statuses as of now; amounts in currency units")
        echo("")
        echo("checkouts created that day, by store:")
        echo(
            "store\tcreated\tpaid\tpartially_paid\texpired\tcancelled\topen_or_pending\tdue\tpaid_amount"
        )
        for store, row in sorted(summary.checkouts.items()):
            n, s = row.statuses.get, CheckoutStatus
            echo(
                f"{store}\t{row.created}\t{n(s.PAID, 0)}\t{n(s.PARTIALLY_PAID, 0)}\t"
                f"{n(s.EXPIRED, 0)}\t{n(s.CANCELLED, 0)}\t{n(s.OPEN, 0) + n(s.PENDING, 0)}\t"
                f"{format_amounts(row.due)}\t{format_amounts(row.paid)}"
            )
        echo("")
        echo(
            "payment attempts started that day, by store and provider (each attempt counts at "
            "its own provider: a checkout that failed at one and was paid at another counts a "
            "failure for the first and a payment for the second):"
        )
        echo("store\tprovider\tattempts\tpaid\tfailed\texpired\tlive\tpaid_amount")
        for (store, provider), entry in sorted(summary.attempts.items()):
            echo(
                f"{store}\t{provider}\t{entry.attempts}\t{entry.paid}\t{entry.failed}\t"
                f"{entry.expired}\t{entry.live}\t{format_amounts(entry.amount_paid)}"
            )
        echo("")
        echo(f"waiting for review (checkouts of any day): {len(review)}")
        for checkout, reason in review:
            echo(
                f"  {checkout.id}\t{store_label(checkout.store_id, checkout.livemode)}\t"
                f"{checkout.order_id}\t"
                f"{checkout.status}\t{mask_text(reason)}"
            )


def run_worker(
    app: Flask,
    stop: threading.Event,
    *,
    once: bool = False,
    interval: float = 1.0,
    batch: int = 10,
) -> int:
    """The worker: `flask worker` and `python3 dev.py run` (a thread) both run this one loop.

    It delivers the shops' webhooks; each round it also asks providers about silent
    attempts and enforces expiry, then sends approved refunds and asks about unsettled
    payouts, then issues and cancels cash receipts. Returns the number of events sent.
    """
    factory = db.bound(app).session_factory
    settings = settings_of(app)
    after, grace = settings.reconcile_after, settings.va_expiry_grace
    return deliver_webhooks(
        factory,
        settings.stores,
        once=once,
        interval=interval,
        batch=batch,
        stop=stop,
        options=settings.webhook_delivery,
        each_round=lambda: _reconcile_then_refunds(
            lambda: reconcile_due(factory, catalog_of(app), after=after, grace=grace),
            lambda: send_refunds(
                factory, settings, payouts_for=catalog_of(app).payouts.__getitem__
            ),
            lambda: run_receipts(factory, settings, catalog_of(app)),
        ),
    )


def _reconcile_then_refunds(reconcile: Any, refunds: Any, receipts: Any = None) -> None:
    """One worker round's extra steps; a failing reconciliation never skips the refunds,
    nor a failing refunds step the cash receipts (issued after the refunds so a refund
    sent this round gets its cancel receipt in the same round)."""
    try:
        reconcile()
    finally:
        try:
            refunds()
        finally:
            if receipts is not None:
                receipts()
