"""Console sessions live on the server (a copied cookie dies with them) and logins are
limited per account, not only per address."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from checkout.services import admin as admin_service
from checkout.store import models
from checkout.store.models import Operator
from tests.conftest import LiveApp
from tests.test_admin import CSRF_RE, PASSWORD, Clock, _signed_in, add_operator, login


def copy_of(http: requests.Session) -> requests.Session:
    """Another browser (an attacker's) holding a copy of the operator's cookie."""
    thief = requests.Session()
    thief.cookies.update(http.cookies)
    return thief


def logout(http: requests.Session, live_app: LiveApp) -> None:
    page = http.get(f"{live_app.url}/admin/", timeout=10)
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    resp = http.post(
        f"{live_app.url}/admin/logout",
        data={"csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 302


def revoked_reasons(live_app: LiveApp) -> list[str | None]:
    with live_app.session() as session:
        return list(
            session.scalars(
                select(models.OperatorSession.revoked_reason).order_by(models.OperatorSession.id)
            )
        )


def test_a_copied_cookie_stops_working_at_logout(live_app: LiveApp) -> None:
    add_operator(live_app)
    http = login(live_app)
    thief = copy_of(http)
    assert _signed_in(thief, live_app)  # the copy works while the session lives
    logout(http, live_app)
    assert not _signed_in(thief, live_app)  # on main: still in, for up to 12 hours
    assert not _signed_in(http, live_app)
    assert revoked_reasons(live_app) == ["logout"]
    # The cookie holds a random token, stored only as its SHA-256.
    with live_app.session() as session:
        row = session.scalars(select(models.OperatorSession)).one()
    assert len(row.token_sha256) == 64 and row.token_sha256 not in str(http.cookies)


@pytest.mark.parametrize("how", ["password reset", "deactivated"])
def test_password_reset_and_deactivation_revoke_every_session(live_app: LiveApp, how: str) -> None:
    add_operator(live_app)
    first, second = login(live_app), login(live_app)
    thieves = [copy_of(first), copy_of(second)]
    with live_app.session() as session:
        if how == "password reset":
            admin_service.reset_password(session, "alice", "another password 12345")
        else:
            admin_service.set_operator_active(session, "alice", False)
    for http in (first, second, *thieves):
        assert not _signed_in(http, live_app)
    assert revoked_reasons(live_app) == [how, how]


def test_idle_and_old_sessions_are_revoked_on_the_server(live_app: LiveApp) -> None:
    clock = Clock()
    live_app.app.config["ADMIN_CLOCK"] = clock
    add_operator(live_app)
    http = login(live_app)
    clock.advance(minutes=31)
    assert not _signed_in(http, live_app)
    clock.advance(minutes=1)
    assert not _signed_in(copy_of(http), live_app)
    assert revoked_reasons(live_app) == ["idle"]


def test_lock_grows_with_each_failure_and_is_bounded() -> None:
    assert [admin_service.lock_after(n) for n in range(admin_service.FREE_FAILURES)] == [
        None
    ] * admin_service.FREE_FAILURES
    locks = [
        admin_service.lock_after(n)
        for n in range(admin_service.FREE_FAILURES, admin_service.FREE_FAILURES + 12)
    ]
    assert locks[0] == timedelta(seconds=30)
    assert all(b >= a for a, b in itertools.pairwise(locks))  # type: ignore[operator]
    assert locks[1] == 2 * locks[0]  # type: ignore[operator]
    assert max(locks) == admin_service.LOCK_MAX  # type: ignore[type-var]
    assert admin_service.lock_after(10**6) == admin_service.LOCK_MAX  # no overflow


def login_from(live_app: LiveApp, address: str, password: str) -> requests.Response:
    http = requests.Session()
    http.headers["X-Forwarded-For"] = address
    page = http.get(f"{live_app.url}/admin/login", timeout=10)
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    return http.post(
        f"{live_app.url}/admin/login",
        data={"csrf_token": token, "name": "alice", "password": password},
        allow_redirects=False,
        timeout=10,
    )


@pytest.mark.app_config(proxy_fix_x_for=1)
def test_wrong_passwords_from_many_addresses_lock_the_account(live_app: LiveApp) -> None:
    """15 wrong passwords from 15 addresses (each far under the per-IP limit), then the
    right one from a 16th: refused, with the same answer as a wrong password (on main it
    simply succeeded). Once the lock is over the right password works and the count
    starts again."""
    clock = Clock()
    live_app.app.config["ADMIN_CLOCK"] = clock
    add_operator(live_app)
    wrong = [login_from(live_app, f"198.51.100.{i}", "wrong-password-7Qx9") for i in range(15)]
    assert {r.status_code for r in wrong} == {401}
    right = login_from(live_app, "198.51.100.200", PASSWORD)
    assert right.status_code == 401
    assert right.text.count("Wrong name or password") == wrong[0].text.count(
        "Wrong name or password"
    )  # a lock reads like a wrong password: names cannot be probed
    with live_app.session() as session:
        operator = session.scalars(select(Operator)).one()
        assert (
            operator.failed_logins == admin_service.FREE_FAILURES
        )  # attempts during a lock: unchecked
        assert operator.last_login_at is None
        assert session.scalars(select(models.OperatorSession)).all() == []
    # An unknown name gets the very same answer.
    http = requests.Session()
    page = http.get(f"{live_app.url}/admin/login", timeout=10)
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    unknown = http.post(
        f"{live_app.url}/admin/login",
        data={"csrf_token": token, "name": "nobody", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert unknown.status_code == 401
    # Still locked 29 s later; one more wrong password after the lock doubles it.
    clock.advance(seconds=29)
    assert login_from(live_app, "198.51.100.201", PASSWORD).status_code == 401
    clock.advance(seconds=2)
    assert login_from(live_app, "198.51.100.202", "wrong-password-7Qx9").status_code == 401
    clock.advance(seconds=59)
    assert login_from(live_app, "198.51.100.203", PASSWORD).status_code == 401
    clock.advance(seconds=2)
    assert login_from(live_app, "198.51.100.204", PASSWORD).status_code == 302  # in
    with live_app.session() as session:
        operator = session.scalars(select(Operator)).one()
        assert (operator.failed_logins, operator.locked_until) == (0, None)


@pytest.mark.app_config(proxy_fix_x_for=1)
def test_parallel_guesses_are_counted_each_and_checked_at_most_five(live_app: LiveApp) -> None:
    """15 wrong passwords sent at once from 15 addresses: each takes its own count in one
    atomic step before its password is checked, so no more than the free five are checked
    and the lock holds for the right password after them."""
    from concurrent.futures import ThreadPoolExecutor

    add_operator(live_app)
    with ThreadPoolExecutor(max_workers=15) as pool:
        answers = list(
            pool.map(
                lambda i: login_from(live_app, f"192.0.2.{i}", "wrong-password-7Qx9"), range(15)
            )
        )
    assert {r.status_code for r in answers} == {401}
    with live_app.session() as session:
        operator = session.scalars(select(Operator)).one()
        assert operator.failed_logins == admin_service.FREE_FAILURES
        assert operator.locked_until is not None
    assert login_from(live_app, "192.0.2.200", PASSWORD).status_code == 401
