"""The store: the data model (models.py), the database (db.py: one engine per app, one
session per request, the write turns and the outage handling), the one ledger writer
(ledger.py: reads a checkout under its row lock, writes what a domain rule decided), the
statements it runs (statements.py) and the shop-webhook outbox rows (outbox.py).

May import: `checkout.domain`, SQLAlchemy, Flask (db.py binds a session to each request and
reads the app's engine) and other `checkout.store` modules. Never providers, receipts,
config, services or web: the use cases above hand it what it writes (import-linter).
"""
