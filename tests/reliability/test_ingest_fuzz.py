"""Hostile input on ``POST /api/event`` (PRODUCT.md I1, I5, S6) against the real embedded app
in this process, on chDB and on a ClickHouse server: every answer is 202, 400 or 413 (never
5xx), JSON, with CORS; a 400 names the field at fault; and every beacon answered
``{"ok": true}`` is then decoded by the sessionizer (``corrupt == 0``), written without a
Store error, and stored exactly: the ``events`` table gains exactly the accepted beacons,
with their session ids, kinds and URLs.

Hypothesis draws (1) beacons that keep the contract but carry hostile content (NUL bytes,
every Unicode plane, SQL and template metacharacters, absurd URLs, 30 props, unknown fields
holding any JSON value), (2) valid beacons with one field replaced by a random JSON value of
any type or removed, (3) raw bodies: random bytes, invalid UTF-8 inside strings, lone
surrogate escapes, truncated JSON, NaN/Infinity/huge number literals, deep nesting.
A table of named cases pins the exact answer for the inputs issue #9 lists.
"""

from __future__ import annotations

import json
import logging
import pathlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import STORES, store_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core import urls
from services.core.beacon import BeaconError, decode_beacon

from .support import LONG, SITE, EmbeddedRun, wait_for, write_figures

pytestmark = pytest.mark.timeout(900 if LONG else 300)

MAX_BODY = 8192
KINDS = {"p": "pageview", "c": "click", "e": "engagement", "x": "custom"}
DROP_REASONS = {"unknown_site", "bad_click_url", "rate_limit", "bot", "excluded_path"}
KNOWN_FIELDS = ["t", "d", "u", "sid", "r", "cu", "ct", "ca", "ck", "sd", "vt", "n", "p"]
HOSTILE_TEXT = ["\x00", "a\x00b\x00", "'; DROP TABLE events; --", "' OR 1=1 --",
                "{site:String}", "{x:UInt8}", "\\", "\\'", "\\0", "<script>alert(1)</script>",
                "\u202e", "\ufeff", "\U0001f600", "\r\n", "\t", "\x7f", "\u0085", "%00", "é"]
ABSURD_URLS = [
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "about:blank",
    "https://demo.localhost/" + "a" * (2048 - 23), "https://bücher.example/straße?q=ü",
    "https://xn--bcher-kva.example/", "http://[::1]/", "http://[2001:db8::1]:8080/p?q=1",
    "http://[::1", "http://[fe80::1%25eth0]/x", "https://example.com:0/",
    "https://example.com:65536/", "https://example.com:-1/", "https://u:p@example.com/",
    "//example.com/x", "https://e.com/\x00", "https://e.com/%00%ff", "http://%zz/",
    "https://e.com/?utm_source=%ff%fe&utm_medium=" + "m" * 300 + "&utm_source=2",
    "https://amazon.com/dp/abcdefghij", "https://www.amazon.de/gp/product/b000000001/",
    "ftp://x/", "mailto:a@b.example", "https://\u202eevil.com/", "HTTPS://EXAMPLE.COM/",
    "https://e.com/" + "\U0001f600" * 100, "http://" + "a." * 120 + "com/", "https:",
    "https://", "\x00", " ", "https://demo.localhost/go/x?asin=B000000001",
]
LONG_URLS = ["https://e.com/" + "b" * (2049 - 14)]  # 2049 characters: over the contract


def text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    drawn = st.text(st.characters(codec="utf-8"), min_size=min_size, max_size=max_size)
    hostile = st.sampled_from([t for t in HOSTILE_TEXT if min_size <= len(t) <= max_size])
    return st.one_of(drawn, hostile, st.lists(hostile, max_size=4).map("".join).filter(
        lambda s: min_size <= len(s) <= max_size))


url_values = st.one_of(st.sampled_from(ABSURD_URLS),
                       text(200, 1).map(lambda s: "https://demo.localhost/" + s))
sids = st.from_regex(r"\A[A-Za-z0-9_-]{16,64}\Z")
known_domains = st.sampled_from([SITE, "www.demo.localhost", "WWW.Demo.LocalHost"])
unknown_domains = st.sampled_from(["unknown.example", "demo.localhost.evil", "a" * 253, "x1"])
huge_numbers = st.sampled_from([2**64, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, -0.0, 5e-324])
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_numbers,
                         st.floats(allow_nan=False, allow_infinity=False), text(40))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text(12), inner, max_size=4)), max_leaves=12)
unknown_names = text(20).filter(lambda name: name not in KNOWN_FIELDS)


@st.composite
def contract_beacons(draw: st.DrawFn) -> dict[str, Any]:
    """Beacons within the contract (T11), with hostile content in every free-text field."""
    kind = draw(st.sampled_from(sorted(KINDS)))
    beacon: dict[str, Any] = {"t": kind, "d": draw(st.one_of(known_domains, unknown_domains)
                                                   if draw(st.integers(0, 9)) == 0
                                                   else known_domains),
                              "u": draw(url_values), "sid": draw(sids)}
    if kind == "p" and draw(st.booleans()):
        beacon["r"] = draw(st.one_of(url_values, text(300)))
    elif kind == "c":
        beacon["cu"] = draw(url_values)
        beacon["ct"] = draw(text(200))
        if draw(st.booleans()):
            beacon["ca"] = draw(st.from_regex(r"\A[A-Za-z0-9]{10}\Z"))
        beacon["ck"] = draw(st.sampled_from(["primary", "middle", "modifier", "keyboard"]))
    elif kind == "e":
        beacon["sd"] = draw(st.integers(0, 100))
        beacon["vt"] = draw(st.integers(0, 86_400_000))
    elif kind == "x":
        beacon["n"] = draw(text(120, 1))
        beacon["p"] = draw(st.dictionaries(text(120, 1), text(500), max_size=30))
    for name, value in draw(st.dictionaries(unknown_names, json_values, max_size=3)).items():
        beacon[name] = value  # a newer tracker's fields: ignored, never an error
    return beacon


def encode(value: Any) -> bytes:
    """JSON text of any value, integers beyond 64 bits included (orjson refuses those)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()


def answer(response: Any) -> tuple[str, dict[str, Any]]:
    """Check what every answer must be; returns (accepted|dropped|rejected|oversize, body)."""
    assert response.status_code in (202, 400, 413), (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    if response.status_code == 202:
        if body == {"ok": True}:
            return "accepted", body
        assert set(body) == {"ok", "dropped"} and body["ok"] is True, body
        assert body["dropped"] in DROP_REASONS, body
        return "dropped", body
    assert isinstance(body.get("error"), str) and body["error"], body
    if response.status_code == 413:
        return "oversize", body
    assert isinstance(body.get("field"), str), body  # "" = the body as a whole
    return "rejected", body


class Ledger:
    """What one test posted and what the app answered; the accepted beacons' stored form."""

    def __init__(self, run: EmbeddedRun) -> None:
        self.run = run
        self.outcomes: Counter[str] = Counter()
        self.accepted: Counter[tuple[str, str, str]] = Counter()
        self.before = stored_rows(run)

    def post(self, body: bytes | Iterator[bytes], beacon: dict[str, Any] | None = None
             ) -> tuple[str, dict[str, Any]]:
        outcome, reply = answer(self.run.post(body))
        self.outcomes[outcome] += 1
        if outcome == "accepted":
            assert beacon is not None, f"a body the test did not build was accepted: {body!r}"
            self.accepted[(beacon["sid"], KINDS[beacon["t"]], beacon["u"])] += 1
        return outcome, reply

    def assert_all_accepted_are_stored(self, figures: str | None = None) -> None:
        """Every 202 {"ok": true} is stored once, exactly as sent, and nothing else is;
        ``figures`` names the .cache/reliability file the outcome counts go to."""
        run, expected = self.run, sum(self.accepted.values())
        stats = run.parts.sessionizer.stats

        def stored_delta() -> Counter[tuple[str, str, str]]:
            return stored_rows(run) - self.before

        assert wait_for(lambda: sum(stored_delta().values()) >= expected, 60, 0.2), (
            f"{expected} accepted, {sum(stored_delta().values())} stored")
        assert stored_delta() == self.accepted
        assert wait_for(lambda: run.stored_events() == run.session_events(), 30, 0.1), (
            "the sessions do not count the stored events")
        assert stats.corrupt == 0 and stats.store_retries == 0, stats
        assert run.parts.sessionizer.running
        assert run.parts.ingest_stats.unavailable == 0
        if figures:
            write_figures(figures, {**self.outcomes, "stored": sum(stored_delta().values()),
                                    "corrupt": stats.corrupt, "store_retries": stats.store_retries})


def stored_rows(run: EmbeddedRun) -> Counter[tuple[str, str, str]]:
    rows = run.store.query("SELECT session_id, name, url FROM events FINAL")
    return Counter((r["session_id"], r["name"], r["url"]) for r in rows)


@pytest.fixture(scope="module", params=STORES)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[EmbeddedRun]:
    """On each Store in turn: the hostile strings must arrive exactly through either one."""
    with EmbeddedRun(pathlib.Path(tmp_path_factory.mktemp("fuzz")),
                     **store_settings(request)) as embedded:
        yield embedded


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR
           or r.name.startswith(("clickport.sessionizer", "clickport.ingest"))]
    assert not bad, [f"{r.name}: {r.getMessage()[:200]}" for r in bad]


EXAMPLES = 2000 if LONG else 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def test_contract_beacons_with_hostile_content_are_accepted_and_stored_exactly(
        run: EmbeddedRun) -> None:
    ledger = Ledger(run)

    @FUZZ
    @given(beacon=contract_beacons())
    def post_one(beacon: dict[str, Any]) -> None:
        body = encode(beacon)
        outcome, reply = ledger.post(body, beacon)
        if len(body) > MAX_BODY:
            assert outcome == "oversize"
        elif urls.strip_www(beacon["d"]) != SITE:
            assert reply == {"ok": True, "dropped": "unknown_site"}
        elif beacon["t"] == "c" and not urls.is_web_url(beacon["cu"]):
            assert reply == {"ok": True, "dropped": "bad_click_url"}
        else:
            assert outcome == "accepted", (reply, beacon)

    post_one()
    assert ledger.outcomes["accepted"] > EXAMPLES // 3, ledger.outcomes
    ledger.assert_all_accepted_are_stored("fuzz-contract-beacons")


@st.composite
def mutated_beacons(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    beacon = draw(contract_beacons())
    field = draw(st.one_of(st.sampled_from(KNOWN_FIELDS), unknown_names))
    if draw(st.integers(0, 4)) == 0:
        beacon.pop(field, None)
    else:
        beacon[field] = draw(json_values)
    return beacon, field


def test_a_field_of_any_type_is_accepted_or_a_400_naming_that_field(run: EmbeddedRun) -> None:
    ledger = Ledger(run)

    @FUZZ
    @given(case=mutated_beacons())
    def post_one(case: tuple[dict[str, Any], str]) -> None:
        beacon, field = case
        body = encode(beacon)
        outcome, reply = ledger.post(body, beacon)
        if len(body) > MAX_BODY:
            assert outcome == "oversize"
        elif field not in KNOWN_FIELDS:
            assert outcome in ("accepted", "dropped"), (reply, field)  # unknown: ignored
        elif outcome == "rejected" and field != "t":  # another "t" asks for other fields
            named = reply["field"]
            assert named == field or named.startswith((f"{field}[", f"{field}.")), (
                reply, field)

    post_one()
    assert ledger.outcomes["rejected"] > EXAMPLES // 4, ledger.outcomes
    ledger.assert_all_accepted_are_stored("fuzz-mutated-fields")


BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80",
            b"\xe2\x82"]
LITERALS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-0", b"18446744073709551616",
            b"1e308", b"0x10", b"01", b"1.", b"+1", b"tru", b"nul"]


@st.composite
def raw_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """(what the body is, the body); the base is a valid engagement beacon."""
    valid = encode(RAW_BASE)
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return "random bytes", draw(st.binary(max_size=400))
    if choice == 1:
        return "invalid UTF-8", valid.replace(b"localhost/", b"localhost/" + draw(
            st.sampled_from(BAD_UTF8)), 1)
    if choice == 2:
        escape = draw(st.sampled_from([rb"\ud800", rb"\udc00", rb"\ud800\u0041", rb"\udfff"]))
        return "lone surrogate", valid.replace(b"localhost/", b"localhost/" + escape, 1)
    if choice == 3:
        return "truncated", valid[: draw(st.integers(0, len(valid) - 1))]
    if choice == 4:  # number literals JSON does not have, or that overflow
        literal = draw(st.sampled_from(LITERALS))
        return "literal " + literal.decode(), valid.replace(b'"sd": 10', b'"sd": ' + literal, 1)
    if choice == 5:  # deep nesting (within the body limit or not)
        depth = draw(st.integers(100, 4000))
        nested = draw(st.sampled_from([b"[" * depth + b"]" * depth,
                                       b'{"a":' * depth + b"1" + b"}" * depth]))
        where = draw(st.sampled_from(["zz", "u"]))
        return f"nested in {where}", valid.replace(b'"vt": 10', f'"{where}": '.encode() + nested, 1)
    return "framing", draw(st.sampled_from([
        b"\xef\xbb\xbf" + valid, valid + b"x", b"[" + valid + b"]", valid + b"\x00",
        valid.replace(b'"t": "e"', b'"t": "e", "t": "p"'), valid.upper()]))


RAW_BASE = {"t": "e", "d": SITE, "u": "https://demo.localhost/", "sid": "r" * 22, "sd": 10,
            "vt": 10}
MAY_BE_ACCEPTED = {"random bytes", "literal -0", "nested in zz"}


def test_raw_bodies_are_never_a_5xx(run: EmbeddedRun) -> None:
    ledger = Ledger(run)

    @FUZZ
    @given(case=raw_bodies())
    def post_one(case: tuple[str, bytes]) -> None:
        what, body = case
        outcome, reply = ledger.post(body, RAW_BASE)
        if what not in MAY_BE_ACCEPTED:
            assert outcome in ("rejected", "oversize"), (what, reply)

    post_one()
    ledger.assert_all_accepted_are_stored("fuzz-raw-bodies")


def nested(depth: int) -> bytes:
    return b'{"t":"p","d":"demo.localhost","u":"https://demo.localhost/","sid":"' + \
        b"n" * 22 + b'","zz":' + b"[" * depth + b"]" * depth + b"}"


PAGE = {"t": "p", "d": SITE, "u": "https://demo.localhost/", "sid": "N" * 22}
ENGAGE = {"t": "e", "d": SITE, "u": "https://demo.localhost/", "sid": "E" * 22, "sd": 5,
          "vt": 1}
CLICK = {"t": "c", "d": SITE, "u": "https://demo.localhost/", "sid": "C" * 22,
         "cu": "https://stripe.com/", "ct": "x", "ck": "primary"}
CUSTOM = {"t": "x", "d": SITE, "u": "https://demo.localhost/", "sid": "X" * 22, "n": "n"}
NAMED: list[tuple[str, bytes, int, str | None]] = [  # (case, body, status, field or drop)
    ("sd 2**64", encode({**ENGAGE, "sd": 2**64}), 400, "sd"),
    ("vt 2**64", encode({**ENGAGE, "vt": 2**64}), 400, "vt"),
    ("vt 1e308", encode({**ENGAGE, "vt": 1e308}), 400, "vt"),
    ("sd -0", encode(ENGAGE).replace(b'"sd": 5', b'"sd": -0'), 202, None),
    ("sd -0.0", encode({**ENGAGE, "sd": -0.0}), 400, "sd"),
    ("sd true", encode({**ENGAGE, "sd": True}), 400, "sd"),
    ("sd '5'", encode({**ENGAGE, "sd": "5"}), 400, "sd"),
    ("sd -1", encode({**ENGAGE, "sd": -1}), 400, "sd"),
    ("t number", encode({**PAGE, "t": 1}), 400, "t"),
    ("t unknown", encode({**PAGE, "t": "z"}), 400, "t"),
    ("no t", encode({k: v for k, v in PAGE.items() if k != "t"}), 400, "t"),
    ("d array", encode({**PAGE, "d": []}), 400, "d"),
    ("d trailing dot", encode({**PAGE, "d": "demo.localhost."}), 400, "d"),
    ("sid null", encode({**PAGE, "sid": None}), 400, "sid"),
    ("sid short", encode({**PAGE, "sid": "abc"}), 400, "sid"),
    ("sid NUL", encode({**PAGE, "sid": "a" * 20 + "\x00"}), 400, "sid"),
    ("u 2049 chars", encode({**PAGE, "u": LONG_URLS[0]}), 400, "u"),
    ("u empty", encode({**PAGE, "u": ""}), 400, "u"),
    ("cu 2049 chars", encode({**CLICK, "cu": LONG_URLS[0]}), 400, "cu"),
    ("ct 10,000 chars", encode({**CLICK, "ct": "x" * 10_000}), 413, None),
    ("ct 201 chars", encode({**CLICK, "ct": "x" * 201}), 400, "ct"),
    ("ca not an ASIN", encode({**CLICK, "ca": "B0-not-asin"}), 400, "ca"),
    ("ck unknown", encode({**CLICK, "ck": "triple"}), 400, "ck"),
    ("p 31 keys", encode({**CUSTOM, "p": {f"k{i}": "v" for i in range(31)}}), 400, "p"),
    ("p array", encode({**CUSTOM, "p": ["a"]}), 400, "p"),
    ("p value int", encode({**CUSTOM, "p": {"a": 1}}), 400, "p[...]"),
    ("p empty key", encode({**CUSTOM, "p": {"": "v"}}), 400, "p"),
    ("n empty", encode({**CUSTOM, "n": ""}), 400, "n"),
    ("malformed", b'{"t":"p",', 400, ""),
    ("empty body", b"", 400, ""),
    ("null", b"null", 400, ""),
    ("array", b"[]", 400, ""),
    ("NaN", encode(ENGAGE).replace(b'"sd": 5', b'"sd": NaN'), 400, ""),
    ("invalid UTF-8", encode(PAGE).replace(b"localhost/", b"localhost/\xff"), 400, ""),
    ("UTF-8 surrogate", encode(PAGE).replace(b"localhost/", b"localhost/\xed\xa0\x80"), 400,
     ""),
    ("lone surrogate escape", encode(PAGE).replace(b"localhost/", rb"localhost/\ud800"), 400,
     ""),
    ("4,000 levels deep", nested(4000), 400, ""),
    ("10,000 levels deep", nested(10_000), 413, None),
    ("8,193 bytes", encode({**PAGE, "zz": "x" * 8200})[:8193], 413, None),
    ("unknown site", encode({**PAGE, "d": "unknown.example"}), 202, "unknown_site"),
    ("cu javascript:", encode({**CLICK, "cu": "javascript:alert(1)"}), 202, "bad_click_url"),
    ("cu data:", encode({**CLICK, "cu": "data:text/html,x"}), 202, "bad_click_url"),
    ("cu no host", encode({**CLICK, "cu": "https://"}), 202, "bad_click_url"),
    ("cu IPv6 literal", encode({**CLICK, "cu": "http://[2001:db8::1]:8080/"}), 202, None),
    ("cu broken IPv6", encode({**CLICK, "cu": "http://[::1/"}), 202, "bad_click_url"),
    ("cu port 0", encode({**CLICK, "cu": "https://e.com:0/"}), 202, None),
    ("cu port 65536", encode({**CLICK, "cu": "https://e.com:65536/"}), 202, None),
    ("cu unicode host", encode({**CLICK, "cu": "https://bücher.de/ü"}), 202, None),
    ("u javascript:", encode({**PAGE, "u": "javascript:alert(1)"}), 202, None),
    ("u data:", encode({**PAGE, "u": "data:text/html,<b>x</b>"}), 202, None),
    ("u 2048 chars", encode({**PAGE, "u": "https://e.com/" + "c" * 2034}), 202, None),
    ("NUL everywhere", encode({**CUSTOM, "u": "https://e.com/\x00", "n": "\x00",
                               "p": {"\x00": "\x00"}}), 202, None),
    ("p 30 keys", encode({**CUSTOM, "p": {f"k{i}": "v" for i in range(30)}}), 202, None),
    ("unknown fields of every type", encode({**PAGE, "zz": [None, 2**64, -0.0, {"a": [1e308]}],
                                             "yy": {"": {}}}), 202, None),
]


@pytest.mark.parametrize(("case", "body", "status", "detail"), NAMED, ids=[n[0] for n in NAMED])
def test_named_hostile_inputs(run: EmbeddedRun, case: str, body: bytes, status: int,
                              detail: str | None) -> None:
    ledger = Ledger(run)
    beacon = orjson_or_none(body)
    outcome, reply = ledger.post(body, beacon)
    again, _ = ledger.post(body, beacon)
    assert again == outcome  # the same answer twice: no hidden state
    if status == 400:
        assert outcome == "rejected" and reply["field"] == detail, reply
    elif status == 202:
        assert reply == ({"ok": True} if detail is None else {"ok": True, "dropped": detail})
    else:
        assert outcome == "oversize", reply
    ledger.assert_all_accepted_are_stored()


def orjson_or_none(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and "sid" in value else None


def test_a_chunked_body_without_content_length_is_cut_at_the_limit(run: EmbeddedRun) -> None:
    def chunks(body: bytes, size: int = 512) -> Iterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start:start + size]

    ledger = Ledger(run)
    oversize = encode({**PAGE, "zz": "x" * 20_000})
    outcome, reply = ledger.post(chunks(oversize))
    assert outcome == "oversize" and reply["limit_bytes"] == MAX_BODY
    outcome, _ = ledger.post(chunks(b"x" * 1_000_000, 65536))  # a megabyte of junk
    assert outcome == "oversize"
    fine = {**PAGE, "sid": "chunked" + "c" * 20}
    assert ledger.post(chunks(encode(fine), 7), fine)[0] == "accepted"
    ledger.assert_all_accepted_are_stored()


def test_the_decoder_survives_ten_thousand_levels_of_nesting() -> None:
    """The 10k-deep body is over 8 KB, so HTTP answers 413 before decoding; the decoder
    itself must still fail cleanly for a service configured with a larger body limit."""
    for depth in (10_000, 100_000):
        with pytest.raises(BeaconError):
            decode_beacon(nested(depth))
