"""The wire format of C2SP tlog-witness ``add-checkpoint`` (https://c2sp.org/tlog-witness).

The request body is an old size line, zero to 63 consistency proof lines, an
empty line, then the signed checkpoint note, each line ending in ``\\n``::

    old 20852014
    PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
    ...

    example.com/behind-the-sofa
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — example.com/behind-the-sofa Az3grlgt...

A witness answers 200 with cosignature lines, or 409 with the size it holds
(``text/x.tlog.size``: the decimal size and a newline).  This module only
writes and reads those bytes; the witness's checks are in :mod:`.witness` and
the log's side in :mod:`.cosigning`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from ..errors import MalformedNote
from .merkle import HASH_SIZE
from .note import MAX_NOTE_BYTES, b64decode_strict, parse_note

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_BODY_BYTES = 64 + MAX_PROOF_LINES * 45 + MAX_NOTE_BYTES
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim


def _size(text: str, what: str) -> int:
    if not _SIZE.fullmatch(text) or int(text) >= 1 << 64:
        raise MalformedNote(f"{what} must be a decimal below 2**64 with no leading zeros")
    return int(text)


def format_add_checkpoint(old_size: int, proof, checkpoint_note: str) -> bytes:
    """The request body submitting ``checkpoint_note`` with a proof from ``old_size``."""
    if not isinstance(old_size, int) or old_size < 0:
        raise MalformedNote("the old size must be a non-negative integer")
    proof = list(proof)
    if len(proof) > MAX_PROOF_LINES:
        raise MalformedNote(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    if any(len(h) != HASH_SIZE for h in proof):
        raise MalformedNote("a consistency proof hash is 32 bytes")
    parse_note(checkpoint_note)
    lines = [f"old {old_size}"] + [base64.b64encode(h).decode("ascii") for h in proof]
    return ("\n".join(lines) + "\n\n" + checkpoint_note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Read a request body; :class:`MalformedNote` (a 400) says what is wrong."""
    if not isinstance(body, bytes | bytearray) or len(body) > MAX_BODY_BYTES:
        raise MalformedNote("the request body is too large")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNote("the request body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise MalformedNote("the request needs an empty line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise MalformedNote("the request must start with 'old <size>'")
    old = _size(lines[0][4:], "the old size")
    hashes = lines[1:]
    if len(hashes) > MAX_PROOF_LINES:
        raise MalformedNote(f"a consistency proof has at most {MAX_PROOF_LINES} lines")
    proof = []
    for n, line in enumerate(hashes, 1):
        h = b64decode_strict(line, f"consistency proof line {n}")
        if len(h) != HASH_SIZE:
            raise MalformedNote(f"consistency proof line {n} is not a 32-byte hash")
        proof.append(h)
    parse_note(note)
    return AddCheckpoint(old, tuple(proof), note)


def format_size(size: int) -> bytes:
    """A 409's body: the witness's latest cosigned size, in decimal, and a newline."""
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int:
    try:
        text = bytes(body).decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedNote("a size body is ASCII") from exc
    if not text.endswith("\n"):
        raise MalformedNote("a size body ends in a newline")
    return _size(text[:-1], "the witness's size")


def parse_cosignature_lines(body: bytes) -> str:
    """A 200's body: one or more note signature lines (each ``— name base64``), verbatim."""
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNote("the witness's answer is not UTF-8") from exc
    if not text or not text.endswith("\n") or "\n\n" in text:
        raise MalformedNote("the witness's answer must be signature lines, each ending in a newline")
    parse_note("x\n\n" + text)  # the lines' syntax, by the one signed-note parser
    return text
