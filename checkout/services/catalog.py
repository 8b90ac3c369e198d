"""The configured provider instances and the methods a checkout may offer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from checkout.config import sandbox_twin_name
from checkout.domain.money import Money
from checkout.domain.routing import merge_payer_rules
from checkout.providers.base import MethodConfig, PayerRules, PaymentProvider, RouteConfig
from checkout.providers.payouts import PayoutProvider
from checkout.services.circuits import CircuitBreakers


@dataclass(frozen=True)
class Catalog:
    providers: Mapping[str, PaymentProvider]  # by instance name
    methods: Mapping[str, MethodConfig]  # by method code, in configured order
    # Per-instance circuit breakers (services/circuits.py); default thresholds when not given.
    circuits: CircuitBreakers = field(default_factory=lambda: CircuitBreakers({}))
    # Each instance's payout client (refunds), built once with the app on its pay-in
    # client's transport (providers/registry.payouts_of), by instance name.
    payouts: Mapping[str, PayoutProvider] = field(default_factory=dict)

    def for_test_mode(self) -> Catalog:
        """The same methods, each on its provider's test twin where one exists."""
        from dataclasses import replace

        def twin(name: str) -> str:
            return sandbox_twin_name(name) if sandbox_twin_name(name) in self.providers else name

        methods = {
            code: replace(
                m,
                provider=twin(m.provider),
                routes=tuple(replace(r, provider=twin(r.provider)) for r in m.routes),
            )
            for code, m in self.methods.items()
        }
        return Catalog(self.providers, methods, self.circuits, self.payouts)

    def routes_for(self, method: MethodConfig, amount: Money) -> list[RouteConfig]:
        """The method's routes (configured order) whose instance takes this amount."""
        found = []
        for route in method.candidates():
            provider = self.providers[route.provider]
            if provider.currency == amount.currency and provider.supports_amount(amount):
                found.append(route)
        return found

    def methods_for(self, amount: Money, allowed: list[str] | None = None) -> list[MethodConfig]:
        """Methods with a route whose provider takes this currency and amount, limited by
        the shop."""
        found = []
        for method in self.methods.values():
            if allowed is not None and method.code not in allowed:
                continue
            if self.routes_for(method, amount):
                found.append(method)
        return found

    def route_rules(self, method: MethodConfig, route: RouteConfig) -> PayerRules:
        return self.providers[route.provider].payer_rules(method.via(route))

    def payer_rules_for(self, method: MethodConfig, amount: Money) -> PayerRules:
        """What the form asks for this method: its routes' rules merged
        (checkout/domain/routing.py merge_payer_rules)."""
        routes = self.routes_for(method, amount) or list(method.candidates())
        return merge_payer_rules([self.route_rules(method, r) for r in routes])


class MethodKind(StrEnum):
    EWALLET = "ewallet"
    BANK_TRANSFER = "bank_transfer"
    CASH = "cash"


def method_kind(method: MethodConfig) -> MethodKind:
    """A method's kind: `kind` in its config (config.py fills it from the provider's own
    keys where the config names none), else a bank transfer."""
    configured = str(method.options.get("kind", ""))
    if configured in MethodKind.__members__.values():
        return MethodKind(configured)
    return MethodKind.BANK_TRANSFER
