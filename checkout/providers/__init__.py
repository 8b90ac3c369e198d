"""Payment providers: one package per provider, each a client (transport, signing,
timeouts) plus pure mapping functions; `base` holds the shared types, `http` the one
transport, `spec` the ProviderSpec and `registry` the provider types, registered once.

May import: `checkout.domain`, `checkout.jsonsafe` and other `checkout.providers` modules.
Never config, services, web, models, db or the sandbox; no Flask or SQLAlchemy.
"""
