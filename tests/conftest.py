"""Fixtures shared by every test: keys, a running sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from checkout.sandbox.core import SandboxState, create_sandbox_app, sandbox_state
from checkout.sandbox.keys import TeemoPayKeyFiles, ensure_teemopay_keys
from tests.support import creds
from tests.support.live import LiveServer, serve


@pytest.fixture(scope="session")
def teemopay_keys(tmp_path_factory: pytest.TempPathFactory) -> TeemoPayKeyFiles:
    return ensure_teemopay_keys(Path(tmp_path_factory.mktemp("teemopay-keys")))


@dataclass
class RunningSandbox:
    url: str  # root URL; providers live under /paypro, /teemopay, /diamondpay
    state: SandboxState
    server: LiveServer

    def provider_url(self, provider: str) -> str:
        return f"{self.url}/{provider}"


@pytest.fixture
def sandbox(teemopay_keys: TeemoPayKeyFiles) -> Iterator[RunningSandbox]:
    """A fresh sandbox (all three providers) on a loopback port, for one test."""
    app = create_sandbox_app(creds.sandbox_config(teemopay_keys))
    server = serve(app)
    state = sandbox_state(app)
    try:
        yield RunningSandbox(server.url, state, server)
    finally:
        state.notifier.stop()
        server.shutdown()


# ---------------------------------------------------------------- the app
import os  # noqa: E402

from flask import Flask  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from checkout import create_app  # noqa: E402
from checkout.store.db import db as app_db  # noqa: E402
from checkout.store.models import Base  # noqa: E402
from tests.support.app_config import test_config  # noqa: E402
from tests.support.live import LateBoundApp  # noqa: E402


def _database_url(tmp_path: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    from checkout.config import normalise_database_url

    url = normalise_database_url(url)
    engine = create_engine(url)
    with engine.begin() as conn:  # a fresh schema for every test
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@dataclass
class LiveApp:
    url: str
    app: Flask
    sandbox: RunningSandbox

    def session(self):  # type: ignore[no-untyped-def]
        """A database session outside any request (close it when done)."""
        return app_db.bound(self.app).session_factory()


@pytest.fixture
def live_app(
    request: pytest.FixtureRequest,
    sandbox: RunningSandbox,
    teemopay_keys: TeemoPayKeyFiles,
    tmp_path: Path,
) -> Iterator[LiveApp]:
    """The app on a real loopback port, its providers pointed at the sandbox.

    `@pytest.mark.app_config(key=value)` changes top-level configuration keys;
    `@pytest.mark.store_config(shop={...})` merges keys into a store's table (a callable
    taking the request may stand for the dict, e.g. to use another fixture's URL);
    `@pytest.mark.provider_config(paypro_kr={...})` merges keys into a provider instance's table
    (a dict, or a callable taking the request, as for store_config);
    `@pytest.mark.live_host("localhost")` names the app's host in its URL (still 127.0.0.1).
    """
    late = LateBoundApp()
    host_marker = request.node.get_closest_marker("live_host")
    server = serve(late, url_host=host_marker.args[0] if host_marker else None)
    config = test_config(
        sandbox_url=sandbox.url,
        public_base_url=server.url,
        database_url=_database_url(tmp_path),
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    marker = request.node.get_closest_marker("app_config")
    if marker is not None:
        config.update(marker.kwargs)
    stores_marker = request.node.get_closest_marker("store_config")
    if stores_marker is not None:  # e.g. shop={"webhook_url": ..., "webhook_secret": ...}
        for store_id, keys in stores_marker.kwargs.items():
            # A callable gets the request, for values known only at run time (a port).
            table = keys(request) if callable(keys) else keys
            config["stores"].setdefault(store_id, {}).update(table)
    providers_marker = request.node.get_closest_marker("provider_config")
    if providers_marker is not None:  # e.g. paypro_kr={"read_timeout": 0.5}
        for name, keys in providers_marker.kwargs.items():
            table = keys(request) if callable(keys) else keys
            config["providers"].setdefault(name, {}).update(table)
    app = create_app(config)
    Base.metadata.create_all(app_db.bound(app).engine)
    late.app = app
    try:
        yield LiveApp(server.url, app, sandbox)
    finally:
        sandbox.state.notifier.stop()
        server.shutdown()
        app_db.bound(app).engine.dispose()
