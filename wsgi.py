"""gunicorn entry point: `gunicorn wsgi:app`."""

from checkout import create_app
from checkout.logging_setup import configure_logging

configure_logging()
app = create_app()
