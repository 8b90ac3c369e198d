"""Payment providers: one package per provider, each a client (transport, signing,
timeouts) plus pure mapping functions; `base` holds the shared types, `http` the one
transport, `spec` the ProviderSpec and `registry` the provider types, registered once.

May import: `checkout.domain`, `checkout.jsonsafe` and other `checkout.providers` modules.
Never config, the store, services, web or the sandbox; no Flask or SQLAlchemy.
"""
