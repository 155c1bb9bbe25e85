"""Ledger entries: the envelope, its canonical bytes, leaf hash and receipt hash.

An entry is ``{"seq", "prev", "time", "kind", "body"}``.  Its canonical bytes
are RFC 8785 of that envelope, its leaf hash is ``SHA-256(0x00 || canonical)``
(RFC 9162 §2.1.1) and its receipt hash is the leaf hash in lowercase hex.
``prev`` is the receipt hash of entry ``seq - 1`` (64 zeros for the genesis).

The envelope's keys sort as body, kind, prev, seq, time, and every value but
the body is ASCII that RFC 8785 leaves unescaped, so the canonical envelope is
``{"body":`` + canonical(body) + a fixed tail.  :func:`seal` builds it that way;
``tests/test_entry.py`` proves it equal to ``rfc8785.dumps`` of the envelope.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import InvalidEntry, InvalidInput
from .canonical import INT_MAX, canonical_bytes, parse_json
from .clock import check_time
from .fields import is_hex64
from .kinds import Registry
from .merkle import leaf_hash

GENESIS_PREV = "0" * 64
MAX_BODY_BYTES = 64 * 1024
_ENVELOPE_KEYS = {"seq", "prev", "time", "kind", "body"}


def receipt_bytes(receipt) -> bytes:
    """The leaf hash a receipt hash names; :class:`InvalidInput` unless it is 64 lowercase hex digits."""
    if not is_hex64(receipt):
        raise InvalidInput("a receipt hash is 64 lowercase hex digits")
    return bytes.fromhex(receipt)


def body_bytes(kind: str, body, registry: Registry) -> bytes:
    """Check a body against its kind and the canonical subset; return canonical(body)."""
    if type(kind) is not str:
        raise InvalidEntry("entry kind must be a string")
    registry.validate(kind, body)
    data = canonical_bytes(body)
    if len(data) > MAX_BODY_BYTES:
        raise InvalidEntry(f"canonical body is {len(data)} bytes, over the {MAX_BODY_BYTES}-byte limit")
    return data


class Entry(NamedTuple):
    """One sealed, immutable ledger entry (a named tuple: appends build tens of
    thousands a second, and tuples are the cheapest immutable records)."""

    seq: int
    prev: str
    time: str
    kind: str
    body: dict
    canonical: bytes
    leaf_hash: bytes

    def __eq__(self, other) -> bool:
        return isinstance(other, Entry) and self.canonical == other.canonical

    def __ne__(self, other) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.leaf_hash)

    def __repr__(self) -> str:
        return f"Entry(seq={self.seq}, kind={self.kind!r}, receipt={self.receipt})"

    @property
    def receipt(self) -> str:
        """The receipt hash a donor keeps: the leaf hash in lowercase hex."""
        return self.leaf_hash.hex()

    def envelope(self) -> dict:
        return {"seq": self.seq, "prev": self.prev, "time": self.time, "kind": self.kind, "body": self.body}


def seal(seq: int, prev: str, time: str, kind: str, body: dict, body_canonical: bytes) -> Entry:
    """Make the entry from a body already checked by :func:`body_bytes`.

    The leaf hash is :func:`ledger.log.merkle.leaf_hash` of the canonical bytes (RFC 9162 §2.1.1)."""
    canonical = b"".join(
        (
            b'{"body":',
            body_canonical,
            f',"kind":"{kind}","prev":"{prev}","seq":{seq},"time":"{time}"}}'.encode("ascii"),
        )
    )
    return Entry(seq, prev, time, kind, body, canonical, leaf_hash(canonical))


def load_entry(canonical: bytes) -> Entry:
    """An entry from bytes this log stored, without re-checking its rules (see :func:`parse_entry`)."""
    env = parse_json(canonical, allow_duplicates=True)
    return Entry(env["seq"], env["prev"], env["time"], env["kind"], env["body"], canonical, leaf_hash(canonical))


def parse_entry(canonical: bytes, registry: Registry) -> Entry:
    """Rebuild an entry from stored bytes, checking every rule and that the bytes are canonical."""
    # Duplicate keys cannot survive the canonical re-encoding compared below.
    env = parse_json(canonical, allow_duplicates=True)
    if type(env) is not dict or set(env) != _ENVELOPE_KEYS:
        raise InvalidEntry("envelope must have exactly seq, prev, time, kind and body")
    seq, prev, time, kind = env["seq"], env["prev"], env["time"], env["kind"]
    if type(seq) is not int or not 0 <= seq <= INT_MAX:
        raise InvalidEntry("seq must be an integer from 0 to 2^53-1")
    if not is_hex64(prev):
        raise InvalidEntry("prev must be 64 lowercase hex digits")
    check_time(time)
    entry = seal(seq, prev, time, kind, env["body"], body_bytes(kind, env["body"], registry))
    if entry.canonical != canonical:
        raise InvalidEntry("stored bytes are not the RFC 8785 canonical form of the entry")
    return entry
