"""Loopback-only admin routes of a running ``clickport dev``: the CLI's ``sites add``,
``keys create|revoke`` and ``dlq list|replay|drop`` go through the process that holds chDB
and the disk queue, authenticated with the per-run token from ``runtime.json``."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.core import sites as site_rules
from services.core.dead_letters import letter_json
from services.core.sites import KnownSites
from services.core.store import Store
from services.core.transport import DeadLetters, TransportError
from services.embedded.runtime import Runtime
from services.servers.common import json_response


def admin_routes(store: Store, known_sites: KnownSites, runtime: Runtime | None,
                 dead_letters: DeadLetters, dead_letters_changed: Callable[[], None]
                 ) -> list[Route]:
    def allowed(request: Request) -> bool:
        token = request.headers.get("x-admin-token", "")
        expected = runtime.admin_token if runtime else ""
        return bool(expected) and hmac.compare_digest(token, expected)

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise site_rules.SiteError("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise site_rules.SiteError("the body must be a JSON object")
        return body

    async def sites_add(request: Request) -> Response:
        if not allowed(request):
            return json_response({"error": "forbidden"}, 403)
        try:
            body = await body_of(request)
            site, key = await asyncio.to_thread(
                site_rules.add_site, store, str(body.get("domain", "")),
                str(body.get("timezone", "UTC")))
        except site_rules.SiteError as exc:
            return json_response({"error": str(exc)}, 400)
        known_sites.add(site.domain)
        return json_response({"domain": site.domain, "timezone": site.timezone, "key": key})

    async def keys(request: Request) -> Response:
        if not allowed(request):
            return json_response({"error": "forbidden"}, 403)
        try:
            body = await body_of(request)
            if request.method == "POST":
                key = await asyncio.to_thread(site_rules.create_key, store,
                                              str(body.get("domain", "")))
                return json_response({"key": key})
            site = await asyncio.to_thread(site_rules.revoke_key, store,
                                           str(body.get("key", "")))
            return json_response({"revoked": True, "site": site})
        except site_rules.SiteError as exc:
            return json_response({"error": str(exc)}, 400)

    async def dlq(request: Request) -> Response:
        """``{"action": "list", "limit": N}`` | ``{"action": "replay"|"drop", "upto": ID}``
        (``upto`` null: every pending entry); a drop needs ``"yes": true``."""
        if not allowed(request):
            return json_response({"error": "forbidden"}, 403)
        try:
            body = await body_of(request)
            action, upto = body.get("action"), body.get("upto")
            if upto is not None and not isinstance(upto, int):
                return json_response({"error": "upto must be an entry id"}, 400)
            if action == "list":
                limit = body.get("limit", 50)
                if not isinstance(limit, int) or limit < 1:
                    return json_response({"error": "limit must be a positive integer"}, 400)
                entries = await dead_letters.entries(limit)
                return json_response({"pending": await dead_letters.pending(),
                                      "entries": [letter_json(e) for e in entries]})
            if action == "replay":
                done = {"replayed": await dead_letters.replay(upto)}
            elif action == "drop" and body.get("yes") is True:
                done = {"dropped": await dead_letters.drop(upto)}
            elif action == "drop":
                return json_response({"error": "a drop needs \"yes\": true"}, 400)
            else:
                return json_response({"error": "action must be list, replay or drop"}, 400)
        except site_rules.SiteError as exc:
            return json_response({"error": str(exc)}, 400)
        except TransportError as exc:
            return json_response({"error": str(exc)}, 503)
        dead_letters_changed()
        return json_response(done)

    return [Route("/admin/sites", sites_add, methods=["POST"]),
            Route("/admin/keys", keys, methods=["POST", "DELETE"]),
            Route("/admin/dlq", dlq, methods=["POST"])]
