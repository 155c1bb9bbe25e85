"""A toy transparency log for the witness's tests: leaves, roots, RFC 9162
consistency proofs (from ledger.log.merkle's plans) and signed checkpoints,
so that a test can build any add-checkpoint request, forks included."""

from __future__ import annotations

import base64

from ledger.log.add_checkpoint import format_add_checkpoint
from ledger.log.checkpoint import Checkpoint
from ledger.log.merkle import assemble, consistency_plan, leaf_hash, root
from ledger.log.note import Signer, sign_note


class ToyLog:
    """A log of ``leaves`` signed by ``signer`` (whose name is the origin).  Two
    ToyLogs with one signer and different ``fork`` tags are a split view: the
    same key signs two histories that part after ``common`` leaves."""

    def __init__(self, signer: Signer, size: int = 64, fork: bytes = b"", common: int = 0):
        self.signer = signer
        self.origin = signer.name
        self.leaves = [leaf_hash(b"leaf %d%s" % (i, fork if i >= common else b"")) for i in range(size)]

    def root(self, n: int) -> bytes:
        return root(self.leaves[:n])

    def checkpoint(self, n: int, *signers: Signer) -> str:
        return sign_note(Checkpoint(self.origin, n, self.root(n)).text(), *(signers or (self.signer,)))

    def proof(self, m: int, n: int) -> list[bytes]:
        if m == 0:
            return []
        plan = consistency_plan(m, n)
        hashes = {(lv, i): root(self.leaves[i << lv : (i + 1) << lv]) for rng in plan for lv, i in rng}
        return assemble(plan, hashes)

    def body(self, old: int, n: int, proof: list[bytes] | None = None, note: str | None = None) -> bytes:
        """The add-checkpoint request for size ``n`` with the proof from ``old``."""
        return format_add_checkpoint(old, self.proof(old, n) if proof is None else proof, note or self.checkpoint(n))


def bad_signature(note: str) -> str:
    """``note`` with the last byte of its last signature flipped: the same name and key ID."""
    head, line = note.rsplit("\u2014 ", 1)
    name, b64 = line.rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return f"{head}\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
