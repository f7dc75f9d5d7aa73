"""The query API's routes (PRODUCT.md A1-A8), the composition of its modules.

Every read needs ``x-api-key`` and reads only the key's site (`auth`); query parameters are
checked at the edge (`params`); every value reaches SQL as a bound ``{name:Type}`` parameter
(`queries`); every error is JSON ``{"error": ...}`` (`errors`), with 4xx for bad input and
503 when the Store fails. ``GET /api/openapi.json`` describes it all (`openapi`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from starlette.routing import Route

from services.api import dashboard, goals, kpis, openapi, outbound, sessions
from services.api.auth import KeyCache
from services.api.context import ApiContext, utc_now
from services.core.store import Store


def api_routes(store: Store, now: Callable[[], dt.datetime] | None = None, *,
               goals_changed: Callable[[], None] | None = None) -> list[Route]:
    """``goals_changed`` is called after every goal write; the embedded app can pass its
    sessionizer's ``refresh_goals_soon`` so a change applies at once instead of within 5 s."""
    ctx = ApiContext(store, KeyCache(store), now or utc_now, goals_changed or (lambda: None))
    return [
        *outbound.routes(ctx),
        *sessions.routes(ctx),
        *kpis.routes(ctx),
        *goals.routes(ctx),
        *openapi.routes(),
        *dashboard.routes(),  # the page that reads this API (D1), at /dashboard
    ]
