"""The domain: money, states and transitions, the ledger's rules, routing, refunds.

May import: the standard library, pure libraries (`cryptography` for the account cipher,
`email_validator`) and other `checkout.domain` modules. No Flask, SQLAlchemy, provider,
store, service or web code (import-linter contracts in pyproject.toml).
"""
