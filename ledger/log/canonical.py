"""RFC 8785 (JSON Canonicalization Scheme) for the values Luodi hashes and signs.

``rfc8785.dumps`` is the reference.  It is pure Python and too slow for a log
that appends tens of thousands of entries a second, so :func:`canonical_bytes`
takes a faster path for the value shapes that :func:`check_value` admits:

* objects with string keys, strings, integers in the I-JSON range, booleans,
  ``null`` and arrays; never floats (money is integer minor units);
* strings that are valid UTF-8 (no lone surrogates) and hold no control
  characters, so RFC 8785 escapes nothing in them except ``"`` and ``\\``;
* object keys inside the Basic Multilingual Plane, where sorting by code point
  equals RFC 8785's sort by UTF-16 code units.  Values with a key outside the
  BMP fall back to the reference implementation.

For those shapes ``json.dumps(sort_keys=True, ensure_ascii=False)`` with compact
separators emits exactly the RFC 8785 bytes; ``tests/test_canonical.py`` proves
the two equal with property tests.
"""

from __future__ import annotations

import json
import re

import rfc8785

from ..errors import InvalidEntry

INT_MAX = 2**53 - 1  # RFC 8785 §3.2.2.3 / I-JSON: integers must be exact doubles
INT_MIN = -(2**53) + 1

# C0 controls, DEL, C1 controls and lone surrogates (which are not UTF-8).
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")
_MAX_DEPTH = 32

_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


def _check_string(s: str, where: str) -> None:
    m = _BAD_CHARS.search(s)
    if m:
        ch = ord(m.group())
        if 0xD800 <= ch <= 0xDFFF:
            raise InvalidEntry(f"{where}: string is not valid UTF-8 (lone surrogate U+{ch:04X})")
        raise InvalidEntry(f"{where}: string holds control character U+{ch:04X}")


def check_value(value, where: str = "$") -> bool:
    """Refuse anything outside the canonical subset; return True if the fast path applies.

    Raises :class:`InvalidEntry` naming the JSON path of the first bad value.
    A value that passes (nearly all) is checked by :func:`_scan`, which builds no
    paths and searches its strings in one go; any doubt goes to the member-by-member
    walk, which names what is wrong.
    """
    fast = _scan(value)
    return _walk(value, where) if fast is None else fast


def _scan(value) -> bool | None:
    """What :func:`_walk` returns for ``value``, or None if it might refuse it."""
    texts: list[str] = []
    keys: list[str] = []
    t = type(value)
    if t is not dict and t is not list:
        if t is str:
            texts.append(value)
        elif t is int:
            if not INT_MIN <= value <= INT_MAX:
                return None
        elif t is not bool and value is not None:
            return None
    else:
        stack = [(value, 0)]
        while stack:
            node, depth = stack.pop()
            if depth >= _MAX_DEPTH and node:  # its members would be nested too deep
                return None
            if type(node) is dict:
                for k in node:
                    if type(k) is not str:
                        return None
                keys.extend(node)
                members = node.values()
            else:
                members = node
            for v in members:
                t = type(v)
                if t is str:
                    texts.append(v)
                elif t is int:
                    if not INT_MIN <= v <= INT_MAX:
                        return None
                elif t is dict or t is list:
                    stack.append((v, depth + 1))
                elif t is not bool and v is not None:
                    return None
    if _BAD_CHARS.search("".join(texts)) or (keys and _BAD_CHARS.search("".join(keys))):
        return None
    return not (keys and _NON_BMP.search("".join(keys)))


def _walk(value, where: str = "$", _depth: int = 0) -> bool:
    """:func:`check_value` member by member, naming the JSON path of the first bad value."""
    if _depth > _MAX_DEPTH:
        raise InvalidEntry(f"{where}: nested deeper than {_MAX_DEPTH} levels")
    t = type(value)
    if t is str:
        _check_string(value, where)
        return True
    if t is bool or value is None:
        return True
    if t is int:
        if not INT_MIN <= value <= INT_MAX:
            raise InvalidEntry(f"{where}: integer {value} is outside ±(2^53-1)")
        return True
    if t is dict:
        fast = True
        for k, v in value.items():
            if type(k) is not str:
                raise InvalidEntry(f"{where}: object key {k!r} is not a string")
            _check_string(k, f"{where} key {k!r}")
            if fast and _NON_BMP.search(k):
                fast = False
            if not _walk(v, f"{where}.{k}", _depth + 1):
                fast = False
        return fast
    if t is list:
        fast = True
        for i, v in enumerate(value):
            if not _walk(v, f"{where}[{i}]", _depth + 1):
                fast = False
        return fast
    if t is float:
        raise InvalidEntry(f"{where}: floats are not allowed (use integer minor units or a decimal string)")
    raise InvalidEntry(f"{where}: {t.__name__} is not a JSON value")


def canonical_bytes(value) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``, after :func:`check_value`."""
    if check_value(value):
        return _encode(value).encode("utf-8")
    return reference_bytes(value)


def unchecked_bytes(value) -> bytes:
    """The fast path alone, for values already known to be in the BMP-key subset."""
    return _encode(value).encode("utf-8")


def reference_bytes(value) -> bytes:
    """RFC 8785 via the reference ``rfc8785`` package."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - check_value runs first
        raise InvalidEntry(str(exc)) from exc


def _no_float(text: str):
    raise InvalidEntry(f"float {text} is not allowed")


def _no_constant(text: str):
    raise InvalidEntry(f"{text} is not allowed")


def no_duplicate_keys(pairs: list) -> dict:
    """A JSON decoder's ``object_pairs_hook`` that refuses an object naming a key twice
    (RFC 8259 leaves it to the reader; readers differ on which value wins).
    The rule for entries here, and for request bodies at the HTTP edge."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise InvalidEntry(f"object has a duplicate key {twice!r}")
    return obj


_strict = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant, object_pairs_hook=no_duplicate_keys)
_lenient = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant)


def parse_json(data: bytes | str, *, allow_duplicates: bool = False):
    """Parse JSON strictly: no floats, NaN or Infinity, and no duplicate keys.

    ``allow_duplicates`` skips the duplicate-key check for callers that compare
    the bytes with their canonical re-encoding anyway (which then differs).
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return (_lenient if allow_duplicates else _strict).decode(text)
    except UnicodeDecodeError as exc:
        raise InvalidEntry(f"not valid UTF-8: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidEntry(f"not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise InvalidEntry("JSON is nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal past Python's digit limit
        raise InvalidEntry(f"not acceptable JSON: {exc}") from exc
