"""A sandbox that knows the merchants of the app's sandbox-mode provider instances.

Each provider's simulator (sandbox/<type>.py, named by its ProviderSpec) says what it needs
to know of an instance (`configure`) and what must exist before the instance is built
(`prepare_instance`: TeemoPay's key files).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from checkout.config import Settings
from checkout.providers.registry import spec_of
from checkout.sandbox.core import SandboxConfig


def simulator_module(provider_type: str) -> ModuleType:
    """The simulator module of a provider type (sandbox/<type>.py)."""
    return importlib.import_module(spec_of(provider_type).sandbox_module)


def prepare_sandbox_instances(settings: Settings) -> None:
    """Make what the sandbox-mode instances (and a live deployment's test twins) load."""
    for cfg in settings.providers.values():
        if cfg.sandbox:
            simulator_module(cfg.type).prepare_instance(cfg)


def sandbox_config_from_settings(settings: Settings) -> SandboxConfig:
    config = SandboxConfig()
    for cfg in settings.providers.values():
        if cfg.sandbox:
            simulator_module(cfg.type).configure(config, cfg)
    for store in settings.stores.values():
        receipts = store.cash_receipts
        if receipts is None:
            continue
        # A sandbox deployment's own members, and every live store's test twin.
        sandboxed = receipts if receipts.sandboxed else receipts.twin(settings.sandbox_url)
        config.popbill_partners[sandboxed.link_id] = sandboxed.secret_key
        config.popbill_members.add(sandboxed.corp_num)
    return config
