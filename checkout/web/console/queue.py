"""The "Waiting" page: refunds waiting for a second operator's approval and checkouts
flagged for review, so whoever is on duty finds them without being told where to look;
and their count in every console page's nav."""

from __future__ import annotations

from typing import Any

from flask import g, render_template, request

from checkout.services.admin.queue import MODES, waiting_counts, waiting_queue
from checkout.store.db import db
from checkout.web.console.common import ActionForm, bp


@bp.context_processor
def nav_counts() -> dict[str, Any]:
    """The nav's count of what waits (only for a logged-in operator)."""
    if getattr(g, "operator", None) is None:
        return {}
    return {"waiting": waiting_counts(db.session)}


@bp.get("/waiting")
def waiting() -> Any:
    mode = request.args.get("mode", "")
    mode = mode if mode in MODES else ""
    return render_template(
        "admin/waiting.html", queue=waiting_queue(db.session, mode), mode=mode, form=ActionForm()
    )
