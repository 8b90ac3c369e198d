"""Flask extensions, bound to an app with init_app in create_app."""

from flask_babel import Babel
from flask_wtf import CSRFProtect

from checkout.db import db

csrf = CSRFProtect()
babel = Babel()

__all__ = ["babel", "csrf", "db"]
