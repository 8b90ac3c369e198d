"""One provider spec per type (issue 22, item 4): a provider is its package
providers/<type>/, its simulator sandbox/<type>.py and one registration; one transport per
instance; payout clients built once per app."""

from __future__ import annotations

import ast
from pathlib import Path

from checkout.extensions import catalog_of
from checkout.providers.registry import PROVIDER_TYPES, SPECS, spec_of
from tests.conftest import LiveApp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "checkout"


def _own(rel: str) -> bool:
    """A provider's own files: its package and its simulator."""
    return any(rel.startswith(f"providers/{t}/") or rel == f"sandbox/{t}.py" for t in SPECS)


def _docstrings(tree: ast.AST) -> set[int]:
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def test_no_module_outside_a_providers_files_names_its_type() -> None:
    """No type switch (`cfg.type == "paypro"`) and no import of one provider's modules
    outside its package and its simulator: the rest of the app asks the spec."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if _own(rel) or rel == "providers/registry.py":  # the one registration
            continue
        tree = ast.parse(path.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and id(node) not in docs and node.value in SPECS:
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
            elif isinstance(node, ast.ImportFrom) and node.module:
                named = {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
                for t in SPECS:
                    if named & {f"checkout.providers.{t}", f"checkout.sandbox.{t}"} or any(
                        n.startswith((f"checkout.providers.{t}.", f"checkout.sandbox.{t}."))
                        for n in named
                    ):
                        found.append(f"{rel}:{node.lineno}: imports {t}")
    assert not found, "\n".join(found)


def test_every_registered_type_has_its_package_and_simulator() -> None:
    assert PROVIDER_TYPES == ("paypro", "teemopay", "diamondpay")
    for provider_type, spec in SPECS.items():
        assert spec.type == provider_type
        assert (PACKAGE / "providers" / provider_type / "__init__.py").exists()
        assert spec.sandbox_module == f"checkout.sandbox.{provider_type}"
        assert spec.required_settings
    assert spec_of("paypro").shared_notify_url and spec_of("paypro").per_ip_daily_rule
    assert not spec_of("teemopay").shared_notify_url and not spec_of("diamondpay").per_ip_daily_rule


def test_the_payout_client_uses_its_pay_in_clients_transport(live_app: LiveApp) -> None:
    catalog = catalog_of(live_app.app)
    assert set(catalog.payouts) == set(catalog.providers)
    for name, payouts in catalog.payouts.items():
        provider = catalog.providers[name]
        transport = getattr(payouts, "_http", None) or payouts._provider._http  # type: ignore[attr-defined]
        assert transport is provider._http, name  # type: ignore[attr-defined]
    # Test mode reads the same clients, built once with the app.
    assert catalog_of(live_app.app, livemode=False).payouts is catalog.payouts
