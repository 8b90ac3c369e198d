"""gunicorn entry point: `gunicorn wsgi:app`."""

from checkout import create_app
from checkout.i18n import warm_up
from checkout.logging_setup import configure_logging

configure_logging()
app = create_app()
# Compile every template and load every catalog now, in each worker as it starts, not in
# its first requests: a cold worker would otherwise do it in many threads at once.
for name in app.jinja_env.list_templates(extensions=["html"]):
    app.jinja_env.get_template(name)
warm_up(app)
