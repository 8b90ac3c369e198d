"""checkout: a merchant-hosted checkout in front of PayPro, TeemoPay and Diamond Pay.

`checkout.create_app` is the app factory (checkout/app.py, the composition root). It is
loaded when first asked for (PEP 562), so importing one module of the package (the domain,
a provider, the sandbox) does not build the whole app's import graph.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from checkout.app import create_app

        return create_app
    raise AttributeError(f"module 'checkout' has no attribute {name!r}")
