"""TeemoPay callbacks: their timestamp and nonce headers are stored and flagged in the
inbox when stale or repeated, and a replayed callback never moves money."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import func, select

from checkout.store.models import NotifyMessage, WebhookEvent
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, get_checkout
from tests.test_admin import add_operator, login
from tests.test_flows import cashier_url, settle, start

TEEMOPAY = next(f for f in FLOWS if f.name == "teemopay_kr")


def _rows(live_app: LiveApp) -> list[NotifyMessage]:
    with live_app.session() as session:
        rows = list(session.scalars(select(NotifyMessage).order_by(NotifyMessage.id)))
        session.expunge_all()
        return rows


def _events(live_app: LiveApp) -> int:
    with live_app.session() as session:
        return session.scalar(select(func.count(WebhookEvent.id))) or 0


def _replay(live_app: LiveApp, original: NotifyMessage, **header_changes: str) -> requests.Response:
    """The stored callback sent again: the same body, the same headers (bar any changed)."""
    headers = {
        k: v
        for k, v in original.headers.items()
        if k.lower() not in ("content-length", "host", "connection", "accept-encoding")
    }
    for key, value in header_changes.items():
        for name in [k for k in headers if k.lower() == key]:
            headers[name] = value
    return requests.post(
        f"{live_app.url}/notify/teemopay_kr",
        data=original.body.encode(),
        headers=headers,
        timeout=10,
    )


def _paid_teemopay(live_app: LiveApp, action: str = "pay") -> dict:
    checkout, shopper, resp = start(live_app, TEEMOPAY)
    settle(live_app, cashier_url(live_app, TEEMOPAY, resp, shopper), action)
    return get_checkout(live_app.url, checkout["id"])


@pytest.mark.provider_config(teemopay_kr={"callback_max_age_seconds": 60})
@pytest.mark.parametrize("action", ["pay", "part"])
def test_replayed_callbacks_never_move_money_and_are_flagged(
    live_app: LiveApp, action: str
) -> None:
    paid = _paid_teemopay(live_app, action)
    assert paid["amount_paid"] > 0
    events = _events(live_app)
    (first,) = _rows(live_app)
    assert first.verdict == "accepted"
    # The headers are stored with the notify: the timestamp as a time, the nonce as sent.
    assert first.header_nonce and len(first.header_nonce) == 32
    assert first.header_timestamp is not None
    assert abs((first.received_at - first.header_timestamp).total_seconds()) < 30

    # Replays: at once (same nonce, fresh timestamp), and 'later' (a stale timestamp: the
    # header is not signed, so a replayer may send any), and far in the future.
    now_ms = int(time.time() * 1000)
    answers = [
        _replay(live_app, first),
        _replay(live_app, first, timestamp=str(now_ms - 3_600_000)),
        _replay(live_app, first, timestamp=str(now_ms + 3_600_000)),
        _replay(live_app, first, timestamp="garbage"),
    ]
    assert [(r.status_code, r.text) for r in answers] == [(200, "SUCCESS")] * 4
    after = get_checkout(live_app.url, paid["id"])
    assert (after["status"], after["amount_paid"]) == (paid["status"], paid["amount_paid"])
    assert _events(live_app) == events  # no second webhook event
    rows = _rows(live_app)
    assert [r.verdict for r in rows] == ["accepted"] + ["duplicate"] * 4
    assert {r.header_nonce for r in rows} == {first.header_nonce}
    assert rows[4].header_timestamp is None  # "garbage" is no time

    # The inbox says what is wrong with each.
    add_operator(live_app)
    page = login(live_app).get(f"{live_app.url}/admin/notifies", timeout=10).text

    def row_html(message: NotifyMessage) -> str:
        start_at = page.index(f'id="notify-{message.id}"')
        return page[start_at : page.index("</tr>", start_at)]

    assert "freshness" not in row_html(rows[0])  # the genuine one: fresh, first of its nonce
    for replay in rows[1:]:
        assert f"nonce seen before (notify #{first.id})" in row_html(replay)
    assert re.search(
        r"stale: sent 3[56]\d\d s before it arrived \(window 60 s\)", row_html(rows[2])
    )
    assert "s in the future (window 60 s)" in row_html(rows[3])
    assert "no usable timestamp header" in row_html(rows[4])


def test_header_time_reads_only_milliseconds() -> None:
    from checkout.providers.teemopay.client import header_time

    assert header_time("1767225600000") is not None
    assert header_time("1767225600000").year == 2026  # type: ignore[union-attr]
    for bad in (None, "", "abc", "１７６７２２５６０００００", "-1", "9" * 16, "1.5"):
        assert header_time(bad) is None


def test_callback_window_must_be_positive(tmp_path, teemopay_keys) -> None:  # type: ignore[no-untyped-def]
    from checkout import create_app
    from tests.support.app_config import test_config

    config = test_config(
        sandbox_url="http://127.0.0.1:9",
        public_base_url="http://127.0.0.1:9",
        database_url=f"sqlite:///{tmp_path / 'w.sqlite3'}",
        instance_path=tmp_path / "instance",
        teemopay_keys=teemopay_keys,
    )
    config["providers"]["teemopay_kr"]["callback_max_age_seconds"] = 0
    with pytest.raises(Exception, match="callback_max_age_seconds"):
        create_app(config)
