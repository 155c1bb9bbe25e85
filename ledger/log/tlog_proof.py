"""C2SP tlog-proof (https://c2sp.org/tlog-proof): an inclusion proof a holder keeps offline.

The text is lines separated by ``\\n``::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>        (optional)
    index <zero-based leaf index, decimal, no leading zeros>
    <base64 proof hash>               (zero or more, leaf's sibling first)

    <the signed checkpoint note, verbatim (C2SP tlog-checkpoint)>

The extra data is not authenticated by the format: an application must tie
it to the leaf itself (here, the log's leaf hash is ``SHA-256(0x00 || extra)``
when the extra data is the entry's canonical bytes).  :func:`format_tlog_proof`
writes the text and :func:`parse_tlog_proof` reads it back, checking only the
syntax; :func:`verify_tlog_proof` checks the checkpoint's signature and the
inclusion proof.  The format knows nothing of what the log holds.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from ..errors import MalformedNote
from .checkpoint import Checkpoint, open_checkpoint
from .merkle import HASH_SIZE, verify_inclusion
from .note import Verifier, b64decode_strict

HEADER = "c2sp.org/tlog-proof@v1"
MEDIA_TYPE = "text/plain"  # Flask adds "; charset=utf-8"
MAX_PROOF_BYTES = 2 << 20
MAX_PROOF_HASHES = 64
_INDEX = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class TlogProof:
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None


def format_tlog_proof(index: int, proof: list[bytes], checkpoint: str, extra: bytes | None = None) -> str:
    """The tlog-proof text of a leaf at ``index`` with its ``proof`` against the signed ``checkpoint``."""
    lines = [HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(h).decode("ascii") for h in proof)
    return "\n".join(lines) + "\n\n" + checkpoint


def _bad(field: str, detail: str) -> MalformedNote:
    return MalformedNote(detail, field=field)


def _b64(text: str, field: str, what: str) -> bytes:
    try:
        return b64decode_strict(text, what)
    except MalformedNote as exc:
        raise _bad(field, exc.detail) from exc


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Read a tlog-proof; :class:`MalformedNote` says what is wrong, and its ``extra["field"]``
    which part (``format``, ``extra``, ``index``, ``inclusion_proof``, ``checkpoint``).

    The checkpoint note is kept verbatim and not parsed here (see :func:`verify_tlog_proof`)."""
    if isinstance(text, bytes):
        if len(text) > MAX_PROOF_BYTES:
            raise _bad("format", "tlog-proof is too large")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad("format", "tlog-proof is not valid UTF-8") from exc
    if not isinstance(text, str):
        raise _bad("format", "tlog-proof must be text")
    if len(text) > MAX_PROOF_BYTES:
        raise _bad("format", "tlog-proof is too large")
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise _bad("format", "tlog-proof has no empty line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise _bad("format", f"tlog-proof must start with the line {HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64(rest.pop(0)[len("extra ") :], "extra", "tlog-proof extra data")
    if not rest or not rest[0].startswith("index "):
        raise _bad("index", "tlog-proof needs an 'index N' line")
    index = rest.pop(0)[len("index ") :]
    if not _INDEX.fullmatch(index) or int(index) >= 1 << 64:
        raise _bad("index", f"tlog-proof index {index!r} is not a decimal without leading zeros")
    if len(rest) > MAX_PROOF_HASHES:
        raise _bad("inclusion_proof", f"tlog-proof has more than {MAX_PROOF_HASHES} proof lines")
    proof = []
    for i, line in enumerate(rest):
        h = _b64(line, "inclusion_proof", f"tlog-proof proof line {i}")
        if len(h) != HASH_SIZE:
            raise _bad("inclusion_proof", f"tlog-proof proof line {i} is not a {HASH_SIZE}-byte hash")
        proof.append(h)
    if not checkpoint:
        raise _bad("checkpoint", "tlog-proof has no checkpoint")
    return TlogProof(int(index), tuple(proof), checkpoint, extra)


def verify_tlog_proof(proof: TlogProof, leaf: bytes, verifier: Verifier) -> Checkpoint:
    """The checkpoint is signed by ``verifier`` (and names its origin), and ``leaf`` (a leaf
    hash) is at ``proof.index`` in the tree it signs; returns the checkpoint.

    Raises :class:`MalformedNote`, :class:`~ledger.errors.SignatureError` or
    :class:`~ledger.errors.ProofError`."""
    cp = open_checkpoint(proof.checkpoint, verifier)
    verify_inclusion(leaf, proof.index, cp.size, list(proof.proof), cp.root)
    return cp

