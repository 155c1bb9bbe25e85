"""RFC 8785 canonical JSON: the fast path against the ``rfc8785`` reference, and the refusals."""

from __future__ import annotations

import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.log import canonical
from ledger.log.canonical import INT_MAX, INT_MIN, canonical_bytes, check_value, parse_json
from ledger.errors import InvalidEntry, LuodiError

# -- strategies ------------------------------------------------------------------

# Everything but lone surrogates (Cs) and control characters (Cc: C0, DEL and C1).
_char = st.characters(exclude_categories=("Cs", "Cc"))
_non_bmp = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=("Cs",))
_tricky = st.sampled_from(
    ['"', "\\", "/", "\u2028", "\u2029", "\ufeff", "\u00e9", "\ufb01", "\uffff", "\U0001f600", "<", "'"]
)

strings = st.text(st.one_of(_char, _tricky))
keys = st.one_of(
    strings,
    st.text(st.one_of(_char, _non_bmp, _tricky), min_size=1),  # keys outside the BMP take the fallback path
)
ints = st.one_of(st.integers(INT_MIN, INT_MAX), st.sampled_from([INT_MIN, INT_MAX, 0, -1, 1, 2**31, -(2**31), 2**32]))
scalars = st.one_of(st.none(), st.booleans(), ints, strings)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(keys, children, max_size=6)),
    max_leaves=30,
)
bmp_keys = st.text(
    st.one_of(
        st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc")),
        _tricky.filter(lambda c: c < "\U00010000"),
    )
)
bmp_json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(bmp_keys, children, max_size=6)),
    max_leaves=30,
)


def nest(depth: int, inner=0, container=list):
    """``depth`` containers around ``inner``."""
    value = inner
    for _ in range(depth):
        value = [value] if container is list else {"k": value}
    return value


# -- equality with the reference -----------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_canonical_bytes_equal_the_reference(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(bmp_json_values)
def test_fast_path_alone_equals_the_reference_on_bmp_keys(value):
    assert check_value(value) is True
    assert canonical.unchecked_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(_non_bmp, min_size=1), ints, min_size=1))
def test_a_key_outside_the_bmp_takes_the_fallback_path(value):
    assert check_value(value) is False
    assert check_value({"outer": [value]}) is False
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_parse_json_reads_canonical_bytes_back(value):
    assert parse_json(canonical_bytes(value)) == value
    assert parse_json(canonical_bytes(value).decode("utf-8")) == value


def test_keys_sort_by_utf16_code_units_not_code_points():
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FB01; by code point it sorts after.
    value = {"\ufb01": 2, "\U0001f600": 1, "a": 0}
    want = '{"a":0,"\U0001f600":1,"\ufb01":2}'.encode()
    assert rfc8785.dumps(value) == want
    assert canonical_bytes(value) == want
    assert canonical.unchecked_bytes(value) != want  # why the fallback exists


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, b"null"),
        (True, b"true"),
        (False, b"false"),
        (0, b"0"),
        (-1, b"-1"),
        (INT_MAX, b"9007199254740991"),
        (INT_MIN, b"-9007199254740991"),
        ("", b'""'),
        ('a"b\\c/d', b'"a\\"b\\\\c/d"'),
        ("\u00e9\u843d\u5730", "\"\u00e9\u843d\u5730\"".encode()),
        ("\u2028\u2029", '"\u2028\u2029"'.encode()),
        ([], b"[]"),
        ({}, b"{}"),
        ({"b": [1, {"d": None, "c": True}], "a": "x"}, b'{"a":"x","b":[1,{"c":true,"d":null}]}'),
        ({"10": 1, "9": 2, "A": 3, "a": 4, "\u00e9": 5}, '{"10":1,"9":2,"A":3,"a":4,"\u00e9":5}'.encode()),
    ],
)
def test_known_canonical_forms(value, want):
    assert canonical_bytes(value) == want
    assert rfc8785.dumps(value) == want


@pytest.mark.parametrize("value", [INT_MAX, INT_MIN, nest(32), nest(32, container=dict), nest(32, inner=[])])
def test_values_at_the_limits_are_accepted(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


# -- refusals ----------------------------------------------------------------------------

CONTROL = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]


def _refused(value):
    with pytest.raises(InvalidEntry):
        canonical_bytes(value)
    with pytest.raises(InvalidEntry):
        check_value(value)


def test_invalid_entry_is_a_luodi_error():
    assert issubclass(InvalidEntry, LuodiError)


@pytest.mark.parametrize("value", [1.0, 0.5, -0.0, 0.0, 1e300, math.nan, math.inf, -math.inf])
def test_floats_are_refused(value):
    _refused(value)
    _refused({"amount": value})
    _refused([1, 2, value])


@pytest.mark.parametrize("value", [INT_MAX + 1, INT_MIN - 1, 2**53, -(2**53), 2**64, -(2**100)])
def test_integers_beyond_exact_doubles_are_refused(value):
    _refused(value)
    _refused({"n": [value]})


@pytest.mark.parametrize("key", [1, 0, None, True, 1.5, b"k", ("k",)])
def test_non_string_keys_are_refused(key):
    _refused({key: 1})
    _refused({"ok": {key: 1}})


@pytest.mark.parametrize("ch", SURROGATES, ids=[f"U+{ord(c):04X}" for c in SURROGATES])
def test_lone_surrogates_are_refused(ch):
    _refused(ch)
    _refused(f"a{ch}b")
    _refused({f"k{ch}": 1})
    _refused([{"k": ch}])


@pytest.mark.parametrize("ch", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_control_characters_are_refused(ch):
    _refused(ch)
    _refused(f"text{ch}")
    _refused({f"k{ch}": "v"})
    _refused({"k": [ch]})


@pytest.mark.parametrize(
    "value",
    [b"bytes", bytearray(b"x"), {1, 2}, frozenset(), (1, 2), (), object(), 1j, range(3), {"k": (1,)}, [b""]],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_types_are_refused(value):
    _refused(value)


@pytest.mark.parametrize(
    "value",
    [nest(33), nest(33, container=dict), nest(33, inner=[]), nest(100), nest(33, inner="deep")],
    ids=["list33", "dict33", "empty34", "list100", "str33"],
)
def test_nesting_deeper_than_the_limit_is_refused(value):
    _refused(value)


def test_refusal_names_the_path_of_the_bad_value():
    with pytest.raises(InvalidEntry, match=r"\$\.a\[1\]\.b"):
        canonical_bytes({"a": [0, {"b": 1.5}]})


# Anything a caller might hand in: JSON values, and the values refused (floats, controls,
# lone surrogates, non-string keys, other types, integers out of range), at any depth.
_bad_scalars = st.one_of(
    st.floats(allow_nan=True),
    st.sampled_from([*CONTROL[:3], *SURROGATES[:2], b"x", (1,), INT_MAX + 1, INT_MIN - 1, object()]),
    st.text(st.one_of(_char, st.sampled_from([*CONTROL, *SURROGATES])), min_size=1),
)
_any_keys = st.one_of(keys, st.text(st.sampled_from(["a", *CONTROL[:2], *SURROGATES[:1]]), min_size=1),
                      st.sampled_from([1, None, True]))
any_values = st.recursive(
    st.one_of(scalars, _bad_scalars),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(_any_keys, children, max_size=5)),
    max_leaves=25,
)


def _outcome(check, value):
    try:
        return check(value)
    except InvalidEntry as exc:
        return ("refused", exc.detail)


@settings(max_examples=1000, deadline=None)
@given(any_values)
def test_the_quick_scan_agrees_with_the_member_by_member_walk(value):
    """check_value scans without building paths and walks only when in doubt: same
    answer, same refusal (naming the same path), whatever the value."""
    want = _outcome(canonical._walk, value)
    assert _outcome(check_value, value) == want
    assert canonical._scan(value) in (None, want)  # never a different answer, never a missed refusal


@pytest.mark.parametrize("depth", [31, 32, 33, 34])
@pytest.mark.parametrize("inner", [0, "s", [], {}, [1], {"k": 1}, 1.5])
@pytest.mark.parametrize("container", [list, dict])
def test_the_quick_scan_agrees_with_the_walk_at_the_depth_limit(depth, inner, container):
    value = nest(depth, inner, container)
    assert _outcome(check_value, value) == _outcome(canonical._walk, value)


# -- parse_json -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b"1.0",
        b"0.5",
        b"1e5",
        b"1E-2",
        b"-0.0",
        b'{"amount": 12.50}',
        b"[1, 2.0]",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b'{"x": NaN}',
        b'{"a": 1, "a": 2}',
        b'{"a": 1, "a": 1}',
        b'{"outer": {"k": 1, "k": 1}}',
        b"\xff",
        b'"\xc3\x28"',
        b'{"k": "\xed\xa0\x80"}',  # a surrogate encoded in UTF-8 (CESU) is not UTF-8
        b'"\xe9"',  # Latin-1, not UTF-8
        b"",
        b"{",
        b"[1,]",
        b'{"a":1,}',
        b"1 2",
        b"{'a': 1}",
        b"undefined",
        b'"unterminated',
        "\ufeff{}".encode(),
    ],
)
def test_parse_json_refuses(text):
    with pytest.raises(InvalidEntry):
        parse_json(text)
    try:
        as_str = text.decode("utf-8")
    except UnicodeDecodeError:
        return
    with pytest.raises(InvalidEntry):
        parse_json(as_str)


def test_parse_json_allow_duplicates_skips_only_the_duplicate_check():
    assert parse_json(b'{"a": 1, "a": 2}', allow_duplicates=True) == {"a": 2}
    with pytest.raises(InvalidEntry):
        parse_json(b'{"a": 1.5, "a": 2}', allow_duplicates=True)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"9007199254740991", INT_MAX),
        (b"-0", 0),
        (b' { "b" : [ true , null ] , "a" : "\\u00e9" } ', {"a": "\u00e9", "b": [True, None]}),
        ('{"\u843d":"\u5730"}'.encode(), {"\u843d": "\u5730"}),
    ],
)
def test_parse_json_reads_non_canonical_but_valid_json(text, value):
    assert parse_json(text) == value


@pytest.mark.parametrize(
    "text",
    [b"1" * 5000, b"-" + b"9" * 4301, b'{"n": ' + b"7" * 10000 + b"}"],
    ids=["5000-digits", "negative-4302-digits", "nested-10000-digits"],
)
def test_parse_json_refuses_huge_integer_literals_as_invalid_entry(text):
    """A number too long for int() must be an InvalidEntry, not a bare ValueError."""
    with pytest.raises(InvalidEntry):
        parse_json(text)


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_parse_json_refuses_pathological_nesting_as_invalid_entry(depth):
    """Deeply nested input must be an InvalidEntry, not a RecursionError escaping the error tree."""
    with pytest.raises(InvalidEntry):
        parse_json(b"[" * depth + b"]" * depth)
