"""checkout: a merchant-hosted checkout in front of PayPro, TeemoPay and Diamond Pay."""

from checkout.app import create_app

__all__ = ["create_app"]
