"""Blueprints parse requests and render answers; the services do the work.

May import: services, the store, providers' types, domain, config and the accessors in
`checkout.extensions` / `checkout.db`. Never `checkout.app` (tests/test_layout.py).
"""
