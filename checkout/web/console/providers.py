"""The providers page: each instance's methods, call statistics, failovers and circuit."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template

from checkout.extensions import catalog_of, settings_of
from checkout.services.admin import providers as provider_service
from checkout.store.db import db
from checkout.web.console.common import bp


@bp.get("/providers")
def providers() -> Any:
    settings = settings_of(current_app)
    names = sorted(settings.providers)
    circuits = catalog_of(current_app).circuits
    return render_template(
        "admin/providers.html",
        providers=[settings.providers[name] for name in names],
        methods=settings.methods,
        stats=provider_service.provider_stats(db.session),
        circuits=provider_service.circuit_views(db.session, circuits, names),
        failovers=provider_service.failover_stats(db.session),
        windows=[label for label, _span in provider_service.STATS_WINDOWS],
    )
