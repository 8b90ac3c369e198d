"""What the shopper's pages show of a cash receipt (issue 24): the paid page's line saying a
receipt was issued and to which number (last four digits only), templates/_receipt_issued.html."""

from __future__ import annotations

from typing import Any

from flask import Flask

from checkout.services.receipts import shopper_receipt
from checkout.store.db import db


def shopper_cash_receipt(checkout_id: str) -> dict[str, Any] | None:
    return shopper_receipt(db.session, checkout_id)


def init_app(app: Flask) -> None:
    app.add_template_global(shopper_cash_receipt)
