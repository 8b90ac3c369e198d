"""A store's cash-receipt issuer from configuration (config.py, receipts/registry.py,
sandbox/from_settings.py), and a live store's test twin issuing over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkout.config import CASH_RECEIPT_TWIN_LINK_ID, ConfigError, build_settings
from checkout.domain import receipts as r
from checkout.domain.money import Money
from checkout.receipts import registry
from checkout.receipts.popbill.mapping import ReceiptDetails
from checkout.sandbox.core import create_sandbox_app, sandbox_state
from checkout.sandbox.from_settings import sandbox_config_from_settings
from tests.support.live import LateBoundApp, serve

SECRET = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def raw(cash_receipts: dict | None = None, *, sandbox: bool = False) -> dict:
    store: dict = {"api_key_sha256": ["a" * 64], "return_url_origins": ["https://shop.example"]}
    if cash_receipts is not None:
        store["cash_receipts"] = cash_receipts
    return {
        "sandbox": sandbox,
        "secret_key": "s" * 32,
        "public_base_url": "https://pay.example.com",
        "sandbox_url": "http://127.0.0.1:5001",
        "refund_account_keys": ["3cvJ4ar0M6zn4ZvJZk5QCOe6JjXQGm2v3y6c1W8m0mE="],
        "stores": {"shop": store},
    }


LIVE = {
    "corp_num": "124-81-00998",
    "link_id": "SHOPLINK",
    "secret_key": SECRET,
    "test_bed": False,
    "designated_industry": True,
    "threshold": 150_000,
    "corp_name": "상호",
}


def test_a_store_without_the_table_issues_nothing(tmp_path: Path) -> None:
    store = build_settings(raw(), tmp_path).stores["shop"]
    assert store.cash_receipts is None
    assert registry.issuer_for(store, livemode=True, sandbox_url="http://x") is None


def test_a_live_store_uses_its_popbill_and_its_policy(tmp_path: Path) -> None:
    store = build_settings(raw(LIVE), tmp_path).stores["shop"]
    config = store.cash_receipts
    assert config is not None and config.corp_num == "1248100998" and not config.test_bed
    assert SECRET not in repr(config)
    issuer = registry.issuer_for(store, livemode=True, sandbox_url="http://127.0.0.1:5001")
    assert issuer is not None
    assert issuer.settings.service_id == "POPBILL"
    assert issuer.settings.api_base == "https://popbill.linkhub.co.kr"
    assert issuer.settings.link_id == "SHOPLINK" and issuer.settings.secret_key == SECRET
    assert registry.receipt_policy(config) == r.ReceiptPolicy(
        designated_industry=True, threshold=Money(150_000, "KRW"), taxable=True
    )


def test_test_checkouts_of_a_live_store_go_to_the_sandbox(tmp_path: Path) -> None:
    store = build_settings(raw(LIVE), tmp_path).stores["shop"]
    issuer = registry.issuer_for(store, livemode=False, sandbox_url="http://127.0.0.1:5001")
    assert issuer is not None
    s = issuer.settings
    assert s.api_base == "http://127.0.0.1:5001/popbill" and s.service_id == "POPBILL_TEST"
    assert s.link_id == CASH_RECEIPT_TWIN_LINK_ID and s.secret_key != SECRET
    assert s.corp_num == "1248100998" and issuer.name == "popbill:shop:test"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"corp_num": "1248100997"}, "check digit"),
        ({"secret_key": ""}, "SECRET_KEY"),
        ({"secret_key": "not base64!"}, "base64"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": "100000"}, "threshold"),
        ({"test_bed": "no"}, "test_bed"),
        ({"issuer": "portone"}, "only popbill"),
        ({"colour": "red"}, "unknown keys colour"),
    ],
)
def test_bad_configuration_stops_the_app_with_the_key(
    tmp_path: Path, change: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_settings(raw({**LIVE, **change}), tmp_path)


def test_a_sandbox_deployment_issues_through_the_simulator(tmp_path: Path) -> None:
    """The store, configured with its business number only, issues against a sandbox built
    from the same settings (as `flask sandbox` builds it): the credentials agree."""
    late = LateBoundApp()
    server = serve(late)
    settings = build_settings(
        {**raw({"corp_num": "1248100998"}, sandbox=True), "sandbox_url": server.url}, tmp_path
    )
    app = create_sandbox_app(sandbox_config_from_settings(settings))
    late.app = app
    try:
        store = settings.stores["shop"]
        assert store.cash_receipts is not None and store.cash_receipts.test_bed
        issuer = registry.issuer_for(store, livemode=True, sandbox_url=server.url)
        assert issuer is not None and issuer.settings.api_base == f"{server.url}/popbill"
        plan = r.receipt_for_payment(
            checkout_id="co_1",
            choice=r.ReceiptChoice(r.IdentityKind.NONE),
            received=Money(100_000, "KRW"),
            cash_method=True,
            policy=r.ReceiptPolicy(designated_industry=True),
        )
        assert isinstance(plan, r.IssuePlan)
        info = issuer.issue_once(plan, ReceiptDetails("ORD-1", "상품"))
        assert info.state is r.ReceiptState.ISSUED and info.masked_identity == "010-000-1234"
    finally:
        sandbox_state(app).notifier.stop()
        server.shutdown()


def test_a_live_stores_twin_issues_through_the_simulator(tmp_path: Path) -> None:
    settings = build_settings(raw(LIVE), tmp_path)
    app = create_sandbox_app(sandbox_config_from_settings(settings))
    server = serve(app)
    try:
        issuer = registry.issuer_for(
            settings.stores["shop"], livemode=False, sandbox_url=server.url
        )
        assert issuer is not None
        plan = r.receipt_for_payment(
            checkout_id="co_2",
            choice=r.ReceiptChoice(r.IdentityKind.EXPENSE_PROOF, "2208162517"),
            received=Money(30_000, "KRW"),
            cash_method=True,
            policy=registry.receipt_policy(settings.stores["shop"].cash_receipts),  # type: ignore[arg-type]
        )
        assert isinstance(plan, r.IssuePlan)
        info = issuer.issue_once(plan, ReceiptDetails("ORD-2", "상품"))
        assert info.trade_usage == "지출증빙용" and info.masked_identity == "******2517"
    finally:
        sandbox_state(app).notifier.stop()
        server.shutdown()
