"""Issuers of the receipts the law asks for (Korean cash receipts), one package per issuer,
shaped like checkout/providers/<type>/: signing, pure mapping, transport.

May import: `checkout.domain`, `checkout.config` (a store's issuer settings) and the
providers' transport and errors (`checkout.providers.http`, `checkout.providers.errors`).
Never the store, services or web: a floor of its own between services and providers
(import-linter contracts in pyproject.toml).
"""
