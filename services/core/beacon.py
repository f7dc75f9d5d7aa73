"""The beacon contract (PRODUCT.md T11): what a tracker may POST to ``/api/event``.

Untrusted bytes become one of these structs only through `decode_beacon`, which is built once
at import. Decoding is strict (no type coercion) and unknown fields are ignored, so a newer
tracker never breaks an older ingest. Every failure becomes a `BeaconError` naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

SESSION_ID_PATTERN = "^[A-Za-z0-9_-]{16,64}$"
DOMAIN_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
ASIN_PATTERN = "^[A-Za-z0-9]{10}$"

Domain = Annotated[str, msgspec.Meta(pattern=DOMAIN_PATTERN, max_length=253)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
SessionId = Annotated[str, msgspec.Meta(pattern=SESSION_ID_PATTERN)]
LinkText = Annotated[str, msgspec.Meta(max_length=200)]
Asin = Annotated[str, msgspec.Meta(pattern=ASIN_PATTERN)]
ClickKind = Literal["primary", "middle", "modifier", "keyboard"]
Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]
VisibleMs = Annotated[int, msgspec.Meta(ge=0, le=86_400_000)]
EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
PropValue = Annotated[str, msgspec.Meta(max_length=500)]
PropKey = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Props = Annotated[dict[PropKey, PropValue], msgspec.Meta(max_length=30)]


class _Beacon(msgspec.Struct, tag_field="t", frozen=True):
    d: Domain
    u: Url
    sid: SessionId


class Pageview(_Beacon, tag="p", frozen=True):
    r: Annotated[str, msgspec.Meta(max_length=2048)] = ""


class Click(_Beacon, tag="c", frozen=True):
    cu: Url
    ct: LinkText = ""
    ca: Asin | None = None
    ck: ClickKind = "primary"


class Engagement(_Beacon, tag="e", frozen=True):
    sd: Percent
    vt: VisibleMs


class Custom(_Beacon, tag="x", frozen=True):
    n: EventName
    p: Props = msgspec.field(default_factory=dict)


Beacon = Pageview | Click | Engagement | Custom

_decoder = msgspec.json.Decoder(Beacon)
_FIELD_IN_MESSAGE = re.compile(r"`\$\.?([^`]*)`")  # also "at `key` in `$.p`"


class BeaconError(ValueError):
    """The body is not a valid beacon; ``field`` names the offending field ("" for the body)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def decode_beacon(body: bytes) -> Beacon:
    """Validate one beacon body, or raise `BeaconError` naming the field."""
    try:
        beacon: Beacon = _decoder.decode(body)
        return beacon
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _FIELD_IN_MESSAGE.search(text)
        field = found.group(1) if found else ""
        if "missing required field" in text:
            missing = re.search(r"missing required field `([^`]*)`", text)
            field = missing.group(1) if missing else field
        return _raise(text, field)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return _raise(f"malformed JSON: {exc}", "")


def _raise(message: str, field: str) -> Beacon:
    raise BeaconError(message, field)


def beacon_json_schema() -> dict[str, object]:
    """The JSON Schema of the beacon union, generated from the structs (schemas/ keeps a copy)."""
    return msgspec.json.schema(Beacon)
