"""The README's snippets work as written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import requests

from tests.conftest import LiveApp
from tests.support.app_config import LINK_SECRET, SHOP_ORIGIN

README = Path(__file__).resolve().parent.parent / "README.md"


def snippet(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in blocks if containing in b]
    return block


def test_pay_link_snippet_builds_a_working_link(live_app: LiveApp) -> None:
    namespace: dict[str, Any] = {}
    exec(snippet("def pay_link"), namespace)  # noqa: S102 - our own README
    url = namespace["pay_link"](
        live_app.url, "shop", LINK_SECRET, "README-1", 15000, "KRW", f"{SHOP_ORIGIN}/done"
    )
    resp = requests.get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and "/c/co_" in resp.headers["Location"]


def test_curl_examples_run_as_written(live_app: LiveApp) -> None:
    import json
    import os
    import subprocess

    from tests.support.app_config import TEST_API_KEY

    script = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in script if "/api/v1/checkouts" in b and "ID=$(curl" in b]
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env={**os.environ, "CHECKOUT": live_app.url, "API_KEY": TEST_API_KEY},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    read, found, cancelled = outputs
    assert read["order_id"] == "A-1001" and read["status"] == "open"
    assert found["data"][0]["id"] == read["id"]
    assert cancelled["status"] == "cancelled"


def test_webhook_snippet_verifies_and_orders_events() -> None:
    import base64
    import json
    from datetime import UTC, datetime

    from checkout.services.webhooks import signed_headers

    namespace: dict[str, Any] = {}
    exec(snippet("def handle_checkout_webhook"), namespace)  # noqa: S102 - our own README
    handle = namespace["handle_checkout_webhook"]
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    last_seq: dict[str, int] = {}

    def send(seq: int, status: str, key: str = secret) -> int:
        data = {"id": "co_1", "order_id": "A-1", "status": status}
        body = json.dumps(
            {"id": f"evt_{seq}", "type": f"checkout.{status}", "seq": seq, "data": data}
        )
        headers = signed_headers(key, f"evt_{seq}", body, datetime.now(UTC))
        return handle(body.encode(), headers, secret, last_seq)

    assert send(2, "paid") == 200 and last_seq == {"co_1": 2}
    assert send(1, "pending") == 200 and last_seq == {"co_1": 2}  # older: ignored
    forged = "whsec_" + base64.b64encode(b"x" * 24).decode()
    assert send(3, "cancelled", key=forged) == 400 and last_seq == {"co_1": 2}


def _curl_commands() -> list[list[str]]:
    """Every curl command of the README's sh blocks that calls the shop API, as argv."""
    import shlex

    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S):
        lexer = shlex.shlex(block.replace("\\\n", " "), posix=True, punctuation_chars="|&;()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        argv: list[str] | None = None
        for token in lexer:
            if token.endswith("curl"):  # also "ID=$(curl"
                if argv is not None:
                    commands.append(argv)
                argv = []
            elif argv is not None and token in ("|", ")", ";", "&&", "&", "("):
                commands.append(argv)
                argv = None
            elif argv is not None:
                argv.append(token)
        if argv is not None:
            commands.append(argv)
    commands = [c for c in commands if any("/api/v1/" in arg for arg in c)]
    return commands


def _parse_curl(argv: list[str]) -> dict[str, Any]:
    from urllib.parse import parse_qsl, urlsplit

    values = {"$CHECKOUT": "http://127.0.0.1:5000", "$ID": "co_x", "$EVENT": "evt_x"}
    values["$LAST"] = "evt_y"
    method, url, headers, body = None, None, {}, None
    args = iter(argv)
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data"):
            body = next(args)
        elif arg.startswith("-"):
            continue  # -s, -f, -sf: no value
        else:
            url = arg
    assert url, argv
    for name, value in values.items():
        url = url.replace(name, value)
        body = body.replace(name, value) if body else body
    parts = urlsplit(url)
    return {
        "method": (method or ("POST" if body else "GET")).lower(),
        "path": parts.path.removeprefix("/api/v1"),
        "query": dict(parse_qsl(parts.query)),
        "headers": headers,
        "body": json.loads(body) if body else None,
    }


def _operation_for(spec: dict[str, Any], path: str, method: str) -> tuple[dict, dict]:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method in item:
            return item, item[method]
    raise AssertionError(f"{method.upper()} {path} is not in the spec")


def test_every_curl_example_matches_the_spec() -> None:
    """Path, method, query parameters, headers and body of each README curl call are the
    spec's (checkout/openapi.json), so the README and the contract cannot drift apart."""
    from checkout.openapi import openapi_spec
    from tests.test_openapi import errors_of

    spec = openapi_spec()
    calls = [_parse_curl(argv) for argv in _curl_commands()]
    seen = {
        (c["method"], _operation_for(spec, c["path"], c["method"])[1]["operationId"]) for c in calls
    }
    # Every operation the README teaches is there (the spec's eight, the contract excepted).
    assert {op for _m, op in seen} == {
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    for call in calls:
        item, operation = _operation_for(spec, call["path"], call["method"])
        params = [*item.get("parameters", []), *operation.get("parameters", [])]
        query = {p["name"]: p for p in params if p["in"] == "query"}
        for name, value in call["query"].items():
            assert name in query, (call["path"], name)
            schema = query[name]["schema"]
            typed: Any = int(value) if schema.get("type") == "integer" else value
            assert not errors_of(spec, schema, typed), (call["path"], name)
        for param in query.values():
            assert not param.get("required") or param["name"] in call["query"], call["path"]
        header_params = {p["name"].lower(): p for p in params if p["in"] == "header"}
        for name, value in call["headers"].items():
            if name.lower() in ("authorization", "content-type"):
                continue
            assert name.lower() in header_params, (call["path"], name)
            assert not errors_of(spec, header_params[name.lower()]["schema"], value)
        assert call["headers"]["Authorization"] == "Bearer $API_KEY"
        request_body = operation.get("requestBody")
        if request_body is None:
            assert call["body"] is None, call["path"]
            continue
        assert call["body"] is not None, call["path"]
        assert call["headers"].get("Content-Type") == "application/json"
        schema = request_body["content"]["application/json"]["schema"]
        assert not errors_of(spec, schema, call["body"]), (call["path"], call["body"])
