"""The console's "Waiting" queue (refunds to approve, checkouts to review, counted in the
nav) and the confirmation step before a checkout is cancelled."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from checkout.store.models import Checkout, Refund
from tests.conftest import LiveApp
from tests.support.shopper import create_checkout, get_checkout
from tests.test_admin import _post, add_operator, flashes, login
from tests.test_refunds_console import ACCOUNT, money_after_cancel

CSRF_IN_FORM = re.compile(r'name="csrf_token" value="([^"]+)"')


def count(page: str, element_id: str) -> int | None:
    found = re.search(rf'id="{element_id}"[^>]*>(\d+)<', page)
    return int(found.group(1)) if found else None


def test_a_second_operator_finds_refunds_to_approve_from_the_nav(live_app: LiveApp) -> None:
    checkout_id = money_after_cancel(live_app)  # money after a cancel: flagged for review
    add_operator(live_app, "alice")
    add_operator(live_app, "bob")
    alice, bob = login(live_app, "alice"), login(live_app, "bob")
    home = bob.get(f"{live_app.url}/admin/", timeout=10).text
    assert count(home, "nav-waiting-count") == 1  # the review only
    _post(alice, live_app, checkout_id, "refunds", amount="15000", reason="excess", **ACCOUNT)
    with live_app.session() as session:
        refund = session.scalars(select(Refund)).one()
        livemode = session.get(Checkout, checkout_id).livemode  # type: ignore[union-attr]
    # Any console page says there is something waiting, and links to it.
    home = bob.get(f"{live_app.url}/admin/providers", timeout=10).text
    assert count(home, "nav-waiting-count") == 2
    assert 'href="/admin/waiting" id="nav-waiting"' in home
    queue = bob.get(f"{live_app.url}/admin/waiting", timeout=10).text
    assert count(queue, "waiting-refunds-count") == 1 and count(queue, "waiting-reviews-count") == 1
    row = re.search(rf'<tr id="waiting-{refund.public_id}">(.*?)</tr>', queue, re.S).group(1)  # type: ignore[union-attr]
    assert "KRW 15,000" in row and "alice" in row and checkout_id in row
    assert ">Approve</button>" in row
    assert ('class="badge-test"' in row) is (not livemode)
    assert f'<tr id="review-{checkout_id}">' in queue
    # The operator who asked sees it waits for someone else, and no Approve button.
    own = alice.get(f"{live_app.url}/admin/waiting", timeout=10).text
    own_row = re.search(rf'<tr id="waiting-{refund.public_id}">(.*?)</tr>', own, re.S).group(1)  # type: ignore[union-attr]
    assert "another operator must approve" in own_row and "Approve</button>" not in own_row
    # A mode filter shows only that mode's items.
    other = "test" if livemode else "live"
    filtered = bob.get(f"{live_app.url}/admin/waiting?mode={other}", timeout=10).text
    assert count(filtered, "waiting-refunds-count") == 0
    # Approved from the queue: back on the queue, which no longer lists it.
    token = CSRF_IN_FORM.search(queue).group(1)  # type: ignore[union-attr]
    done = bob.post(
        f"{live_app.url}/admin/checkouts/{checkout_id}/refunds/approve",
        data={"csrf_token": token, "target": refund.public_id, "back": "waiting"},
        timeout=10,
    )
    assert done.url.endswith("/admin/waiting")
    assert f"Refund {refund.public_id} approved." in flashes(done.text)
    assert count(done.text, "waiting-refunds-count") == 0
    assert count(done.text, "nav-waiting-count") == 1
    with live_app.session() as session:
        assert session.scalars(select(Refund)).one().approved_by == "bob"


def test_the_queue_needs_a_login(live_app: LiveApp) -> None:
    resp = requests.get(f"{live_app.url}/admin/waiting", allow_redirects=False, timeout=10)
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]


def test_cancelling_a_checkout_asks_first_and_still_needs_a_post_with_csrf(
    live_app: LiveApp,
) -> None:
    checkout = create_checkout(live_app.url)
    add_operator(live_app)
    http = login(live_app)
    page = http.get(f"{live_app.url}/admin/checkouts/{checkout['id']}", timeout=10).text
    confirm_url = f"/admin/checkouts/{checkout['id']}/cancel"
    assert f'id="cancel-checkout" href="{confirm_url}"' in page
    assert f'action="{confirm_url}"' not in page  # no one-tap cancel on the checkout's page
    confirm = http.get(live_app.url + confirm_url, timeout=10)
    assert confirm.status_code == 200 and "This cannot be undone" in confirm.text
    assert f'action="{confirm_url}"' in confirm.text and checkout["order_id"] in confirm.text
    assert get_checkout(live_app.url, checkout["id"])["status"] == "open"  # asking changed nothing
    assert http.get(f"{live_app.url}/admin/checkouts/co_nope/cancel").status_code == 404
    forged = http.post(live_app.url + confirm_url, data={"target": ""}, timeout=10)
    assert forged.status_code == 400
    assert get_checkout(live_app.url, checkout["id"])["status"] == "open"
    token = CSRF_IN_FORM.search(confirm.text).group(1)  # type: ignore[union-attr]
    done = http.post(live_app.url + confirm_url, data={"csrf_token": token}, timeout=10)
    assert done.status_code == 200
    assert get_checkout(live_app.url, checkout["id"])["status"] == "cancelled"


def test_a_refund_rejected_from_the_queue_asks_first_and_comes_back_to_it(
    live_app: LiveApp,
) -> None:
    checkout_id = money_after_cancel(live_app)
    add_operator(live_app, "alice")
    add_operator(live_app, "bob")
    _post(login(live_app, "alice"), live_app, checkout_id, "refunds", amount="15000",
          reason="excess", **ACCOUNT)  # fmt: skip
    bob = login(live_app, "bob")
    queue = bob.get(f"{live_app.url}/admin/waiting", timeout=10).text
    with live_app.session() as session:
        public_id = session.scalars(select(Refund.public_id)).one()
    confirm_path = f"/admin/checkouts/{checkout_id}/refunds/{public_id}/reject?back=waiting"
    assert f'href="{confirm_path}"' in queue
    confirm = bob.get(live_app.url + confirm_path, timeout=10).text
    assert 'name="back" value="waiting"' in confirm and 'href="/admin/waiting"' in confirm
    token = CSRF_IN_FORM.search(confirm).group(1)  # type: ignore[union-attr]
    done = bob.post(
        f"{live_app.url}/admin/checkouts/{checkout_id}/refunds/reject",
        data={"csrf_token": token, "target": public_id, "back": "waiting"},
        timeout=10,
    )
    assert done.url.endswith("/admin/waiting")
    assert f"Refund {public_id} rejected." in flashes(done.text)
    with live_app.session() as session:
        assert session.scalars(select(Refund.status)).one() == "rejected"
