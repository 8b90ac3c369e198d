"""The configured provider instances and the methods a checkout may offer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from checkout.domain.money import Money
from checkout.providers.base import MethodConfig, PaymentProvider


@dataclass(frozen=True)
class Catalog:
    providers: Mapping[str, PaymentProvider]  # by instance name
    methods: Mapping[str, MethodConfig]  # by method code, in configured order

    def for_test_mode(self) -> Catalog:
        """The same methods, each on its provider's test twin where one exists."""
        from dataclasses import replace

        from checkout.config import sandbox_twin_name

        methods = {
            code: replace(m, provider=sandbox_twin_name(m.provider))
            if sandbox_twin_name(m.provider) in self.providers
            else m
            for code, m in self.methods.items()
        }
        return Catalog(self.providers, methods)

    def provider_for(self, method: MethodConfig) -> PaymentProvider:
        return self.providers[method.provider]

    def methods_for(self, amount: Money, allowed: list[str] | None = None) -> list[MethodConfig]:
        """Methods whose provider takes this currency and amount, limited by the shop."""
        found = []
        for method in self.methods.values():
            if allowed is not None and method.code not in allowed:
                continue
            provider = self.providers[method.provider]
            if provider.currency == amount.currency and provider.supports_amount(amount):
                found.append(method)
        return found
