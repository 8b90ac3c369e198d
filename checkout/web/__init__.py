"""The web floor: entrypoints that parse requests and render answers; the services do the work.

- shop_api/: the shop's JSON API (/api/v1), one way in;
- shopper/: the shopper's pages (checkout form, payment details, return, refund account,
  signed pay links);
- notify.py: the providers' signed callbacks, pay-ins and payouts, one pipeline;
- console/: the operator console (/admin) and the health endpoints;
- unavailable.py: a database that goes away answers 503, never 500.

May import: `checkout.services`, the store (`checkout.store`), providers' types,
`checkout.domain`, `checkout.config` and the helpers (extensions, i18n, limits, metrics,
forms). Never `checkout.app` (tests/test_layout.py); nothing below imports this floor
(import-linter contracts in pyproject.toml).
"""
