"""Entries: canonical envelope bytes, leaf and receipt hashes, parse_entry and its refusals."""

from __future__ import annotations

from conftest import REGISTRY

import datetime as dt
import hashlib
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.log import clock as clock_mod
from ledger.log import entry as entry_mod
from ledger.log.clock import check_time, format_time
from ledger.log.entry import GENESIS_PREV, MAX_BODY_BYTES, body_bytes, parse_entry, seal
from ledger.errors import InvalidEntry
from ledger.log.note import Signer

TIME = "2026-11-29T04:31:04.123Z"
PREV = "ab" * 32
ORIGIN = "entry.luodi.example/log"
UTC8 = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def make_entry():
    """make_entry(body=None, kind="note", seq=7, prev=PREV, time=TIME) -> a sealed Entry."""

    def factory(body=None, kind="note", seq=7, prev=PREV, time=TIME):
        body = {"text": "a gift landed"} if body is None else body
        return seal(seq, prev, time, kind, body, body_bytes(kind, body, REGISTRY))

    return factory


@pytest.fixture
def genesis_body():
    """genesis_body(**overrides) -> a valid genesis body for a fresh key named ORIGIN."""
    signer = Signer.generate(ORIGIN)

    def factory(**overrides):
        body = {"origin": ORIGIN, "log_key": signer.verifier.to_string(), "hash": "sha256", "allocation": "fifo"}
        body.update(overrides)
        return body

    return factory


def envelope_bytes(env: dict, **dumps) -> bytes:
    """Non-canonical JSON of an envelope via the stdlib (for tamper cases)."""
    return json.dumps(env, **dumps).encode("utf-8")


# -- sealing ----------------------------------------------------------------------------

note_texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=300),
    st.text(
        st.sampled_from(['"', "\\", "/", "\u00e9", "\u843d", "\u5730", "\U0001f381", "\u2028", " ", "a"]), min_size=1
    ),
).filter(lambda t: t.strip())
times = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 12, 31), timezones=st.just(dt.timezone.utc)
).map(format_time)
prevs = st.one_of(st.just(GENESIS_PREV), st.binary(min_size=32, max_size=32).map(bytes.hex))


@settings(max_examples=300, deadline=None)
@given(text=note_texts, seq=st.integers(1, 2**53 - 1), prev=prevs, time=times, corrects=st.none() | prevs)
def test_sealed_bytes_are_rfc8785_of_the_envelope(text, seq, prev, time, corrects):
    body = {"text": text} if corrects is None else {"text": text, "corrects": corrects}
    e = seal(seq, prev, time, "note", body, body_bytes("note", body, REGISTRY))
    assert e.envelope() == {"seq": seq, "prev": prev, "time": time, "kind": "note", "body": body}
    assert e.canonical == rfc8785.dumps(e.envelope())
    assert e.leaf_hash == hashlib.sha256(b"\x00" + e.canonical).digest()
    assert e.receipt == e.leaf_hash.hex()
    assert parse_entry(e.canonical, REGISTRY) == e


def test_genesis_round_trip(genesis_body):
    body = genesis_body()
    e = seal(0, GENESIS_PREV, TIME, "genesis", body, body_bytes("genesis", body, REGISTRY))
    assert e.canonical == rfc8785.dumps(e.envelope())
    assert parse_entry(e.canonical, REGISTRY) == e


def test_known_entry_bytes_and_hashes(make_entry):
    e = make_entry({"text": 'caf\u00e9 "\u843d\u5730" \\o/'}, seq=3, prev=GENESIS_PREV, time="2026-01-02T03:04:05.006Z")
    want = (
        '{"body":{"text":"caf\u00e9 \\"\u843d\u5730\\" \\\\o/"},"kind":"note","prev":"'
        + "0" * 64
        + '","seq":3,"time":"2026-01-02T03:04:05.006Z"}'
    ).encode("utf-8")
    assert e.canonical == want
    assert e.leaf_hash == hashlib.sha256(b"\x00" + want).digest()
    assert e.receipt == hashlib.sha256(b"\x00" + want).hexdigest()
    assert len(e.receipt) == 64 and e.receipt == e.receipt.lower()


def test_body_bytes_are_the_canonical_body():
    body = {"text": "x", "corrects": "0" * 64}
    assert body_bytes("note", body, REGISTRY) == rfc8785.dumps(body) == b'{"corrects":"' + b"0" * 64 + b'","text":"x"}'


def test_entries_in_a_ledger_round_trip(ledger):
    ledger.append_batch([("note", {"text": "first"}), ("note", {"text": "second \u843d\u5730"})])
    prev = GENESIS_PREV
    for seq in range(ledger.size()):
        e = ledger.entry(seq)
        assert e.seq == seq and e.prev == prev
        assert e.canonical == rfc8785.dumps(e.envelope())
        assert parse_entry(e.canonical, REGISTRY) == e
        assert ledger.entry_by_receipt(e.receipt) == e
        prev = e.receipt


# -- parse_entry refusals -----------------------------------------------------------------


@pytest.fixture
def env():
    """env(**overrides) -> a valid envelope dict, to be broken by the test."""

    def factory(**overrides):
        value = {"seq": 7, "prev": PREV, "time": TIME, "kind": "note", "body": {"text": "caf\u00e9"}}
        value.update(overrides)
        return value

    return factory


def _refused(data: bytes):
    with pytest.raises(InvalidEntry):
        parse_entry(data, REGISTRY)


def test_the_valid_envelope_parses(env):
    assert parse_entry(rfc8785.dumps(env()), REGISTRY).body == {"text": "caf\u00e9"}


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b.replace(b":", b": "), id="space-after-colon"),
        pytest.param(lambda b: b.replace(b",", b", "), id="space-after-comma"),
        pytest.param(lambda b: b" " + b, id="leading-space"),
        pytest.param(lambda b: b + b"\n", id="trailing-newline"),
        pytest.param(lambda b: b.replace("\u00e9".encode(), b"\\u00e9"), id="escaped-unicode"),
        pytest.param(lambda b: b.replace(b"caf", b"\\u0063af"), id="escaped-ascii"),
        pytest.param(lambda b: b.replace(b'"seq":7', b'"seq":7.0'), id="float-seq"),
        pytest.param(lambda b: b.replace(b'"seq":7', b'"seq":07'), id="leading-zero"),
        pytest.param(lambda b: b.replace(b'"seq":7', b'"seq":-0'), id="minus-zero"),
        pytest.param(lambda b: b.replace(b"{", b'{"seq":7,', 1), id="duplicate-key"),
        pytest.param(lambda b: b.replace(b'{"text"', b'{"text":"other","text"'), id="duplicate-body-key"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b, id="bom"),
    ],
)
def test_parse_entry_refuses_non_canonical_bytes(env, mangle):
    good = rfc8785.dumps(env())
    bad = mangle(good)
    if bad == good:
        pytest.fail("the mangle did not change the bytes")
    _refused(bad)


def test_parse_entry_refuses_reordered_keys(env):
    e = env()
    _refused(envelope_bytes(e, ensure_ascii=False, separators=(",", ":")))  # insertion order, not sorted
    reordered = {"seq": e["seq"], "body": e["body"], "kind": e["kind"], "prev": e["prev"], "time": e["time"]}
    _refused(envelope_bytes(reordered, ensure_ascii=False, separators=(",", ":")))
    _refused(envelope_bytes(e, ensure_ascii=True, separators=(",", ":"), sort_keys=True))  # \u00e9
    assert envelope_bytes(e, ensure_ascii=False, separators=(",", ":"), sort_keys=True) == rfc8785.dumps(e)


def test_parse_entry_refuses_reordered_body_keys(env):
    e = env(body={"text": "x", "corrects": PREV})
    good = rfc8785.dumps(e)
    parse_entry(good, REGISTRY)
    sorted_body = b'{"corrects":"' + PREV.encode() + b'","text":"x"}'
    assert sorted_body in good
    _refused(good.replace(sorted_body, b'{"text":"x","corrects":"' + PREV.encode() + b'"}'))


@pytest.mark.parametrize("kind", ["no-such-kind", "Note", "note ", "", 1, None, ["note"]])
def test_parse_entry_refuses_unknown_kind(env, kind):
    _refused(rfc8785.dumps(env(kind=kind)))


def test_parse_entry_refuses_unknown_envelope_key(env):
    _refused(rfc8785.dumps({**env(), "extra": 1}))
    _refused(rfc8785.dumps({**env(), "Seq": 7}))


@pytest.mark.parametrize("key", ["seq", "prev", "time", "kind", "body"])
def test_parse_entry_refuses_missing_key(env, key):
    e = env()
    del e[key]
    _refused(rfc8785.dumps(e))


@pytest.mark.parametrize("data", [b"[]", b"null", b"1", b'"entry"', b"{}"])
def test_parse_entry_refuses_a_non_object(data):
    _refused(data)


@pytest.mark.parametrize(
    "prev",
    ["AB" * 32, "ab" * 31, "ab" * 33, "ab" * 31 + "zz", "0x" + "ab" * 31, "", 0, None, ["ab" * 32], "\uff10" * 64],
    ids=["upper", "short", "long", "non-hex", "0x", "empty", "int", "null", "list", "fullwidth-digits"],
)
def test_parse_entry_refuses_bad_prev(env, prev):
    _refused(rfc8785.dumps(env(prev=prev)))


@pytest.mark.parametrize("seq", [-1, "7", None, True, [7]])
def test_parse_entry_refuses_bad_seq(env, seq):
    _refused(rfc8785.dumps(env(seq=seq)))


def test_parse_entry_refuses_seq_beyond_exact_integers(env):
    """seq must stay an RFC 8785 integer: beyond 2**53-1 rfc8785 itself refuses the envelope."""
    data = rfc8785.dumps(env(seq=2**53 - 1)).replace(b'"seq":9007199254740991', b'"seq":9007199254740993')
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps(env(seq=2**53 + 1))
    _refused(data)


BAD_TIMES = [
    "2026-11-29T04:31:04Z",  # no milliseconds
    "2026-11-29T04:31:04.12Z",
    "2026-11-29T04:31:04.1234Z",
    "2026-11-29T04:31:04.123+00:00",  # offset instead of Z
    "2026-11-29T12:31:04.123+08:00",
    "2026-11-29T04:31:04.123z",
    "2026-11-29T04:31:04.123",
    "2026-11-29 04:31:04.123Z",
    "2026-11-29t04:31:04.123Z",
    "2026-02-30T00:00:00.000Z",  # no such day
    "2025-02-29T00:00:00.000Z",  # not a leap year
    "2026-13-01T00:00:00.000Z",
    "2026-00-10T00:00:00.000Z",
    "2026-11-00T00:00:00.000Z",
    "2026-11-29T24:00:00.000Z",
    "2026-11-29T23:60:00.000Z",
    "2026-11-29T23:59:60.000Z",
    "0000-01-01T00:00:00.000Z",
    "26-11-29T04:31:04.123Z",
    " 2026-11-29T04:31:04.123Z",
    "2026-11-29T04:31:04.123Z\n",
    "",
    1764390664123,
    None,
]


@pytest.mark.parametrize("time", BAD_TIMES, ids=[repr(t) for t in BAD_TIMES])
def test_parse_entry_refuses_bad_times(env, time):
    with pytest.raises(InvalidEntry):
        check_time(time)
    _refused(rfc8785.dumps(env(time=time)))


NON_ASCII_DIGIT_TIMES = [
    "\uff12\uff10\uff12\uff16-11-29T04:31:04.123Z",  # fullwidth digits
    "\u0662\u0660\u0662\u0666-11-29T04:31:04.123Z",  # Arabic-Indic digits
    "2026-11-29T04:31:04.\u0967\u0968\u0969Z",  # Devanagari digits
]


@pytest.mark.parametrize("time", NON_ASCII_DIGIT_TIMES, ids=["fullwidth", "arabic-indic", "devanagari"])
def test_times_with_non_ascii_digits_are_refused(env, time):
    """RFC 3339 digits are ASCII; a bare regex \\d also matches other scripts' digits."""
    with pytest.raises(InvalidEntry):
        check_time(time)
    _refused(rfc8785.dumps(env(time=time)))


@pytest.mark.parametrize(
    "body_text", [b'{"text":1.5}', b'{"text":"x","n":1.0}', b'{"text":"x","n":1e3}', b'{"text":NaN}']
)
def test_parse_entry_refuses_floats_in_body(env, body_text):
    data = rfc8785.dumps(env()).replace('{"text":"caf\u00e9"}'.encode(), body_text)
    assert body_text in data
    _refused(data)


def test_parse_entry_refuses_huge_integer_literals(env):
    """A stored row with a 5000-digit number is corrupt: an InvalidEntry, never a bare ValueError."""
    data = rfc8785.dumps(env()).replace(b'"seq":7', b'"seq":' + b"7" * 5000)
    _refused(data)


def test_parse_entry_refuses_pathological_nesting(env):
    """A stored row nested 100000 deep is corrupt: an InvalidEntry, never a RecursionError."""
    data = rfc8785.dumps(env()).replace(b'"caf', b"[" * 100_000 + b"]" * 100_000 + b',"t":"caf')
    _refused(data)


@pytest.mark.parametrize(
    "body",
    [
        {"text": "x", "extra": 1},
        {"text": "x", "Text": "y"},
        {"text": "x", "corrects": PREV, "amount": 5},
        {},
        {"corrects": PREV},
        {"text": 5},
        {"text": None},
        {"text": ["x"]},
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 4097},
        {"text": "x", "corrects": PREV.upper()},
        {"text": "x", "corrects": PREV[:-1]},
        {"text": "x", "corrects": PREV[:-1] + "g"},
        {"text": "x", "corrects": "g" + PREV[1:]},
        {"text": "x", "corrects": 5},
        {"text": "line one\nline two"},  # control characters are outside the canonical subset
        [],
        "text",
    ],
    ids=lambda b: repr(b)[:40],
)
def test_note_bodies_refused(env, body):
    with pytest.raises(InvalidEntry):
        body_bytes("note", body, REGISTRY)
    _refused(rfc8785.dumps(env(body=body)))


def test_note_body_limits_are_inclusive():
    body_bytes("note", {"text": "x" * 4096}, REGISTRY)
    body_bytes("note", {"text": "\U0001f381" * 4096}, REGISTRY)  # 4096 characters, 16 KiB of UTF-8
    body_bytes("note", {"text": "x", "corrects": PREV}, REGISTRY)


def test_body_over_64_kib_is_refused(genesis_body):
    # The note kind caps text at 4096 characters, so an oversized body needs a long
    # genesis origin (key names have no length limit of their own).
    name = "o" * MAX_BODY_BYTES
    log_key = Signer.generate(name).verifier.to_string()
    body = {"origin": name, "log_key": log_key, "hash": "sha256", "allocation": "fifo"}
    assert len(rfc8785.dumps(body)) > MAX_BODY_BYTES
    with pytest.raises(InvalidEntry, match="over the"):
        body_bytes("genesis", body, REGISTRY)
    _refused(rfc8785.dumps({"seq": 0, "prev": GENESIS_PREV, "time": TIME, "kind": "genesis", "body": body}))


def test_body_size_limit_is_on_the_canonical_bytes(monkeypatch):
    body = {"text": "\u843d" * 10}
    size = len(rfc8785.dumps(body))  # 3 bytes per character, plus the JSON around it
    assert size == len('{"text":""}') + 30
    monkeypatch.setattr(entry_mod, "MAX_BODY_BYTES", size)
    assert body_bytes("note", body, REGISTRY) == rfc8785.dumps(body)
    monkeypatch.setattr(entry_mod, "MAX_BODY_BYTES", size - 1)
    with pytest.raises(InvalidEntry):
        body_bytes("note", body, REGISTRY)


@pytest.mark.parametrize(
    "override",
    [
        {"hash": "sha512"},
        {"hash": "SHA256"},
        {"allocation": "lifo"},
        {"allocation": "FIFO"},
        {"origin": "other.luodi.example/log"},  # the key is named for another origin
        {"log_key": "not a key"},
        {"log_key": "entry.luodi.example/log+00000000+AQ=="},
        {"extra": "field"},
        {"hash": 256},
        {"origin": None},
    ],
    ids=lambda o: repr(o)[:40],
)
def test_genesis_bodies_refused(genesis_body, override):
    body = genesis_body(**override)
    with pytest.raises(InvalidEntry):
        body_bytes("genesis", body, REGISTRY)
    _refused(rfc8785.dumps({"seq": 0, "prev": GENESIS_PREV, "time": TIME, "kind": "genesis", "body": body}))


@pytest.mark.parametrize("field", ["origin", "log_key", "hash", "allocation"])
def test_genesis_missing_field_refused(genesis_body, field):
    body = genesis_body()
    del body[field]
    with pytest.raises(InvalidEntry):
        body_bytes("genesis", body, REGISTRY)


def test_genesis_log_key_named_for_another_origin_refused(genesis_body):
    other = Signer.generate("other.luodi.example/log").verifier.to_string()
    with pytest.raises(InvalidEntry, match="origin"):
        body_bytes("genesis", genesis_body(log_key=other), REGISTRY)


@pytest.mark.parametrize("kind", [None, 1, b"note"])
def test_body_bytes_refuses_non_string_kind(kind):
    with pytest.raises(InvalidEntry):
        body_bytes(kind, {"text": "x"}, REGISTRY)


# -- time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "want"),
    [
        (dt.datetime(2026, 11, 29, 4, 31, 4, 123456, tzinfo=dt.timezone.utc), "2026-11-29T04:31:04.123Z"),
        (dt.datetime(2026, 11, 29, 4, 31, 4, 999999, tzinfo=dt.timezone.utc), "2026-11-29T04:31:04.999Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=dt.timezone.utc), "2026-01-02T03:04:05.000Z"),
        (dt.datetime(2026, 11, 29, 12, 31, 4, 7000, tzinfo=UTC8), "2026-11-29T04:31:04.007Z"),
        (dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2025-12-31T23:30:00.000Z"),
    ],
)
def test_format_time_examples(moment, want):
    assert format_time(moment) == want
    assert check_time(want) == want


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=dt.datetime(1000, 1, 1, 12),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from([dt.timezone.utc, UTC8, dt.timezone(dt.timedelta(hours=-5))]),
    )
)
def test_format_time_shape(moment):
    text = format_time(moment)
    assert len(text) == 24 and text.isascii()
    assert check_time(text) == text
    parsed = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    assert dt.timedelta(0) <= moment - parsed < dt.timedelta(milliseconds=1)


@pytest.mark.parametrize("year", [1, 999])
def test_format_time_pads_years_below_1000(year):
    """RFC 3339 years are four digits; strftime's %Y does not pad them on every platform."""
    text = format_time(dt.datetime(year, 6, 1, tzinfo=dt.timezone.utc))
    assert text == f"{year:04d}-06-01T00:00:00.000Z"
    assert check_time(text) == text


def test_utc_now_passes_check_time():
    assert check_time(clock_mod.utc_now())
