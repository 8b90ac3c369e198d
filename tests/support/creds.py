"""Test credentials shared by the sandbox and the provider configs in tests."""

from __future__ import annotations

from pathlib import Path

from checkout.sandbox.core import DiamondPlatform, SandboxConfig
from checkout.sandbox.keys import TeemoPayKeyFiles

PAYPRO_MERCHANT_NO = "M1000001"
PAYPRO_APP_SECRET = "paypro-test-secret-0001"
PAYPRO_SUB_MERCHANT_NO = "982773727848278231"

TEEMOPAY_APP_CODE = "APP000001"
TEEMOPAY_MERCHANT_NAME = "Test Shop"

DIAMOND_PLATFORM_ID = "PF0002"
DIAMOND_KEY = "diamond-test-key-0001"
DIAMOND_API_TOKEN = "diamond-test-token-0001"
# A legacy platform still on MD5 (Diamond Pay retired it; HMAC-SHA256 is the default).
DIAMOND_MD5_PLATFORM_ID = "PF0003"
DIAMOND_MD5_API_TOKEN = "diamond-test-token-md5"

# Fast retries so tests see several tries in well under a second.
TEST_NOTIFY_SCHEDULE = (0.1, 0.2, 0.4)


def sandbox_config(teemopay_keys: TeemoPayKeyFiles) -> SandboxConfig:
    return SandboxConfig(
        paypro_merchants={PAYPRO_MERCHANT_NO: PAYPRO_APP_SECRET},
        teemopay_apps={TEEMOPAY_APP_CODE: Path(teemopay_keys.merchant_public).read_bytes()},
        teemopay_private_key=Path(teemopay_keys.platform_private).read_bytes(),
        diamond_platforms={
            DIAMOND_PLATFORM_ID: DiamondPlatform(DIAMOND_KEY, DIAMOND_API_TOKEN),
            DIAMOND_MD5_PLATFORM_ID: DiamondPlatform(DIAMOND_KEY, DIAMOND_MD5_API_TOKEN, "MD5"),
        },
        notify_schedule=TEST_NOTIFY_SCHEDULE,
        notify_timeout=3.0,
    )
