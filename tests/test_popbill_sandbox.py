"""The Popbill issuer against our Popbill sandbox over real HTTP (client <-> sandbox).

Proves: tokens are signed so the sandbox verifies them (and a wrong secret is refused),
cached and refreshed; a receipt is issued once, whatever crashes or timeouts come between
the call and our write (issue_once queries first); cancels reference the original and are
refused with -14001021 until it is filed, then go through (partial, then the rest; never
more than the original); test bed and production never see each other's receipts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests

from checkout.domain import receipts as r
from checkout.domain.money import Money
from checkout.receipts.errors import (
    IssuerAuthError,
    IssuerError,
    IssuerTimeout,
    MgtKeyInUse,
    OriginalNotFiled,
    ReceiptNotFound,
)
from checkout.receipts.popbill.client import PopbillIssuer, TokenCache
from checkout.receipts.popbill.mapping import PopbillSettings, ReceiptDetails
from checkout.sandbox.core import SandboxConfig, SandboxState, create_sandbox_app, sandbox_state
from checkout.sandbox.faults import UnansweredListener
from tests.support.live import LiveServer, serve

LINK_ID = "CHECKOUT"
SECRET = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
MEMBER = "1248100998"
OTHER_MEMBER = "2208162517"
DETAILS = ReceiptDetails("ORD-1", "상품", "홍길동", None, "checkout co_1")


@dataclass
class Popbill:
    url: str
    state: SandboxState
    server: LiveServer

    def settings(self, **changes: object) -> PopbillSettings:
        fields: dict = {
            "name": "popbill:shop",
            "corp_num": MEMBER,
            "link_id": LINK_ID,
            "secret_key": SECRET,
            "auth_url": f"{self.url}/popbill/auth",
            "api_url": f"{self.url}/popbill",
        }
        fields.update(changes)
        return PopbillSettings(**fields)

    def issuer(self, **changes: object) -> PopbillIssuer:
        deadline = changes.pop("deadline", 5.0)
        return PopbillIssuer(self.settings(**changes), tokens=TokenCache(), deadline=deadline)  # type: ignore[arg-type]

    def file(self, mgt_key: str | None = None, state_code: int = 304) -> None:
        resp = requests.post(
            f"{self.url}/_sandbox/popbill/file",
            json={"mgtKey": mgt_key, "stateCode": state_code},
            timeout=5,
        )
        assert resp.status_code == 200, resp.text


@pytest.fixture
def popbill() -> Iterator[Popbill]:
    config = SandboxConfig(
        popbill_partners={LINK_ID: SECRET}, popbill_members={MEMBER, OTHER_MEMBER}
    )
    app = create_sandbox_app(config)
    server = serve(app)
    state = sandbox_state(app)
    try:
        yield Popbill(server.url, state, server)
    finally:
        state.notifier.stop()
        server.shutdown()


def _plan(checkout_id: str = "co_1", amount: int = 55_000) -> r.IssuePlan:
    plan = r.receipt_for_payment(
        checkout_id=checkout_id,
        choice=r.ReceiptChoice(r.IdentityKind.INCOME_DEDUCTION, "01012345678"),
        received=Money(amount, "KRW"),
        cash_method=True,
        policy=r.ReceiptPolicy(),
    )
    assert isinstance(plan, r.IssuePlan)
    return plan


def _issued(original: r.IssuePlan, confirm: str, date: str, cancelled: int = 0):
    return r.IssuedReceipt(original.mgt_key, confirm, date, original.amounts, cancelled)


# ---------------------------------------------------------------- token
def test_a_signed_token_is_granted_cached_and_used(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    result = issuer.issue(_plan(), DETAILS)
    assert result.confirm_num.startswith("TB") and len(result.confirm_num) == 9
    info = issuer.query(_plan().mgt_key)
    assert info.state is r.ReceiptState.ISSUED and info.total == 55_000
    assert info.masked_identity == "*******5678"
    assert popbill.state.popbill.token_requests == 1  # one token served both calls


def test_a_wrong_secret_or_an_unknown_member_gets_no_token(popbill: Popbill) -> None:
    wrong = popbill.issuer(secret_key="c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY3OA==")
    with pytest.raises(IssuerAuthError) as err:
        wrong.query("RI-X")
    assert err.value.code == "-10000032" and not err.value.retryable
    stranger = popbill.issuer(corp_num="1010000002")  # a valid number, no Popbill member
    with pytest.raises(IssuerAuthError) as err:
        stranger.query("RI-X")
    assert err.value.code == "-10000012"
    unknown = popbill.issuer(link_id="NOBODY")
    with pytest.raises(IssuerAuthError) as err:
        unknown.query("RI-X")
    assert err.value.code == "-10000010"
    assert popbill.state.popbill.token_requests == 0


def test_an_unrestricted_token_is_signed_with_the_forwarded_star(popbill: Popbill) -> None:
    with pytest.raises(ReceiptNotFound):
        popbill.issuer(ip_restrict=False).query("RI-NONE")
    assert popbill.state.popbill.token_requests == 1


def test_a_token_is_refreshed_before_it_expires(popbill: Popbill) -> None:
    now = [datetime.now(UTC)]
    issuer = popbill.issuer()
    issuer.clock = lambda: now[0]
    with pytest.raises(ReceiptNotFound):
        issuer.query("RI-NONE")
    now[0] += timedelta(minutes=58)  # the sandbox's token lives an hour: still good
    with pytest.raises(ReceiptNotFound):
        issuer.query("RI-NONE")
    assert popbill.state.popbill.token_requests == 1
    # A minute before the expiry a new token is fetched (signed with the advanced clock,
    # which the sandbox refuses as skewed: so that the skew rule is seen working too).
    now[0] += timedelta(minutes=1, seconds=1)
    with pytest.raises(IssuerAuthError, match="too far"):
        issuer.query("RI-NONE")


def test_a_token_the_issuer_forgot_is_replaced_once(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    with pytest.raises(ReceiptNotFound):
        issuer.query("RI-NONE")
    popbill.state.popbill.expire_tokens()  # e.g. Popbill restarted: -10000033
    with pytest.raises(ReceiptNotFound):
        issuer.query("RI-NONE")
    assert popbill.state.popbill.token_requests == 2


# ---------------------------------------------------------------- issue once
def test_a_reused_management_key_is_refused_with_its_code(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    issuer.issue(_plan(), DETAILS)
    with pytest.raises(MgtKeyInUse) as err:
        issuer.issue(_plan(), DETAILS)
    assert err.value.code == "-14001019"
    assert len(popbill.state.popbill.all()) == 1


def test_no_second_receipt_after_a_crash_between_the_call_and_our_write(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    # The first try's answer is lost after Popbill issued (the worker crashed or timed out).
    popbill.state.inject_fault("popbill", "connection_reset", endpoint="issue")
    with pytest.raises(IssuerError) as err:
        issuer.issue(_plan(), DETAILS)
    assert err.value.retryable and not err.value.not_sent
    # The retry queries first, finds the receipt and issues nothing more.
    info = issuer.issue_once(_plan(), DETAILS)
    assert info.state is r.ReceiptState.ISSUED and info.confirm_num
    assert len(popbill.state.popbill.all()) == 1


def test_a_timeout_is_an_unknown_outcome_then_found(popbill: Popbill) -> None:
    issuer = popbill.issuer(deadline=0.5)
    popbill.state.inject_fault("popbill", "read_timeout", endpoint="issue", delay=1.5)
    with pytest.raises(IssuerTimeout):
        issuer.issue(_plan(), DETAILS)
    issuer.deadline = 5.0
    info = issuer.issue_once(_plan(), DETAILS)
    assert info.total == 55_000 and len(popbill.state.popbill.all()) == 1


def test_one_deadline_covers_the_token_and_the_call(popbill: Popbill) -> None:
    # Each exchange alone fits the 1.5 s deadline; together they do not.
    issuer = popbill.issuer(deadline=1.5)
    popbill.state.inject_fault("popbill", "slow", endpoint="token", delay=1.0)
    popbill.state.inject_fault("popbill", "slow", endpoint="issue", delay=1.0)
    with pytest.raises(IssuerTimeout):
        issuer.issue(_plan(), DETAILS)
    assert popbill.state.popbill.token_requests == 1  # the token itself came in time


def test_issue_once_issues_when_nothing_is_there(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    first = issuer.issue_once(_plan(), DETAILS)
    again = issuer.issue_once(_plan(), DETAILS)
    assert first == again and len(popbill.state.popbill.all()) == 1


def test_failures_are_typed_and_retryable(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    popbill.state.inject_fault("popbill", "http_500", endpoint="issue")
    with pytest.raises(IssuerError) as err:
        issuer.issue(_plan(), DETAILS)
    assert err.value.code == "http_500" and err.value.retryable
    popbill.state.inject_fault("popbill", "refuse", endpoint="issue", code="14001002")
    with pytest.raises(IssuerError) as err:
        issuer.issue(_plan(), DETAILS)
    assert err.value.code == "-14001002" and not err.value.retryable
    popbill.state.inject_fault("popbill", "malformed_json", endpoint="receipt_query")
    with pytest.raises(IssuerError) as err:
        issuer.query("RI-X")
    assert err.value.code == "invalid_response" and err.value.retryable
    popbill.state.inject_fault("popbill", "http_500", endpoint="token")
    with pytest.raises(IssuerError) as err:
        popbill.issuer().query("RI-X")
    assert err.value.code == "http_500"
    assert popbill.state.popbill.all() == []


def test_an_unreachable_popbill_is_a_failure_that_never_left() -> None:
    with UnansweredListener() as listener:
        settings = PopbillSettings(
            "popbill:shop", MEMBER, LINK_ID, SECRET, auth_url=listener.url, api_url=listener.url
        )
        issuer = PopbillIssuer(settings, tokens=TokenCache(), deadline=1.0, connect_timeout=0.3)
        with pytest.raises(IssuerError) as err:
            issuer.issue(_plan(), DETAILS)
    assert err.value.code == "connection_error" and err.value.not_sent


def test_the_test_bed_and_production_never_meet(popbill: Popbill) -> None:
    popbill.issuer().issue(_plan(), DETAILS)
    production = popbill.issuer(test=False)
    assert production.find(_plan().mgt_key) is None
    production.issue(_plan(), DETAILS)  # the same key is free in the other mode
    assert len(popbill.state.popbill.all()) == 2


# ---------------------------------------------------------------- cancels
def test_a_cancel_before_filing_is_refused_then_goes_through(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    plan = _plan()
    result = issuer.issue(plan, DETAILS)
    original = _issued(plan, result.confirm_num, result.trade_date)
    cancel = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_1", original=original, refund=Money(20_000, "KRW"),
        taxable=True,
    )  # fmt: skip
    with pytest.raises(OriginalNotFiled) as err:
        issuer.cancel(cancel, "partial refund")
    assert err.value.code == "-14001021" and err.value.retryable
    assert issuer.find(cancel.mgt_key) is None  # nothing was made: the retry is safe
    popbill.file(plan.mgt_key)
    assert issuer.query(plan.mgt_key).state is r.ReceiptState.FILED
    done = issuer.cancel(cancel, "partial refund")
    info = issuer.query(cancel.mgt_key)
    assert info.cancel and info.total == 20_000 and info.org_confirm_num == result.confirm_num
    assert info.confirm_num == done.confirm_num != result.confirm_num
    # The rest, as a second partial cancel; a third would exceed the original.
    rest = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_2",
        original=_issued(plan, result.confirm_num, result.trade_date, cancelled=20_000),
        refund=Money(35_000, "KRW"), taxable=True,
    )  # fmt: skip
    issuer.cancel(rest)
    assert issuer.query(rest.mgt_key).total == 35_000
    over = r.CancelPlan(
        r.cancel_mgt_key("co_1", "re_3"), result.confirm_num, result.trade_date, True,
        r.vat_split(1, taxable=True),
    )  # fmt: skip
    with pytest.raises(IssuerError) as err:
        issuer.cancel(over)
    assert err.value.code == "-14001023"


def test_a_full_cancel_copies_the_original(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    plan = _plan()
    result = issuer.issue(plan, DETAILS)
    popbill.file()
    full = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_1",
        original=_issued(plan, result.confirm_num, result.trade_date),
        refund=Money(55_000, "KRW"), taxable=True,
    )  # fmt: skip
    assert not full.partial
    issuer.cancel(full)
    info = issuer.query(full.mgt_key)
    assert info.cancel and info.total == 55_000
    with pytest.raises(MgtKeyInUse):
        issuer.cancel(full)  # a retried cancel never makes a second one


def test_a_cancel_of_an_unknown_original_is_refused(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    ghost = r.CancelPlan("RC-GHOST", "TB9999999", "20250102", False, r.vat_split(1, taxable=True))
    with pytest.raises(IssuerError) as err:
        issuer.cancel(ghost)
    assert err.value.code == "-14001020"


def test_a_failed_filing_is_state_305(popbill: Popbill) -> None:
    issuer = popbill.issuer()
    issuer.issue(_plan(), DETAILS)
    popbill.file(_plan().mgt_key, 305)
    info = issuer.query(_plan().mgt_key)
    assert info.state is r.ReceiptState.FILING_FAILED and info.state_code == 305
