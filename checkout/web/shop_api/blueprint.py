"""The blueprint itself, its one authentication and its one error handler."""

from __future__ import annotations

from flask import Blueprint

from checkout.web.shop_api import auth, errors

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(auth.authenticate)
errors.register(bp)
