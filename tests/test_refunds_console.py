"""The console's refunds (web/console/refunds.py) over real HTTP: "Return the excess"
pre-filled, a second operator approves, every step audited, then the worker sends it."""

from __future__ import annotations

import re

from sqlalchemy import select

from checkout.services.admin import operator_cancel
from checkout.services.refunds import send_refunds
from checkout.store.models import OperatorAction, Refund
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


PAYPRO_MX = next(f for f in FLOWS if f.name == "paypro_mx_api")


def paid_mx_checkout(live_app: LiveApp) -> str:
    checkout, shopper, resp = start(live_app, PAYPRO_MX)
    settle(live_app, cashier_url(live_app, PAYPRO_MX, resp, shopper), "pay")
    return checkout["id"]


def refund_rows(live_app: LiveApp) -> list[Refund]:
    with live_app.session() as session:
        return list(session.scalars(select(Refund)).all())


def test_refund_amounts_are_typed_in_major_units(live_app: LiveApp) -> None:
    checkout_id = paid_mx_checkout(live_app)
    add_operator(live_app, "alice")
    alice = login(live_app, "alice")
    page = alice.get(f"{live_app.url}/admin/checkouts/{checkout_id}", timeout=10).text
    assert "Amount in MXN" in page and 'inputmode="decimal"' in page and "120.50" in page
    for typed, says in [
        ("120.505", "MXN amounts have at most 2 decimals: 120.505 has more."),
        ("12050 centavos", "Enter the amount in MXN as digits, e.g. 120.50."),
        ("0.00", "Enter an amount above zero."),
    ]:
        resp = _post(
            alice, live_app, checkout_id, "refunds", amount=typed, reason="late money",
            bank_code="40012", account_number="012180012345678901", holder_name="Ana López",
        )  # fmt: skip
        # The form again, as typed, the error beside the amount; the account not echoed.
        assert resp.status_code == 400
        assert f'<p class="error" id="refund-amount-error">{says} Nothing was asked' in resp.text
        assert f'name="amount" inputmode="decimal" value="{typed}"' in resp.text
        assert 'value="late money"' in resp.text and 'value="40012" selected' in resp.text
        assert "012180012345678901" not in resp.text and "López" not in resp.text
        assert refund_rows(live_app) == []
    resp = _post(alice, live_app, checkout_id, "refunds", amount="120.50", reason="refund")
    assert any("another operator must approve" in f for f in flashes(resp.text)), flashes(resp.text)
    [refund] = refund_rows(live_app)
    assert (refund.amount, refund.currency) == (12050, "MXN")
    assert "MXN 120.50" in resp.text


def test_won_amounts_take_grouping_and_refuse_decimals(live_app: LiveApp) -> None:
    checkout_id = money_after_cancel(live_app)
    add_operator(live_app, "alice")
    alice = login(live_app, "alice")
    bad = _post(alice, live_app, checkout_id, "refunds", amount="12000.5", reason="x", **ACCOUNT)
    assert bad.status_code == 400
    assert "KRW amounts have no decimals: 12000.5 is not one." in bad.text
    assert refund_rows(live_app) == []
    ok = _post(alice, live_app, checkout_id, "refunds", amount="12,000", reason="x", **ACCOUNT)
    assert any("another operator must approve" in f for f in flashes(ok.text)), flashes(ok.text)
    assert [r.amount for r in refund_rows(live_app)] == [12000]


def test_the_bank_is_chosen_from_a_list_in_the_operators_language(live_app: LiveApp) -> None:
    checkout_id = money_after_cancel(live_app)
    add_operator(live_app, "alice")
    alice = login(live_app, "alice")
    url = f"{live_app.url}/admin/checkouts/{checkout_id}"
    korean = alice.get(url, headers={"Accept-Language": "ko-KR,ko"}, timeout=10).text
    assert '<select id="refund-bank" name="bank_code">' in korean
    assert '<input name="bank_code"' not in korean
    assert '<option value="011">NH농협은행</option>' in korean
    assert "National Agricultural Cooperative Federation" not in korean
    assert 'value="002"' in korean  # KDB산업은행 keeps personal accounts too
    english = alice.get(url, headers={"Accept-Language": "en"}, timeout=10).text
    assert '<option value="011">NH NongHyup Bank</option>' in english
    mexican_id = paid_mx_checkout(live_app)
    spanish = alice.get(
        f"{live_app.url}/admin/checkouts/{mexican_id}", headers={"Accept-Language": "es"}
    ).text
    assert '<option value="40012">BBVA México</option>' in spanish and "CLABE" in spanish
    for institution in ("BANXICO", "INDEVAL", "CLS"):
        assert f">{institution}<" not in spanish


def test_cancelling_a_refund_asks_first_and_still_needs_a_post_with_csrf(
    live_app: LiveApp,
) -> None:
    checkout_id = money_after_cancel(live_app)
    add_operator(live_app, "alice")
    alice = login(live_app, "alice")
    _post(alice, live_app, checkout_id, "refunds", amount="15000", reason="x", **ACCOUNT)
    [refund] = refund_rows(live_app)
    page = alice.get(f"{live_app.url}/admin/checkouts/{checkout_id}", timeout=10).text
    confirm_url = f"/admin/checkouts/{checkout_id}/refunds/{refund.public_id}/cancel"
    assert f'href="{confirm_url}"' in page
    confirm = alice.get(live_app.url + confirm_url, timeout=10)
    assert confirm.status_code == 200 and "This cannot be undone" in confirm.text
    assert f'action="/admin/checkouts/{checkout_id}/refunds/cancel"' in confirm.text
    assert [r.status for r in refund_rows(live_app)] == ["requested"]  # asking changed nothing
    assert alice.get(live_app.url + confirm_url.replace("/cancel", "/delete")).status_code == 404
    forged = alice.post(
        f"{live_app.url}/admin/checkouts/{checkout_id}/refunds/cancel",
        data={"target": refund.public_id},
        timeout=10,
    )
    assert forged.status_code == 400
    assert [r.status for r in refund_rows(live_app)] == ["requested"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', confirm.text).group(1)  # type: ignore[union-attr]
    done = alice.post(
        f"{live_app.url}/admin/checkouts/{checkout_id}/refunds/cancel",
        data={"csrf_token": token, "target": refund.public_id},
        timeout=10,
    )
    assert any("cancelled" in f for f in flashes(done.text)), flashes(done.text)
    assert [r.status for r in refund_rows(live_app)] == ["cancelled"]
