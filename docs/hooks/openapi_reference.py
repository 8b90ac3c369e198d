"""MkDocs hook: the Shop API reference page, rendered from checkout/openapi.json at build time.

The contract is written once, in the spec; this turns it into Markdown (operations,
parameters, bodies, answers, schemas, webhooks) as the page `shops/reference.md`. No
JavaScript, nothing fetched: the site stays self-contained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC = Path(__file__).resolve().parents[2] / "checkout" / "openapi.json"
PAGE = "shops/reference.md"
METHODS = ("get", "post", "put", "patch", "delete")


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=reference_markdown(load_spec())))
    return files


def load_spec() -> dict[str, Any]:
    return json.loads(SPEC.read_text())


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _ref_name(node: Any) -> str | None:
    if isinstance(node, dict) and "$ref" in node:
        return node["$ref"].rsplit("/", 1)[1]
    return None


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def _type_of(spec: dict[str, Any], schema: Any) -> str:
    name = _ref_name(schema)
    if name:
        return f"[{name}](#{name.lower()})"
    schema = _resolve(spec, schema) or {}
    if "oneOf" in schema or "anyOf" in schema:
        return " or ".join(_type_of(spec, s) for s in schema.get("oneOf", schema.get("anyOf")))
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"array of {_type_of(spec, schema.get('items', {}))}"
    if "enum" in schema:
        values = (v if isinstance(v, str) else json.dumps(v) for v in schema["enum"])
        return f"{kind}: " + ", ".join(f"`{v}`" for v in values)
    return f"{kind}"


def _constraints(schema: dict[str, Any]) -> str:
    words = []
    for key, label in (
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("pattern", "pattern"),
        ("format", "format"),
    ):
        if key in schema:
            words.append(f"{label} `{schema[key]}`")
    return "; ".join(words)


def _properties_table(spec: dict[str, Any], schema: Any) -> list[str]:
    schema = _resolve(spec, schema) or {}
    props = schema.get("properties") or {}
    if not props:
        return []
    required = set(schema.get("required", []))
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in props.items():
        resolved = _resolve(spec, prop) or {}
        text = " ".join(t for t in (resolved.get("description", ""), _constraints(resolved)) if t)
        lines.append(
            f"| `{name}` | {_cell(_type_of(spec, prop))} | {'yes' if name in required else ''} "
            f"| {_cell(text)} |"
        )
    return lines


def _parameters(spec: dict[str, Any], params: list[Any]) -> list[str]:
    if not params:
        return []
    lines = ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
    for param in (_resolve(spec, p) for p in params):
        schema = _resolve(spec, param.get("schema", {})) or {}
        text = " ".join(t for t in (param.get("description", ""), _constraints(schema)) if t)
        lines.append(
            f"| `{param['name']}` | {param['in']} | {_cell(_type_of(spec, schema))} | "
            f"{'yes' if param.get('required') else ''} | {_cell(text)} |"
        )
    return ["**Parameters**", "", *lines, ""]


def _body(spec: dict[str, Any], body: Any) -> list[str]:
    body = _resolve(spec, body)
    if not body:
        return []
    content = body.get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    name = _ref_name(schema)
    lines = [f"**Body** (JSON{f', [{name}](#{name.lower()})' if name else ''})", ""]
    if not name:
        lines += [*_properties_table(spec, schema), ""]
    examples = [content["example"]] if "example" in content else []
    examples += [e.get("value") for e in content.get("examples", {}).values()]
    for example in examples:
        lines += _json_block(example)
    return lines


def _json_block(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=2, ensure_ascii=False), "```", ""]


def _responses(spec: dict[str, Any], responses: dict[str, Any]) -> list[str]:
    lines = ["**Answers**", "", "| status | means | body |", "|---|---|---|"]
    for status, answer in responses.items():
        answer = _resolve(spec, answer)
        content = answer.get("content", {}).get("application/json", {})
        schema = content.get("schema")
        code = (content.get("example") or {}).get("error", {}).get("code")
        body = _type_of(spec, schema) if schema else ""
        lines.append(
            f"| `{status}` | {_cell(answer.get('description'))} | "
            f"{_cell(body)}{f' (e.g. `{code}`)' if code else ''} |"
        )
    return [*lines, ""]


def _operation(
    spec: dict[str, Any], prefix: str, path: str, method: str, item: dict[str, Any]
) -> list[str]:
    op = item[method]
    lines = [
        f"### {op.get('summary', op.get('operationId', ''))}",
        "",
        f"`{method.upper()} {prefix}{path}` (operation `{op.get('operationId', '')}`)",
        "",
    ]
    if op.get("description"):
        lines += [op["description"], ""]
    lines += _parameters(spec, [*item.get("parameters", []), *op.get("parameters", [])])
    lines += _body(spec, op.get("requestBody"))
    lines += _responses(spec, op.get("responses", {}))
    return lines


def reference_markdown(spec: dict[str, Any]) -> str:
    """The whole reference page as Markdown."""
    prefix = spec.get("servers", [{}])[0].get("url", "")
    info = spec.get("info", {})
    lines = [
        "# Shop API reference",
        "",
        "<!-- Generated at build time from checkout/openapi.json (docs/hooks/"
        "openapi_reference.py); edit the spec, not this page. -->",
        "",
        f"{info.get('title', '')}, version {info.get('version', '')} "
        f"(OpenAPI {spec.get('openapi', '')}). The spec itself is served at "
        f"`GET {prefix}/openapi.json` (no key needed).",
        "",
        info.get("description", ""),
        "",
        "## Operations",
        "",
    ]
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                lines += _operation(spec, prefix, path, method, item)
    if spec.get("webhooks"):
        lines += ["## Webhooks", "", "What we POST to the store's `webhook_url`.", ""]
        for item in spec["webhooks"].values():
            for method in METHODS:
                if method in item:
                    lines += _operation(spec, "", "(your webhook_url)", method, item)
    lines += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [schema["description"], ""]
        table = _properties_table(spec, schema)
        lines += [*(table or [f"Type: {_type_of(spec, schema)}"]), ""]
        if "example" in schema:
            lines += ["Example:", "", *_json_block(schema["example"])]
    return "\n".join(lines).rstrip() + "\n"
