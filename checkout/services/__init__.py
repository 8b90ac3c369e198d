"""Use cases. Each owns its transaction.

May import: the store (`checkout.models`, `checkout.db`, the ledger writer
`services.ledger`), `checkout.providers`, `checkout.domain`, `checkout.config` and the
helpers below the web (metrics, i18n, urls, jsonsafe). Never `checkout.blueprints` or
`checkout.app`, and no Flask of their own: the web layer hands them what they need
(the provider clients come from the app's `Catalog`).
"""
