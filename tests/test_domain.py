"""Money, the state machine and configuration: pure code, no server."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from checkout.config import ConfigError, apply_env_overrides, build_settings
from checkout.domain.errors import MoneyError, TransitionError
from checkout.domain.money import Money
from checkout.domain.states import (
    AttemptStatus,
    CheckoutStatus,
    attempt_transition,
    checkout_transition,
)
from checkout.logging_setup import mask_text


def test_money_is_exact() -> None:
    assert Money.from_major("1000.00", "KRW") == Money(1000, "KRW")
    assert Money.from_major(Decimal("250.5"), "MXN") == Money(25050, "MXN")
    assert Money(25000, "MXN").format_plain() == "250.00"
    assert Money(25000, "MXN").whole_units() == 250
    with pytest.raises(MoneyError):
        Money.from_major("1000.5", "KRW")
    with pytest.raises(MoneyError):
        Money.from_major("abc", "KRW")
    with pytest.raises(MoneyError):
        Money(12345, "MXN").whole_units()
    with pytest.raises(MoneyError):
        Money(1.5, "KRW")  # type: ignore[arg-type]


@pytest.mark.parametrize("final", [AttemptStatus.PAID, AttemptStatus.FAILED, AttemptStatus.EXPIRED])
def test_a_final_attempt_never_moves(final: AttemptStatus) -> None:
    # The one exception: money after an expiry or a failure is kept ("paid late", "paid
    # after failed"), never dropped.
    late_money = {AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID}
    for target in AttemptStatus:
        if target == final:
            assert attempt_transition(final, target) is False  # a repeat is a no-op
        elif final in (AttemptStatus.EXPIRED, AttemptStatus.FAILED) and target in late_money:
            assert attempt_transition(final, target) is True
        else:
            with pytest.raises(TransitionError):
                attempt_transition(final, target)


def test_checkout_transitions() -> None:
    assert checkout_transition(CheckoutStatus.OPEN, CheckoutStatus.PENDING)
    assert checkout_transition(CheckoutStatus.PENDING, CheckoutStatus.OPEN)
    assert checkout_transition(CheckoutStatus.PENDING, CheckoutStatus.PAID)
    # An operator's cancel while a payment is live (the service checks nothing is paid).
    assert checkout_transition(CheckoutStatus.PENDING, CheckoutStatus.CANCELLED)
    for final in (CheckoutStatus.PAID, CheckoutStatus.EXPIRED, CheckoutStatus.CANCELLED):
        with pytest.raises(TransitionError):
            checkout_transition(final, CheckoutStatus.OPEN)


def minimal(**overrides: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "sandbox": False,
        "secret_key": "s" * 32,
        "public_base_url": "https://pay.example.com",
        "refund_account_keys": ["3cvJ4ar0M6zn4ZvJZk5QCOe6JjXQGm2v3y6c1W8m0mE="],
        "providers": {
            "paypro_kr": {
                "type": "paypro",
                "base_url": "https://api.paypro.example",
                "country": "KR",
                "api": "paymentLink",
                "merchant_no": "M1",
                "app_secret": "x",
                "sub_merchant_no": "S1",
            }
        },
        "stores": {
            "s": {"api_key_sha256": ["a" * 64], "return_url_origins": ["https://shop.example"]}
        },
    }
    raw.update(overrides)
    return raw


def test_missing_secrets_outside_sandbox_fail_clearly(tmp_path: Path) -> None:
    build_settings(minimal(), tmp_path)
    with pytest.raises(ConfigError, match="secret_key"):
        build_settings(minimal(secret_key=""), tmp_path)
    with pytest.raises(ConfigError, match="public_base_url"):
        build_settings(minimal(public_base_url=""), tmp_path)
    with pytest.raises(ConfigError, match="refund_account_keys is not set"):
        build_settings(minimal(refund_account_keys=[]), tmp_path)
    with pytest.raises(ConfigError, match="refund_account_keys: key 1"):
        build_settings(minimal(refund_account_keys=["not-a-key"]), tmp_path)
    broken = minimal()
    del broken["providers"]["paypro_kr"]["app_secret"]  # type: ignore[index]
    with pytest.raises(ConfigError, match="app_secret"):
        build_settings(broken, tmp_path)
    sandboxed = minimal()
    sandboxed["providers"]["paypro_kr"]["base_url"] = "sandbox"  # type: ignore[index]
    with pytest.raises(ConfigError, match="base_url"):
        build_settings(sandboxed, tmp_path)
    plain_keys = minimal(stores={"s": {"api_keys": ["k"], "return_url_origins": ["https://a.b"]}})
    with pytest.raises(ConfigError, match="api_key_sha256"):
        build_settings(plain_keys, tmp_path)


def test_environment_overrides_any_key() -> None:
    raw = minimal()
    apply_env_overrides(
        raw,
        {
            "DATABASE_URL": "postgres://u@h/db",
            "CHECKOUT__PROVIDERS__PAYPRO_KR__APP_SECRET": "from-env",
            "CHECKOUT__PROVIDERS__PAYPRO_KR__READ_TIMEOUT": "7.5",
        },
    )
    assert raw["providers"]["paypro_kr"]["app_secret"] == "from-env"  # type: ignore[index]
    assert raw["providers"]["paypro_kr"]["read_timeout"] == 7.5  # type: ignore[index]
    settings = build_settings(raw, Path("/tmp"))
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.providers["paypro_kr"].read_timeout == 7.5


def test_logs_are_masked() -> None:
    line = "payer minsu.kim@example.com 010-1234-5678 born 1990-05-17"
    masked = mask_text(line)
    assert "minsu" not in masked and "1234" not in masked and "1990" not in masked


@pytest.mark.parametrize("status", list(CheckoutStatus))
@pytest.mark.parametrize("allow_pending", [False, True])
def test_cancellable_is_what_cancel_accepts(status: CheckoutStatus, allow_pending: bool) -> None:
    """The console shows "Cancel checkout" exactly when the ledger's cancel rule would take
    it: open (or pending, for an operator) with nothing paid."""
    from checkout.domain.ledger import cancellable

    allowed = {CheckoutStatus.OPEN} | ({CheckoutStatus.PENDING} if allow_pending else set())
    assert cancellable(status, 0, allow_pending=allow_pending) == (status in allowed)
    assert not cancellable(status, 1, allow_pending=allow_pending)
