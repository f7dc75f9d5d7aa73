"""The enriched event that ingest publishes and the sessionizer consumes (the transport's
message; schemas/event.schema.json is generated from it).

Encoded as MessagePack maps: a field added later with a default is read as that default by
an older consumer's peer, and an unknown field is ignored, so producers and consumers can be
upgraded one at a time. The client IP is never a field.
"""

from __future__ import annotations

from typing import Literal

import msgspec

EventKind = Literal["pageview", "click", "engagement", "custom"]
SCHEMA_VERSION = 1


class Event(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    id: str  # 32 hex chars, assigned by ingest; the key that makes replays collapse
    site: str
    sid: str
    ts: int  # server receive time, ms since the Unix epoch
    kind: EventKind
    url: str
    path: str
    vid: int = 0  # daily-rotating visitor id (I3)
    v: int = SCHEMA_VERSION
    referrer: str = ""
    source: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_term: str = ""
    utm_content: str = ""
    device: str = ""
    browser: str = ""
    os: str = ""
    country: str = ""
    click_url: str = ""
    click_text: str = ""
    click_kind: str = ""
    click_domain: str = ""
    asin: str = ""
    scroll: int = 0
    visible_ms: int = 0
    name: str = ""  # custom events
    props: dict[str, str] = msgspec.field(default_factory=dict)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Event)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> Event:
    """Decode one transport message. Raises `msgspec.DecodeError` on a corrupt message."""
    return _decoder.decode(data)


def event_json_schema() -> dict[str, object]:
    return msgspec.json.schema(Event)
