"""The console's refunds (blueprints/admin/refunds.py) over real HTTP: "Return the excess"
pre-filled, a second operator approves, every step audited, then the worker sends it."""

from __future__ import annotations

import re

from sqlalchemy import select

from checkout.models import OperatorAction, Refund
from checkout.services.admin import operator_cancel
from checkout.services.refunds import send_refunds
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS
from tests.test_admin import _post, add_operator, flashes, login
from tests.test_flows import cashier_url, settle, start
from tests.test_refunds_worker import wait_status

PAYPRO_VA = next(f for f in FLOWS if f.name == "paypro_kr_va")
ACCOUNT = {"bank_code": "088", "account_number": "110123456789", "holder_name": "김민수"}


def money_after_cancel(live_app: LiveApp) -> str:
    checkout, shopper, resp = start(live_app, PAYPRO_VA)
    with live_app.session() as session:
        operator_cancel(session, "carol", checkout["id"])
    settle(live_app, cashier_url(live_app, PAYPRO_VA, resp, shopper), "pay")
    return checkout["id"]


def test_return_the_excess_needs_a_second_operator_and_is_audited(live_app: LiveApp) -> None:
    live_app.sandbox.state.config.payout_settle_after = 0.1
    checkout_id = money_after_cancel(live_app)
    add_operator(live_app, "alice")
    add_operator(live_app, "bob")
    alice, bob = login(live_app, "alice"), login(live_app, "bob")
    page = alice.get(f"{live_app.url}/admin/checkouts/{checkout_id}", timeout=10).text
    assert "Return the excess" in page
    assert re.search(r'name="amount" inputmode="numeric" value="15000"', page), page
    resp = _post(
        alice,
        live_app,
        checkout_id,
        "refunds",
        amount="15000",
        reason="Return the excess",
        **ACCOUNT,
    )
    assert any("another operator must approve" in f for f in flashes(resp.text)), flashes(resp.text)
    with live_app.session() as session:
        refund = session.scalars(select(Refund)).one()
        assert refund.status == "requested" and refund.requested_by == "alice"
        public_id = refund.public_id
    assert "110123456789" not in resp.text and "****6789" in resp.text
    # Nothing goes out before the approval.
    assert (
        send_refunds(
            live_app.session,
            live_app.app.extensions["settings"],
            payouts_for=live_app.app.extensions["catalog"].payouts.__getitem__,
        ).claimed
        == 0
    )
    same = _post(alice, live_app, checkout_id, "refunds/approve", target=public_id)
    assert any("second operator" in f for f in flashes(same.text)), flashes(same.text)
    ok = _post(bob, live_app, checkout_id, "refunds/approve", target=public_id)
    assert any("approved" in f for f in flashes(ok.text))
    # More than what is left is refused and changes nothing.
    over = _post(bob, live_app, checkout_id, "refunds", amount="1", reason="again", **ACCOUNT)
    assert any("refused" in f for f in flashes(over.text)), flashes(over.text)
    send_refunds(
        live_app.session,
        live_app.app.extensions["settings"],
        payouts_for=live_app.app.extensions["catalog"].payouts.__getitem__,
    )
    row = wait_status(live_app, public_id, "sent")
    assert row.approved_by == "bob"
    with live_app.session() as session:
        actions = session.scalars(
            select(OperatorAction).where(OperatorAction.action.like("refund_%"))
        ).all()
        assert [(a.operator, a.action, a.target) for a in actions] == [
            ("alice", "refund_request", public_id),
            ("bob", "refund_approve", public_id),
        ]
        assert len(session.scalars(select(Refund)).all()) == 1


def test_refund_actions_need_csrf(live_app: LiveApp) -> None:
    checkout_id = money_after_cancel(live_app)
    add_operator(live_app, "alice")
    alice = login(live_app, "alice")
    resp = alice.post(
        f"{live_app.url}/admin/checkouts/{checkout_id}/refunds",
        data={"amount": "100", "reason": "x", **ACCOUNT},
        timeout=10,
    )
    assert resp.status_code == 400
    with live_app.session() as session:
        assert session.scalars(select(Refund)).all() == []
