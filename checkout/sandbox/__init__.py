"""Simulators of the providers' wire protocols, served as a separate WSGI app.

The sandbox runs on its own port (its own thread in `make run`, its own process
beside gunicorn), never inside the checkout app, so a sync worker calling the
provider never waits on itself.

May import: Flask, `checkout.domain`, `checkout.config` (from_settings) and
`checkout.providers` (signing; the registry, which names each type's simulator module).
The app imports it only to set up its sandbox-mode instances (`from_settings`) and to
serve it (cli, devserver).
"""

from checkout.sandbox.core import SandboxConfig, SandboxState, create_sandbox_app

__all__ = ["SandboxConfig", "SandboxState", "create_sandbox_app"]
