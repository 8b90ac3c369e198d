"""Tools for a developer's machine, never for production: the Quickstart's whole loop on
SQLite (devserver.py, `python3 dev.py run`) and its demo shop (demo_shop.py).

May import everything: it composes the app, the worker and the sandbox as a user would.
"""
