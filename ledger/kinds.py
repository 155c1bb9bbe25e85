"""The registry of entry kinds and the rules for their bodies.

Each kind maps to a validator that raises :class:`InvalidEntry` for a body it
refuses.  A body is a JSON object; unknown fields are refused.  Later kinds
(charities, projects, donations, ...) register here the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import InvalidEntry, MalformedNote

Validator = Callable[[dict], None]
KINDS: dict[str, Validator] = {}

HASH_ALGORITHM = "sha256"
ALLOCATION_POLICY = "fifo"


def kind(name: str):
    """Register ``fn`` as the validator of entry kind ``name``."""

    def register(fn: Validator) -> Validator:
        if name in KINDS:
            raise ValueError(f"entry kind {name!r} is registered twice")
        KINDS[name] = fn
        return fn

    return register


def require_fields(body: dict, required: dict[str, type], optional: dict[str, type] | None = None) -> None:
    """Refuse missing, unknown or mistyped fields."""
    optional = optional or {}
    unknown = set(body) - set(required) - set(optional)
    if unknown:
        raise InvalidEntry(f"unknown field(s): {', '.join(sorted(unknown))}")
    for field in required:
        if field not in body:
            raise InvalidEntry(f"missing field: {field}")
    for field, t in {**required, **optional}.items():
        if field in body and not (isinstance(body[field], t) and not (t is int and type(body[field]) is bool)):
            raise InvalidEntry(f"field {field} must be {t.__name__}")


def validate_body(kind_name: str, body) -> None:
    validator = KINDS.get(kind_name)
    if validator is None:
        raise InvalidEntry(f"unknown entry kind {kind_name!r}")
    if type(body) is not dict:
        raise InvalidEntry("entry body must be a JSON object")
    validator(body)


@kind("genesis")
def _genesis(body: dict) -> None:
    """seq 0: names the log's origin, its verifier key, the hash and the allocation policy."""
    from .note import Verifier

    require_fields(body, {"origin": str, "log_key": str, "hash": str, "allocation": str})
    if body["hash"] != HASH_ALGORITHM:
        raise InvalidEntry(f"genesis hash must be {HASH_ALGORITHM!r}")
    if body["allocation"] != ALLOCATION_POLICY:
        raise InvalidEntry(f"genesis allocation policy must be {ALLOCATION_POLICY!r}")
    try:
        v = Verifier.from_string(body["log_key"])
    except MalformedNote as exc:
        raise InvalidEntry(f"genesis log_key: {exc.detail}") from exc
    if v.name != body["origin"]:
        raise InvalidEntry("genesis log_key must be named for the origin")


@kind("note")
def _note(body: dict) -> None:
    """A public notice from the operator (a policy change, an incident, a correction)."""
    require_fields(body, {"text": str}, {"corrects": str})
    if not body["text"].strip():
        raise InvalidEntry("note text must not be empty")
    if len(body["text"]) > 4096:
        raise InvalidEntry("note text must be at most 4096 characters")
    if "corrects" in body:
        _check_receipt(body["corrects"], "corrects")


def _check_receipt(value: str, field: str) -> None:
    if len(value) != 64 or value.strip("0123456789abcdef"):
        raise InvalidEntry(f"{field} must be a receipt hash: 64 lowercase hex digits")


from . import charity_kinds  # noqa: E402,F401  (registers the charity kinds)
