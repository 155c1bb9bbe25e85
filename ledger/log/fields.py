"""Shape checks for entry bodies: one set of validators for every kind, the log's and a personality's.

A check is ``check(value, path)`` and raises :class:`InvalidEntry` naming the
JSON path (``$.payload.amount: must be ...``).  :func:`fields` checks an
object member by member and refuses unknown and missing members.  A value of
the wrong JSON type is refused by :func:`wrong_type`, which names the type
expected and the one found (``$.payload.amount: must be an integer (minor
units), not a string``).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable

from ..errors import InvalidEntry
from .clock import check_time

Check = Callable[[object, str], None]

HEX64 = re.compile(r"[0-9a-f]{64}")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def fail(path: str, why: str):
    raise InvalidEntry(f"{path}: {why}")


_JSON_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
    dict: "an object",
    list: "a list",
}


def json_type(value) -> str:
    """What a parsed JSON value is, in words (``true`` is a boolean, not an integer)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def wrong_type(value, path: str, expected: str):
    """Refuse a value of the wrong JSON type, naming the type expected (``expected``,
    which starts with it: "an integer (minor units)") and the one found.

    Validators test the type inline (``if type(value) is not int``: exactly, so a
    boolean is not an integer) and call this only to refuse."""
    fail(path, f"must be {expected}, not {json_type(value)}")


def is_hex64(value) -> bool:
    """64 lowercase hex digits: a receipt (leaf) hash, a ``prev`` link, a SHA-256 in hex."""
    return type(value) is str and HEX64.fullmatch(value) is not None


_NONE: dict[str, Check] = {}


def fields(obj, path: str, required: dict[str, Check], optional: dict[str, Check] | None = None) -> None:
    """Check an object member by member; refuse unknown and missing members.

    Unknown members are refused first, then the required members are checked
    in order (a missing one is refused where it comes), then the optional ones.
    Build the dicts once, outside the validator: it runs for every entry."""
    optional = optional or _NONE
    if type(obj) is not dict:
        wrong_type(obj, path, "an object")
    for name in obj:
        if name not in required and name not in optional:
            unknown = set(obj) - set(required) - set(optional)
            fail(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    for name, check in required.items():
        if name not in obj:
            fail(path, f"missing field {name}")
        check(obj[name], f"{path}.{name}")
    for name, check in optional.items():
        if name in obj:
            check(obj[name], f"{path}.{name}")


def anything(value, path) -> None:
    """Any value (for a member another check looks at as a whole)."""


def hex64(value, path):
    if type(value) is not str:
        wrong_type(value, path, "a string of 64 lowercase hex digits")
    if not is_hex64(value):
        fail(path, "must be 64 lowercase hex digits")


def string(value, path):
    if type(value) is not str:
        wrong_type(value, path, "a string")


def text(limit: int) -> Check:
    def check(value, path):
        if type(value) is not str:
            wrong_type(value, path, f"a string (non-empty text of at most {limit} characters)")
        if not value.strip() or len(value) > limit:
            fail(path, f"must be non-empty text of at most {limit} characters")

    return check


def date(value, path):
    if type(value) is not str:
        wrong_type(value, path, "a date (a string YYYY-MM-DD)")
    if not DATE_PATTERN.fullmatch(value):
        fail(path, "must be a date YYYY-MM-DD")
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        fail(path, f"{value} is not a real date")


def timestamp(value, path):
    if type(value) is not str:
        wrong_type(value, path, "a time (a string, RFC 3339 UTC with milliseconds and Z)")
    try:
        check_time(value)
    except InvalidEntry as exc:
        fail(path, exc.detail)


def literal(expected: str) -> Check:
    def check(value, path):
        if type(value) is not str:
            wrong_type(value, path, f"the string {expected!r}")
        if value != expected:
            fail(path, f"must be {expected!r}")

    return check


def one_of(options) -> Check:
    def check(value, path):
        if value not in options:
            fail(path, f"must be one of {', '.join(options)}")

    return check


def list_of(check_item: Check, lo: int, hi: int) -> Check:
    def check(value, path):
        if type(value) is not list:
            wrong_type(value, path, f"a list of {lo} to {hi} items")
        if not lo <= len(value) <= hi:
            fail(path, f"must list {lo} to {hi} items")
        for i, item in enumerate(value):
            check_item(item, f"{path}[{i}]")

    return check
