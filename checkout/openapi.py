"""The shop API's contract (OpenAPI 3.1, checkout/openapi.json): served at /api/v1/openapi.json,
checked against the running app by schemathesis in the tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).with_name("openapi.json")


@cache
def openapi_text() -> str:
    return SPEC_PATH.read_text(encoding="utf-8")


def openapi_spec() -> dict[str, Any]:
    return json.loads(openapi_text())
