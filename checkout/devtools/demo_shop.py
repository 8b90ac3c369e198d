"""The Quickstart's demo shop (`python3 dev.py run`): receives the checkout's webhooks,
verifies them as a shop must (Standard Webhooks, with the store's `webhook_secret`), and
shows them live; `/embed` is a shop page that creates a checkout through the shop API (test
key) and shows it in an iframe with `embed.js`, from an origin of its own. Sandbox only; it
keeps the last events in memory."""

from __future__ import annotations

import json
import secrets
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask, Response, render_template_string, request
from standardwebhooks import Webhook, WebhookVerificationError

MAX_EVENTS = 200

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="2">
<title>Demo shop: webhooks</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:1rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.3rem;
text-align:left;vertical-align:top}.bad{color:#a4161a}.ok{color:#0a6b2d}code{font-size:.85rem}
</style></head><body><main>
<h1>Demo shop: webhooks received</h1>
<p>Each POST to <code>{{ url }}</code> is checked with the store's <code>webhook_secret</code>
(<code>standardwebhooks.Webhook(secret).verify(body, headers)</code>). This page refreshes
every 2 seconds. {{ events|length }} event(s).</p>
<table><thead><tr><th scope="col">received</th><th scope="col">signature</th>
<th scope="col">type</th><th scope="col">seq</th><th scope="col">order</th>
<th scope="col">status</th><th scope="col">amount paid</th></tr></thead><tbody>
{% for e in events %}<tr><td>{{ e.at }}</td>
<td class="{{ 'ok' if e.verified else 'bad' }}">{{ 'verified' if e.verified else 'REJECTED' }}</td>
<td>{{ e.type }}</td><td>{{ e.seq }}</td><td>{{ e.order_id }}</td><td>{{ e.status }}</td>
<td>{{ e.amount_paid }}</td></tr>
{% else %}<tr><td colspan="7">Nothing yet: pay a checkout and its events arrive here.</td></tr>
{% endfor %}</tbody></table></main></body></html>"""


EMBED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo shop: checkout in the page</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:1rem;color:#1a1a1a;max-width:40rem;
overflow-wrap:anywhere}
#events{font-size:.85rem;color:#444}</style></head><body><main>
<h1>Demo shop: your order</h1>
{% if error %}<p role="alert">The checkout could not be created: {{ error }}</p>{% else %}
<p>Order {{ order_id }}, KRW 15,000. This page is the shop ({{ origin }}); the checkout below is
framed from {{ checkout_base }} (the store's <code>allowed_origins</code> list this origin).</p>
<div id="pay"></div>
<h2>Events from the frame</h2><ol id="events"></ol>
<script src="{{ checkout_base }}/static/embed.js"></script>
<script>
  Checkout.onEvent(function (event) {
    var item = document.createElement("li");
    item.textContent = JSON.stringify(event);
    document.getElementById("events").appendChild(item);
  });
  Checkout.mount({{ checkout_url|tojson }}, "#pay");
</script>{% endif %}
</main></body></html>"""


def create_demo_shop_app(
    webhook_secret: str, checkout_base: str | None = None, api_key: str | None = None
) -> Flask:
    """The demo shop; with `checkout_base` and `api_key` it also serves `/embed`."""
    app = Flask(__name__)
    events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
    lock = threading.Lock()
    verifier = Webhook(webhook_secret)
    app.extensions["demo_shop_events"] = events

    @app.post("/webhooks")
    def receive() -> Response:
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        entry: dict[str, Any] = {"at": datetime.now(UTC).strftime("%H:%M:%S"), "verified": False}
        try:
            verifier.verify(body, headers)
        except WebhookVerificationError:
            with lock:
                events.appendleft(entry | {"type": "?", "seq": "", "order_id": "", "status": ""})
            return Response("bad signature\n", 400)
        event = json.loads(body)
        data = event.get("data") or {}
        entry |= {
            "verified": True,
            "type": event.get("type"),
            "seq": event.get("seq"),
            "order_id": data.get("order_id"),
            "status": data.get("status"),
            "amount_paid": f"{data.get('amount_paid')} {data.get('currency', '')}",
        }
        with lock:
            events.appendleft(entry)
        return Response(status=204)

    @app.get("/")
    def show() -> str:
        with lock:
            listed = list(events)
        return render_template_string(PAGE, events=listed, url=request.host_url + "webhooks")

    @app.get("/embed")
    def embed() -> str:
        if not checkout_base or not api_key:
            return Response("no checkout configured for the embed page\n", 404)  # type: ignore[return-value]
        origin = request.host_url.rstrip("/")
        order_id = f"embed-{secrets.token_hex(4)}"
        error, url = None, ""
        try:
            # What a shop's server does: create the checkout, then hand its URL to the page.
            answer = requests.post(
                f"{checkout_base}/api/v1/checkouts",
                headers={"Authorization": f"Bearer {api_key}"},
                json={
                    "order_id": order_id,
                    "amount": 15000,
                    "currency": "KRW",
                    "return_url": f"{origin}/",
                    "description": "Embedded demo order",
                },
                timeout=10,
            )
            if answer.status_code in (200, 201):
                url = answer.json()["url"]
            else:
                error = answer.json().get("error", {}).get("message", answer.text[:200])
        except requests.RequestException as exc:
            error = type(exc).__name__
        return render_template_string(
            EMBED_PAGE,
            error=error,
            order_id=order_id,
            origin=origin,
            checkout_base=checkout_base,
            checkout_url=url,
        )

    return app
