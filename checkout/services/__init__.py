"""Use cases: one a module, each owning its transaction; shopper/ holds the shopper's,
admin/ the operator console's.

May import: the store (`checkout.store`: models, db, the ledger writer), `checkout.providers`,
`checkout.receipts`, `checkout.domain`, `checkout.config` and the helpers below the web
(metrics, i18n, forms, urls, jsonsafe, qr, logging_setup). Never `checkout.web` or
`checkout.app`, and no Flask of their own: the web floor hands them what they need (the
provider clients come from the app's `Catalog`; texts are translated through checkout.i18n).
"""
