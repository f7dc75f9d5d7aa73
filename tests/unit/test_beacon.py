from __future__ import annotations

import orjson
import pytest

from services.core.beacon import BeaconError, Click, Engagement, Pageview, decode_beacon

SID = "abcdefghijklmnopqrstuv"


def body(**fields: object) -> bytes:
    return orjson.dumps({"d": "example.com", "u": "https://example.com/", "sid": SID, **fields})


def test_pageview_click_engagement_decode() -> None:
    assert isinstance(decode_beacon(body(t="p", r="https://google.com/")), Pageview)
    click = decode_beacon(body(t="c", cu="https://stripe.com/", ct="Stripe", ck="middle"))
    assert isinstance(click, Click) and click.ck == "middle"
    assert isinstance(decode_beacon(body(t="e", sd=40, vt=1200)), Engagement)


def test_unknown_fields_are_ignored() -> None:
    assert isinstance(decode_beacon(body(t="p", future_field={"x": 1})), Pageview)


@pytest.mark.parametrize(("fields", "bad_field"), [
    ({"t": "p", "sid": "short"}, "sid"),
    ({"t": "p", "sid": "a" * 16 + "!"}, "sid"),
    ({"t": "c", "cu": "https://x.com", "ct": "x" * 201}, "ct"),
    ({"t": "c", "cu": "https://x.com", "ck": "triple"}, "ck"),
    ({"t": "c", "cu": "https://x.com", "ca": "SHORT"}, "ca"),
    ({"t": "c"}, "cu"),
    ({"t": "e", "sd": 101, "vt": 0}, "sd"),
    ({"t": "e", "sd": "50", "vt": 0}, "sd"),
    ({"t": "e", "sd": 5, "vt": -1}, "vt"),
    ({"t": "z"}, "t"),
    ({"t": "p", "u": "x" * 2049}, "u"),
    ({"t": "p", "d": "bad domain"}, "d"),
    ({"t": "x", "n": "signup", "p": {f"k{i}": "v" for i in range(31)}}, "p"),
])
def test_bad_fields_are_named(fields: dict[str, object], bad_field: str) -> None:
    with pytest.raises(BeaconError) as caught:
        decode_beacon(body(**fields))
    assert caught.value.field == bad_field


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"t":"p"'])
def test_malformed_bodies_are_rejected(raw: bytes) -> None:
    with pytest.raises(BeaconError):
        decode_beacon(raw)


def test_missing_required_field_is_named() -> None:
    with pytest.raises(BeaconError) as caught:
        decode_beacon(orjson.dumps({"t": "p", "d": "example.com", "u": "https://example.com/"}))
    assert caught.value.field == "sid"
