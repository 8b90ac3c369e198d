"""The README and the docs site (mkdocs.yml, docs/): the site builds strict and
self-contained, the API reference is the spec's, and every example runs as written: each
page's `sh` blocks against `python3 dev.py run --port N`, the Python snippets against the app,
and every `curl` call of the shop API matches the contract (checkout/openapi.json)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import LiveApp
from tests.support.app_config import LINK_SECRET, SHOP_ORIGIN
from tests.support.devserver import running_devserver

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# Pages other tools write (dev.py bench, dev.py audit) and the provider contract.
TOOL_PAGES = {"benchmarks.md", "audit.md"}
# `console` blocks start servers or change the installation; only these pages may have them.
CONSOLE_PAGES = {
    "README.md",
    "quickstart.md",
    "operators/production.md",
    "contributors/translations.md",
    "contributors/benchmarks.md",
}


def _load_hook() -> Any:
    """The site's MkDocs hook (docs/hooks/openapi_reference.py), loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "openapi_reference", DOCS / "hooks" / "openapi_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


openapi_reference = _load_hook()


def pages() -> list[tuple[str, str]]:
    """(name, text) of the README and every docs page, in the site's order of the nav."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def walk(nav: list[Any]) -> list[str]:
        found = []
        for entry in nav:
            for value in entry.values() if isinstance(entry, dict) else [entry]:
                found += walk(value) if isinstance(value, list) else [value]
        return found

    ordered = [p for p in walk(config["nav"]) if (DOCS / p).exists()]
    rest = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    names = ordered + [p for p in rest if p not in ordered]
    return [("README.md", README.read_text())] + [(n, (DOCS / n).read_text()) for n in names]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def snippet(page: str, containing: str) -> str:
    [block] = [b for b in blocks((DOCS / page).read_text(), "python") if containing in b]
    return block


# ---------------------------------------------------------------- the site


def test_site_builds_strict_and_self_contained(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert built.returncode == 0, built.stderr
    html = list(site.rglob("*.html"))
    assert len(html) > 25
    external = re.compile(
        r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I
    )
    for page in html:
        text = page.read_text()
        assert not external.search(text), page  # no CDN, no external fonts or scripts
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
    reference = (site / "shops" / "reference.html").read_text()
    spec = openapi_reference.load_spec()
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                assert op["operationId"] in reference


def test_reference_is_rendered_from_the_spec() -> None:
    """The page follows the spec: a new operation or field shows without editing any page."""
    spec = openapi_reference.load_spec()
    page = openapi_reference.reference_markdown(spec)
    assert "`POST /api/v1/checkouts`" in page and "`GET /api/v1/events/{event_id}`" in page
    for name, schema in spec["components"]["schemas"].items():
        assert f"### {name}" in page
        for field in schema.get("properties", {}):
            assert f"| `{field}` |" in page, (name, field)
    changed = json.loads(json.dumps(spec))
    changed["paths"]["/things"] = {
        "get": {"operationId": "listThings", "summary": "List things.", "responses": {}}
    }
    changed["components"]["schemas"]["Checkout"]["properties"]["colour"] = {
        "type": "string",
        "description": "A new field.",
    }
    again = openapi_reference.reference_markdown(changed)
    assert "`GET /api/v1/things` (operation `listThings`)" in again
    assert "| `colour` | string |  | A new field. |" in again
    assert not (DOCS / "shops" / "reference.md").exists()  # generated, never written twice


def test_readme_is_a_newcomers_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 170
    assert "python3 dev.py run" in text and "python3 dev.py test" in text
    assert "docs/screenshots/" in text
    for step in ("Run", "Pay", "Watch the webhooks", "two operators", "Refund", "Approve", "sent"):
        assert step in text, step
    for target in re.findall(r"\]\((docs/[^)#]+|checkout/[^)#]+)\)", text):
        assert (ROOT / target).exists(), target


def test_only_setup_pages_have_console_blocks() -> None:
    for name, text in pages():
        if blocks(text, "console"):
            assert name in CONSOLE_PAGES, name


def test_no_example_hard_codes_a_port() -> None:
    """Every example reaches the app through BASE (the sandboxes and demo shop from its port)."""
    for name, text in pages():
        if name in TOOL_PAGES or name.startswith("dev/"):
            continue
        for block in blocks(text, "sh") + blocks(text, "python"):
            for line in block.splitlines():
                if re.search(r"127\.0\.0\.1:\d", line):
                    assert re.search(r"(BASE|base)\b.*127\.0\.0\.1:5000", line), (name, line)


# ---------------------------------------------------------------- the examples, run


def test_every_sh_example_runs_as_written(tmp_path: Path) -> None:
    """Each page's `sh` blocks, in order in one shell, against `dev.py run --port N`."""
    from checkout.devtools import devserver

    outputs: dict[str, str] = {}
    with running_devserver(tmp_path) as server:
        # A second shell's flask commands read the settings `run --port N` derived.
        env = dict(server.env)
        saved = dict(os.environ)
        try:
            devserver.apply_port(server.port, "127.0.0.1")
            env |= {k: v for k, v in os.environ.items() if k.startswith("CHECKOUT")}
        finally:
            os.environ.clear()
            os.environ.update(saved)
        env["BASE"] = server.base
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        ran = 0
        for name, text in pages():
            script = "\n".join(blocks(text, "sh"))
            if not script:
                continue
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert done.returncode == 0, (name, done.stdout[-2000:], done.stderr[-2000:])
            outputs[name] = done.stdout
            ran += 1
        assert ran >= 8
    # The Shop API page: create, read, find and cancel, as the page says.
    lines = [json.loads(line) for line in outputs["shops/api.md"].splitlines() if line.strip()]
    read, found, cancelled = lines
    assert read["order_id"] == "A-1001" and read["status"] == "open"
    assert found["data"][0]["id"] == read["id"]
    assert cancelled["status"] == "cancelled"
    # The refund examples end with the refund sent, by the run's worker.
    assert re.search(r"refund re_\S+: sent", outputs["shops/refunds.md"])
    assert re.search(r"refund re_\S+: sent", outputs["README.md"])
    assert "requested" in outputs["README.md"]  # above the threshold: waited for alice
    assert "operator carol created" in outputs["operators/console.md"]
    assert "Checkout.mount" in outputs["shops/embedding.md"]
    test_checkout, not_found = outputs["shops/test-mode.md"].split("\n")[:2]
    assert test_checkout.startswith("co_") and test_checkout.endswith(" False")
    assert not_found == "404"  # the live key never sees a test checkout


def test_pay_link_snippet_builds_a_working_link(live_app: LiveApp) -> None:
    namespace: dict[str, Any] = {}
    exec(snippet("shops/pay-links.md", "def pay_link"), namespace)  # noqa: S102 - our docs
    url = namespace["pay_link"](
        live_app.url, "shop", LINK_SECRET, "README-1", 15000, "KRW", f"{SHOP_ORIGIN}/done"
    )
    resp = requests.get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and "/c/co_" in resp.headers["Location"]


def test_webhook_snippet_verifies_and_orders_events() -> None:
    import base64
    from datetime import UTC, datetime

    from checkout.services.webhooks import signed_headers

    namespace: dict[str, Any] = {}
    exec(snippet("shops/webhooks.md", "def handle_checkout_webhook"), namespace)  # noqa: S102
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


# ---------------------------------------------------------------- curl calls vs the spec


def _curl_commands() -> list[list[str]]:
    """Every curl command of the pages' sh blocks that calls the shop API, as argv."""
    import shlex

    commands = []
    for _name, text in pages():
        for block in blocks(text, "sh"):
            lexer = shlex.shlex(block.replace("\\\n", " "), posix=True, punctuation_chars="|&;()")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            argv: list[str] | None = None
            for token in lexer:
                if token.endswith("curl"):  # also "ID=$(curl"
                    if argv is not None:
                        commands.append(argv)
                    argv = []
                elif argv is not None and (
                    token in ("|", ")", ";", "&&", "&", "(") or re.match(r"^[A-Z_]+=", token)
                ):  # the end of a command, or the next line's `VAR=$(`
                    commands.append(argv)
                    argv = None
                elif argv is not None:
                    argv.append(token)
            if argv is not None:
                commands.append(argv)
    return [c for c in commands if any("/api/v1/" in arg for arg in c)]


def _parse_curl(argv: list[str]) -> dict[str, Any]:
    from urllib.parse import parse_qsl, urlsplit

    values = {"$BASE": "http://127.0.0.1:5000", "$ID": "co_x", "$EVENT": "evt_x"}
    values |= {"$LAST": "evt_y", "$REFUND": "re_x", "${ID% *}": "co_x"}
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
        elif arg in ("-o", "-w", "-c", "-b"):
            next(args)
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


def _operation_for(spec: dict[str, Any], path: str, method: str) -> tuple[dict, dict] | None:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method in item:
            return item, item[method]
    return None


def test_every_curl_example_matches_the_spec() -> None:
    """Path, method, query parameters, headers and body of each curl call of the docs are the
    spec's (checkout/openapi.json), so the pages and the contract cannot drift apart."""
    from checkout.openapi import openapi_spec
    from tests.test_openapi import errors_of

    spec = openapi_spec()
    calls = [_parse_curl(argv) for argv in _curl_commands()]
    found = {id(c): _operation_for(spec, c["path"], c["method"]) for c in calls}
    outside = [c["path"] for c in calls if found[id(c)] is None]
    assert outside == [], outside
    seen = {found[id(c)][1]["operationId"] for c in calls}  # type: ignore[index]
    # Every operation the spec has is taught somewhere.
    assert seen == {
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    for call in calls:
        item, operation = found[id(call)]  # type: ignore[misc]
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
            if name.lower() in ("authorization", "content-type", "sec-fetch-dest"):
                continue
            assert name.lower() in header_params, (call["path"], name)
            assert not errors_of(spec, header_params[name.lower()]["schema"], value)
        assert call["headers"]["Authorization"] in (
            "Bearer $API_KEY",
            "Bearer $REFUND_KEY",
            "Bearer $KEY",
            "Bearer $LIVE_KEY",
        ), call
        request_body = operation.get("requestBody")
        if request_body is None:
            assert call["body"] is None, call["path"]
            continue
        assert call["body"] is not None, call["path"]
        assert call["headers"].get("Content-Type") == "application/json"
        schema = request_body["content"]["application/json"]["schema"]
        assert not errors_of(spec, schema, call["body"]), (call["path"], call["body"])


@pytest.mark.parametrize("page", ["shops/api.md", "shops/events.md", "shops/refunds.md"])
def test_pages_name_one_base_variable(page: str) -> None:
    assert "BASE=${BASE:-http://127.0.0.1:5000}" in (DOCS / page).read_text()
