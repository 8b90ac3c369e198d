"""A whole app configuration for tests: the bundled sandbox config with test credentials."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from checkout.config import BUNDLED_SANDBOX_CONFIG
from checkout.sandbox.keys import TeemoPayKeyFiles
from tests.support import creds

TEST_API_KEY = "sk_test_shop_0001"
TEST_API_KEY_NEXT = "sk_test_shop_0002"  # a second key, as during a rotation
LINK_SECRET = "link-secret-shop-0001"
OTHER_STORE_API_KEY = "sk_test_other_0001"
SHOP_ORIGIN = "https://shop.example"


def test_config(
    *,
    sandbox_url: str,
    public_base_url: str,
    database_url: str,
    instance_path: Path,
    teemopay_keys: TeemoPayKeyFiles,
) -> dict[str, Any]:
    raw = tomllib.loads(BUNDLED_SANDBOX_CONFIG.read_text())
    raw.update(
        sandbox_url=sandbox_url,
        public_base_url=public_base_url,
        database_url=database_url,
        instance_path=str(instance_path),
        secret_key="test-secret-key",
    )
    # The demo store's refund approval thresholds are the Quickstart's; a test sets its own.
    raw.pop("refunds", None)
    raw["stores"] = {
        "shop": {
            "name": "Test Shop",
            "api_keys": [TEST_API_KEY, TEST_API_KEY_NEXT],
            "link_secret": LINK_SECRET,
            "allowed_origins": [SHOP_ORIGIN, "self"],
        },
        "other": {
            "name": "Other Shop",
            "api_keys": [OTHER_STORE_API_KEY],
            "allowed_origins": [SHOP_ORIGIN],
        },
    }
    for provider in raw["providers"].values():
        provider["connect_timeout"] = 2.0
        provider["read_timeout"] = 5.0
        if provider["type"] == "paypro":
            # PayPro's own per-IP rule (the bundled config relaxes it for developers).
            provider.pop("ip_daily_attempts", None)
            provider.pop("ip_daily_successes", None)
            provider.update(
                merchant_no=creds.PAYPRO_MERCHANT_NO,
                app_secret=creds.PAYPRO_APP_SECRET,
                sub_merchant_no=creds.PAYPRO_SUB_MERCHANT_NO,
            )
        elif provider["type"] == "teemopay":
            provider.update(
                app_code=creds.TEEMOPAY_APP_CODE,
                merchant_name=creds.TEEMOPAY_MERCHANT_NAME,
                private_key_file=str(teemopay_keys.merchant_private),
                platform_public_key_file=str(teemopay_keys.platform_public),
            )
        elif provider["type"] == "diamondpay":
            provider.update(
                platform_id=creds.DIAMOND_PLATFORM_ID,
                key=creds.DIAMOND_KEY,
                api_token=creds.DIAMOND_API_TOKEN,
            )
    return raw
