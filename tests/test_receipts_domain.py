"""Cash-receipt rules (checkout/domain/receipts.py): pure, no app, no database."""

from __future__ import annotations

import pytest

from checkout.domain import receipts as r
from checkout.domain.errors import ReceiptError, UnknownReceiptState
from checkout.domain.money import Money

KRW = "KRW"
DESIGNATED = r.ReceiptPolicy(designated_industry=True)


# ---------------------------------------------------------------- identities
@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("010-1234-5678", "01012345678"),
        ("01012345678", "01012345678"),
        ("011 234 5678", "0112345678"),
        ("+82 10-1234-5678", "01012345678"),
    ],
)
def test_mobile_numbers_become_digits(text: str, digits: str) -> None:
    assert r.normalize_mobile(text) == digits


@pytest.mark.parametrize(
    "text", ["", "0212345678", "010123", "010123456789", "０１０１２３４５６７８", "010-abcd-5678"]
)
def test_what_is_no_mobile_number_is_refused(text: str) -> None:
    with pytest.raises(ReceiptError) as err:
        r.normalize_mobile(text)
    assert err.value.code == "invalid_mobile"


@pytest.mark.parametrize("text", ["124-81-00998", "2208162517", "220-81-62517"])
def test_real_business_numbers_pass_their_check_digit(text: str) -> None:
    assert r.normalize_brn(text) == text.replace("-", "")


@pytest.mark.parametrize("text", ["124-81-00997", "1248100990", "2208162510"])
def test_a_wrong_check_digit_is_refused(text: str) -> None:
    with pytest.raises(ReceiptError, match="check digit") as err:
        r.normalize_brn(text)
    assert err.value.code == "invalid_business_number"


@pytest.mark.parametrize("text", ["12481009", "124810099812", "12a8100998", "１２４８１００９９８"])
def test_a_business_number_has_ten_ascii_digits(text: str) -> None:
    with pytest.raises(ReceiptError, match="10 digits"):
        r.normalize_brn(text)


def test_the_check_digit_counts_the_tens_of_the_ninth_digit() -> None:
    # 124-81-0099?: 1+6+28+8+3+0+0+27+45 = 118, plus 9*5//10 = 4: 122 -> 8.
    assert r.brn_check_digit("124810099") == 8


def test_each_kind_of_choice_is_validated() -> None:
    assert r.parse_choice("income_deduction", "010-1234-5678") == r.ReceiptChoice(
        r.IdentityKind.INCOME_DEDUCTION, "01012345678"
    )
    assert r.parse_choice("expense_proof", "124-81-00998") == r.ReceiptChoice(
        r.IdentityKind.EXPENSE_PROOF, "1248100998"
    )
    assert r.parse_choice("none", "ignored") == r.ReceiptChoice(r.IdentityKind.NONE)
    with pytest.raises(ReceiptError) as err:
        r.parse_choice("expense_proof", "010-1234-5678")  # a mobile is no business number
    assert err.value.code == "invalid_business_number"
    with pytest.raises(ReceiptError) as err:
        r.parse_choice("income_deduction", "124-81-00998")
    assert err.value.code == "invalid_mobile"
    with pytest.raises(ReceiptError) as err:
        r.parse_choice("income_deduction", "  ")
    assert err.value.code == "identity_required"
    with pytest.raises(ReceiptError) as err:
        r.parse_choice("card", "1234")
    assert err.value.code == "invalid_receipt_type"


def test_the_form_is_prefilled_from_the_payers_mobile() -> None:
    assert r.prefill_choice("010-9876-5432") == r.ReceiptChoice(
        r.IdentityKind.INCOME_DEDUCTION, "01098765432"
    )
    assert r.prefill_choice("+52 55 1234 5678").kind is r.IdentityKind.NONE
    assert r.prefill_choice(None).kind is r.IdentityKind.NONE


def test_identities_show_their_last_four_digits_only() -> None:
    assert r.mask_identity("01012345678") == "*******5678"
    assert r.mask_identity("1248100998") == "******0998"
    assert r.mask_identity("010-1234-5678") == "*******5678"
    assert r.mask_identity("123") == "***"
    assert r.mask_identity(r.SELF_ISSUED_NUMBER) == "010-000-1234"  # the NTS's, no one's


# ---------------------------------------------------------------- amounts
@pytest.mark.parametrize(
    ("total", "supply", "tax"),
    [(55_000, 50_000, 5_000), (20_000, 18_182, 1_818), (35_000, 31_818, 3_182), (1, 1, 0)],
)
def test_vat_split_matches_popbills_examples(total: int, supply: int, tax: int) -> None:
    assert r.vat_split(total, taxable=True) == r.ReceiptAmounts(total, supply, tax)


def test_an_exempt_store_splits_no_tax() -> None:
    assert r.vat_split(55_000, taxable=False) == r.ReceiptAmounts(55_000, 55_000, 0)


def test_amounts_must_add_up_and_fit_nine_digits() -> None:
    with pytest.raises(ReceiptError, match="supply"):
        r.ReceiptAmounts(100, 90, 9)
    with pytest.raises(ReceiptError) as err:
        r.ReceiptAmounts(1_000_000_000, 1_000_000_000, 0)
    assert err.value.code == "amount_out_of_range"


# ---------------------------------------------------------------- management keys
def test_management_keys_are_deterministic_and_fit_popbill() -> None:
    checkout_id = "co_" + "A-_b" * 6  # our ids: 25 characters, longer than Popbill allows
    key = r.issue_mgt_key(checkout_id)
    assert key == r.issue_mgt_key(checkout_id)
    assert len(key) <= r.MGT_KEY_MAX and r.is_valid_mgt_key(key)
    assert key != r.issue_mgt_key(checkout_id + "x")
    cancel = r.cancel_mgt_key(checkout_id, "re_1")
    assert cancel == r.cancel_mgt_key(checkout_id, "re_1")
    assert r.is_valid_mgt_key(cancel) and len(cancel) <= r.MGT_KEY_MAX
    assert len({key, cancel, r.cancel_mgt_key(checkout_id, "re_2")}) == 3
    assert not r.is_valid_mgt_key("x" * 25) and not r.is_valid_mgt_key("ключ")


# ---------------------------------------------------------------- what to issue
def _plan(choice: r.ReceiptChoice, amount: int, policy: r.ReceiptPolicy, *, cash: bool = True):
    return r.receipt_for_payment(
        checkout_id="co_1",
        choice=choice,
        received=Money(amount, KRW),
        cash_method=cash,
        policy=policy,
    )


def test_an_asked_receipt_is_issued_for_the_money_received() -> None:
    choice = r.ReceiptChoice(r.IdentityKind.EXPENSE_PROOF, "1248100998")
    plan = _plan(choice, 30_000, r.ReceiptPolicy())
    assert isinstance(plan, r.IssuePlan)
    assert plan.usage is r.TradeUsage.EXPENSE_PROOF
    assert plan.identity == "1248100998" and plan.masked_identity == "******0998"
    assert plan.amounts == r.ReceiptAmounts(30_000, 27_273, 2_727)
    assert plan.mgt_key == r.issue_mgt_key("co_1") and not plan.self_issued


def test_a_designated_store_self_issues_from_its_threshold() -> None:
    none = r.ReceiptChoice(r.IdentityKind.NONE)
    at = _plan(none, 100_000, DESIGNATED)
    assert isinstance(at, r.IssuePlan) and at.self_issued
    assert at.identity == "010-000-1234" and at.usage is r.TradeUsage.INCOME_DEDUCTION
    assert _plan(none, 99_999, DESIGNATED) == r.NoReceipt("not_asked")
    assert _plan(none, 500_000, r.ReceiptPolicy()) == r.NoReceipt("not_asked")
    higher = r.ReceiptPolicy(designated_industry=True, threshold=Money(200_000, KRW))
    assert _plan(none, 150_000, higher) == r.NoReceipt("not_asked")


def test_a_part_paid_account_gets_one_receipt_for_what_arrived() -> None:
    # Asked ₩300,000, ₩120,000 arrived before the account closed: the receipt is ₩120,000.
    none = r.ReceiptChoice(r.IdentityKind.NONE)
    plan = _plan(none, 120_000, DESIGNATED)
    assert isinstance(plan, r.IssuePlan) and plan.amounts.total == 120_000


def test_the_receipt_waits_until_no_more_money_can_come() -> None:
    assert r.receipt_due("paid", amount_paid=10, more_money_possible=False)
    assert r.receipt_due("paid", amount_paid=10, more_money_possible=True)  # nothing to wait for
    assert not r.receipt_due("partially_paid", amount_paid=10, more_money_possible=True)
    assert r.receipt_due("partially_paid", amount_paid=10, more_money_possible=False)
    assert r.receipt_due("cancelled", amount_paid=10, more_money_possible=False)  # money kept
    for status in ("open", "pending", "expired", "cancelled", "paid"):
        assert not r.receipt_due(status, amount_paid=0, more_money_possible=False)


def test_no_receipt_for_cards_or_nothing_received() -> None:
    choice = r.ReceiptChoice(r.IdentityKind.INCOME_DEDUCTION, "01012345678")
    assert _plan(choice, 50_000, DESIGNATED, cash=False) == r.NoReceipt("not_cash")
    assert _plan(choice, 0, DESIGNATED) == r.NoReceipt("nothing_received")
    with pytest.raises(ReceiptError) as err:
        r.receipt_for_payment(
            checkout_id="co_1",
            choice=choice,
            received=Money(5_000, "MXN"),
            cash_method=True,
            policy=DESIGNATED,
        )
    assert err.value.code == "not_krw"


# ---------------------------------------------------------------- cancels
ORIGINAL = r.IssuedReceipt("RI-X", "TB0000253", "20250102", r.vat_split(55_000, taxable=True))


def test_a_full_refund_cancels_the_whole_receipt() -> None:
    plan = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_1", original=ORIGINAL, refund=Money(55_000, KRW),
        taxable=True,
    )  # fmt: skip
    assert not plan.partial and plan.amounts == ORIGINAL.amounts
    assert (plan.org_confirm_num, plan.org_trade_date) == ("TB0000253", "20250102")
    assert plan.mgt_key == r.cancel_mgt_key("co_1", "re_1")


def test_partial_refunds_cancel_their_part_and_never_more_than_left() -> None:
    first = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_1", original=ORIGINAL, refund=Money(20_000, KRW),
        taxable=True,
    )  # fmt: skip
    assert first.partial and first.amounts == r.ReceiptAmounts(20_000, 18_182, 1_818)
    after = r.IssuedReceipt("RI-X", "TB0000253", "20250102", ORIGINAL.amounts, cancelled=20_000)
    rest = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_2", original=after, refund=Money(35_000, KRW),
        taxable=True,
    )  # fmt: skip
    # The rest is still a partial cancel: a full one would copy the whole ₩55,000.
    assert rest.partial and rest.amounts == r.ReceiptAmounts(35_000, 31_818, 3_182)
    with pytest.raises(ReceiptError) as err:
        r.cancel_for_refund(
            checkout_id="co_1", refund_id="re_3", original=after, refund=Money(35_001, KRW),
            taxable=True,
        )  # fmt: skip
    assert err.value.code == "cancel_exceeds_original"


# ---------------------------------------------------------------- states
def test_popbill_states_map_through_the_table() -> None:
    assert r.state_of_popbill(300) is r.ReceiptState.ISSUED
    assert r.state_of_popbill("304") is r.ReceiptState.FILED
    assert r.state_of_popbill(305) is r.ReceiptState.FILING_FAILED


@pytest.mark.parametrize("code", [100, 301, 400, "", "abc", None, True])
def test_an_unknown_state_is_an_error(code: object) -> None:
    with pytest.raises(UnknownReceiptState):
        r.state_of_popbill(code)


def test_states_only_move_forward() -> None:
    s = r.ReceiptState
    assert r.advance(s.PENDING, s.ISSUED) is s.ISSUED
    assert r.advance(s.ISSUED, s.FILED) is s.FILED
    assert r.advance(s.FILED, s.ISSUED) is s.FILED
    assert r.advance(s.FILING_FAILED, s.FILED) is s.FILING_FAILED
    assert r.advance(s.ISSUED, s.PENDING) is s.ISSUED
    assert r.may_cancel(s.FILED) and not r.may_cancel(s.ISSUED)


# ---------------------------------------------------------------- retries
def test_retries_space_out_and_stop_at_the_legal_window() -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    issue = r.ReceiptKind.ISSUE
    assert r.next_try_at(issue, 1, start, start) == start + timedelta(minutes=1)
    assert r.next_try_at(issue, 2, start, start) == start + timedelta(minutes=5)
    assert r.next_try_at(issue, 9, start, start) == start + timedelta(hours=6)
    late = start + timedelta(days=4) - timedelta(hours=5)
    assert r.next_try_at(issue, 20, start, late) is None  # past the 5-day duty: give up
    cancel = r.ReceiptKind.CANCEL
    # A cancel refused until the original is filed waits hours, for up to a week.
    assert r.next_try_at(cancel, 1, start, start) == start + timedelta(hours=1)
    assert r.next_try_at(cancel, 5, start, start + timedelta(days=6)) is not None
    assert r.next_try_at(cancel, 5, start, start + timedelta(days=7)) is None
