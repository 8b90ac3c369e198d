"""Payment providers: one package per provider, each a client (transport,
signing, timeouts) plus pure mapping functions. `base` holds the shared types."""
