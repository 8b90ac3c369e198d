"""The OpenAPI contract (checkout/openapi.json) against the running app: served, valid, and
schemathesis finds nothing (no 500, every answer conforms, only documented status codes)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import pytest
import requests

from checkout.openapi import openapi_spec
from tests.conftest import LiveApp
from tests.support.app_config import TEST_API_KEY
from tests.test_webhooks import Receiver
from tests.test_webhooks import receiver as receiver  # a fixture

SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")
CONTRACT_TEST_KEY = "sk_test_contract_0001"
SECRET = "whsec_" + base64.b64encode(b"contract-webhook-secret-01234567").decode()


def test_the_spec_is_served_without_a_key_and_is_openapi_3_1(live_app: LiveApp) -> None:
    resp = requests.get(f"{live_app.url}/api/v1/openapi.json", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    spec = resp.json()
    assert spec == openapi_spec()
    assert spec["openapi"] == "3.1.0"
    assert {"checkoutEvent", "refundEvent", "webhookPing"} <= set(spec["webhooks"])
    refund_paths = {
        "/checkouts/{checkout_id}/refunds": {"get", "post"},
        "/refunds/{refund_id}": {"get"},
    }
    for path, methods in refund_paths.items():
        assert methods <= set(spec["paths"][path]), path
    # Every schema is valid JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    for name, schema in spec["components"]["schemas"].items():
        jsonschema_rs.meta.validate({"$schema": DIALECT, **schema}), name


DIALECT = "https://json-schema.org/draft/2020-12/schema"


def errors_of(spec: dict, schema: dict, instance: object) -> list[str]:
    """`instance` against `schema`, its $refs resolved in the spec's components."""
    root = {"$schema": DIALECT, "components": spec["components"], **schema}
    validator = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
    return [e.message for e in validator.iter_errors(instance)]


def test_every_example_in_the_spec_fits_its_schema() -> None:
    spec = openapi_spec()
    for name, schema in spec["components"]["schemas"].items():
        if "example" in schema:
            assert not errors_of(spec, schema, schema["example"]), name
    for name, hook in spec["webhooks"].items():
        content = hook["post"]["requestBody"]["content"]["application/json"]
        examples = [e["value"] for e in content.get("examples", {}).values()]
        examples += [content["example"]] if "example" in content else []
        assert examples, name
        for example in examples:
            assert not errors_of(spec, content["schema"], example), name


def _to_receiver(request: pytest.FixtureRequest) -> dict[str, object]:
    # Both keys carry the refund scope, so every operation runs, refunds included: the test
    # key's refunds are test mode's (paid out by the sandbox).
    return {
        "webhook_url": request.getfixturevalue("receiver").url,
        "webhook_secret": SECRET,
        "test_refund_api_keys": [CONTRACT_TEST_KEY],
        "refund_api_keys": [TEST_API_KEY],
    }


@pytest.mark.app_config(rate_limits={"api": "100000/minute"})
@pytest.mark.store_config(shop=_to_receiver)
@pytest.mark.parametrize("api_key", [TEST_API_KEY, CONTRACT_TEST_KEY], ids=["live", "test"])
def test_schemathesis_finds_nothing(
    live_app: LiveApp, receiver: Receiver, api_key: str, tmp_path: Path
) -> None:
    """Every operation, every phase and check (tests/schemathesis.toml), bounded examples."""
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file",
        str(SCHEMATHESIS_CONFIG),
        "run",
        f"{live_app.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {api_key}",
        "--checks",
        "all",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
    # In tmp_path: schemathesis keeps a cache in its working directory.
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=540, env=env, cwd=tmp_path
    )
    output = run.stdout + run.stderr
    print(output[output.find("Examples (") :])  # the figures, with pytest -s or -rP
    assert run.returncode == 0, output[-20000:]
    assert "11 selected / 11 total" in output, output[-5000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-5000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) > 100, output[-5000:]
    links = re.search(r"API Links:\s+(\d+) covered", output)
    assert links and int(links.group(1)) > 0, output[-5000:]
