"""What the dead-letter place holds, as operators see it (``clickport dlq list``, the admin
route of ``clickport dev``, ``/readyz``): the reasons, and one entry as JSON with a short
preview of its event. The place itself is the transport's (`services.core.transport`)."""

from __future__ import annotations

from typing import Any

import msgspec

from services.core.event import decode_event
from services.core.transport import DeadLetter

STORE_REJECTED = "store_rejected"  # the Store refused the batch the message was in
CORRUPT = "corrupt"  # the message cannot be decoded as an event
REASONS = (STORE_REJECTED, CORRUPT)
# What /readyz tells an operator to do while entries are pending (docs/operations.md).
FIX_HINT = ("clickport dlq list; fix the cause, then clickport dlq replay "
            "(or clickport dlq drop --yes)")
_PREVIEW_CHARS = 200
_DETAIL_CHARS = 2_000


def short(text: str, limit: int = _DETAIL_CHARS) -> str:
    """A detail kept with an entry: error messages can carry a whole statement."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def preview(value: bytes) -> dict[str, str] | None:
    """Kind, site and page URL (and a click's destination) of the entry's event; None when
    it does not decode."""
    try:
        event = decode_event(value)
    except msgspec.DecodeError:
        return None
    shown = {"kind": event.kind, "site": event.site, "url": short(event.url, _PREVIEW_CHARS),
             "event_id": event.id}
    if event.click_url:
        shown["click_url"] = short(event.click_url, _PREVIEW_CHARS)
    return shown


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {"id": letter.id, "reason": letter.reason, "detail": letter.detail,
            "partition": letter.partition, "offset": letter.offset, "at_ms": letter.at_ms,
            "bytes": len(letter.value), "event": preview(letter.value)}
