"""One error module per layer (issue 22, item 5): each error a type with a code and whether
to retry, under one base per meaning, and no change to what callers catch."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from checkout.domain import errors as domain_errors
from checkout.providers import errors as provider_errors
from checkout.services import errors as service_errors
from checkout.store import errors as store_errors

ROOT = Path(__file__).resolve().parent.parent
MODULES = (domain_errors, provider_errors, store_errors, service_errors)
BASES = {
    domain_errors: (domain_errors.DomainError,),
    provider_errors: (provider_errors.ProviderError, provider_errors.NotifyError),
    store_errors: (store_errors.StoreError,),
    service_errors: (service_errors.ServiceError,),
}


def _error_classes(module: object) -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_error_has_one_base_a_code_and_whether_to_retry(module: object) -> None:
    classes = _error_classes(module)
    assert classes
    for cls in classes:
        assert issubclass(cls, BASES[module]), f"{cls.__name__} has none of the layer's bases"
        assert isinstance(cls.retryable, bool), cls.__name__  # type: ignore[attr-defined]
        assert hasattr(cls, "code") or "code" in inspect.signature(cls.__init__).parameters, (
            cls.__name__
        )


def test_errors_keep_what_callers_catch() -> None:
    for cls in (
        domain_errors.MoneyError,
        domain_errors.AccountError,
        domain_errors.RefundError,
        domain_errors.AccountCipherError,
        domain_errors.NotEncodable,
    ):
        assert issubclass(cls, ValueError), cls.__name__
    assert domain_errors.MoneyError("x").code == "invalid_money"
    assert domain_errors.RefundError("over", "too much").code == "over"
    timeout = provider_errors.ProviderTimeout("p", "timeout", "slow", retryable=True)
    assert (timeout.code, timeout.retryable, timeout.outcome_unknown) == ("timeout", True, True)
    assert provider_errors.ProviderError("p", "x", "y").outcome_unknown is False
    assert provider_errors.InvalidSignature("p", "bad").code == "bad_signature"
    assert service_errors.NotFound("checkout_not_found", "No such checkout.").retryable is False
    assert issubclass(store_errors.WriteTurnTimeout, TimeoutError)
    assert issubclass(store_errors.RefundWriteConflict, RuntimeError)
    assert service_errors.OperatorRefused("taken").code == "operator_refused"


@pytest.mark.parametrize("floor", ["domain", "store", "services"])
def test_each_floor_defines_its_errors_in_one_module(floor: str) -> None:
    elsewhere = [
        f"{path.relative_to(ROOT)}: {node.name}"
        for path in sorted((ROOT / "checkout" / floor).rglob("*.py"))
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(
            getattr(base, "id", "").endswith(("Error", "Exception", "Refusal"))
            for base in node.bases
        )
    ]
    assert not elsewhere, elsewhere
