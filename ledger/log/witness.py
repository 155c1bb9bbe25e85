"""A transparency-log witness: C2SP tlog-witness's ``add-checkpoint``
(https://c2sp.org/tlog-witness) with C2SP tlog-cosignature's Ed25519
``cosignature/v1`` (https://c2sp.org/tlog-cosignature).

The witness is configured with the logs it follows (origin -> the logs'
Ed25519 note verifier keys) and keeps, per origin, the latest checkpoint it
cosigned.  :meth:`Witness.add_checkpoint` takes a request body and answers
its cosignature line, or raises the error whose status the spec names
(tlog-witness, "add-checkpoint"):

1. the body must parse (old size line, at most 63 proof lines, an empty
   line, a signed checkpoint), and the old size must not exceed the
   checkpoint's size: else 400 (:class:`~ledger.errors.MalformedNote`,
   :class:`~ledger.errors.BadOldSize`);
2. an origin the witness does not follow: 404 (:class:`~ledger.errors.UnknownLog`);
3. no signature by a key it trusts for that origin, or a trusted key's name
   and ID on a signature that does not verify: 403
   (:class:`~ledger.errors.UntrustedCheckpoint`); signatures of unknown
   keys are ignored;
4. an old size other than the size of the latest checkpoint it cosigned for
   the origin (0 if none): 409, carrying that size
   (:class:`~ledger.errors.SizeMismatch`; the HTTP edge answers it as a
   ``text/x.tlog.size`` body ``"<size>\\n"``);
5. a size-0 checkpoint whose root is not the empty tree's (RFC 6962 §2.1,
   SHA-256 of the empty string), a proof given with old size 0, a
   consistency proof (RFC 6962 §2.1.2, checked by
   :func:`ledger.log.merkle.verify_consistency`) that fails, or the same size
   with a different root: 422 (:class:`~ledger.errors.InconsistentCheckpoint`).

Then the witness cosigns the checkpoint's whole note text with a timestamp
of now (never 0, and never before its previous cosignature for the origin,
so that its statements "as of time t the largest tree is ..." stay in
order) and persists it.  Step 4, step 5 and the write are ONE transaction of
the store (:meth:`WitnessStore.advance`), serialised across threads and
processes, and it commits before the answer: the spec's race, where a
request for size N checked before one for N+K is written after it and
rolls the witness back, cannot happen.

A refused checkpoint that the log did sign (step 5) may be evidence of a
split view or of a log that rewrote itself; the spec allows the witness to
keep it (it MUST NOT cosign it), and this one does, once per signed
checkpoint (:meth:`WitnessTxn.refuse`, in the same transaction).

The witness knows nothing of charities: any C2SP checkpoint log can use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ..errors import (
    BadOldSize,
    InconsistentCheckpoint,
    MalformedNote,
    ProofError,
    SignatureError,
    SizeMismatch,
    UnknownLog,
    UntrustedCheckpoint,
)
from .add_checkpoint import parse_add_checkpoint
from .checkpoint import Checkpoint, parse_checkpoint
from .cosignature import Cosigner
from .merkle import EMPTY_ROOT, verify_consistency
from .note import DASH, NoteSignature, Verifier, open_note, parse_note


def origin_hash(origin: str) -> str:
    """The monitoring path's name for a log: SHA-256 of its origin, lowercase hex
    (tlog-witness, "Monitor Retrieval Mechanism")."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint the witness cosigned: ``note`` is its text, the log signatures
    the witness verified, and the witness's cosignature line, in that order."""

    origin: str
    size: int
    root: bytes
    note: str
    timestamp: int


@dataclass(frozen=True)
class Refusal:
    """A checkpoint the log signed that the witness refused as inconsistent
    (step 5): ``note`` holds its text and the verified log signatures, ``proof``
    the request's proof; ``stored_size`` is what the witness had cosigned then."""

    origin: str
    old_size: int
    size: int
    stored_size: int
    reason: str
    note: str
    proof: tuple[bytes, ...]
    received_at: int


class WitnessTxn(ABC):
    """An open :meth:`WitnessStore.advance`: the latest cosigned checkpoint of one
    origin, read under the store's write lock, and the write that replaces it."""

    @property
    @abstractmethod
    def latest(self) -> Cosigned | None:
        """The latest checkpoint cosigned for this origin, or None if there is none."""

    @abstractmethod
    def record(self, cosigned: Cosigned) -> None:
        """Stage ``cosigned`` as the origin's latest (and in its history).  It is
        durable only when the block exits without an exception."""

    @abstractmethod
    def refuse(self, refusal: Refusal) -> None:
        """Stage a refused checkpoint as evidence, unless one with the same note is
        kept already (the first request that showed it stays)."""


class WitnessStore(ABC):
    """What the witness needs of a database: per origin the latest cosigned
    checkpoint, its append-only history, and the refusals kept as evidence."""

    @abstractmethod
    def advance(self, origin: str) -> AbstractContextManager[WitnessTxn]:
        """One write transaction for ``origin``: serialised against every other
        writer, thread or process; commits durably on exit, and rolls back if
        the block raises."""

    @abstractmethod
    def latest(self, origin: str) -> Cosigned | None:
        """The latest cosigned checkpoint of ``origin``, as committed."""

    @abstractmethod
    def latest_by_hash(self, hex_hash: str) -> Cosigned | None:
        """The same, found by :func:`origin_hash` of the origin."""

    @abstractmethod
    def origins(self) -> list[Cosigned]:
        """The latest cosigned checkpoint of every origin, by origin."""

    @abstractmethod
    def refusals(self, origin: str | None = None) -> list[Refusal]:
        """The refusals kept, oldest first."""

    @abstractmethod
    def close(self) -> None: ...


def trusted_logs(verifiers: Iterable[Verifier]) -> dict[str, tuple[Verifier, ...]]:
    """Origin -> its log keys, for log keys named by their origin (as tlog-checkpoint
    logs, and Luodi's, name them)."""
    logs: dict[str, list[Verifier]] = {}
    for v in verifiers:
        if v not in logs.setdefault(v.name, []):
            logs[v.name].append(v)
    return {origin: tuple(keys) for origin, keys in logs.items()}


def _line(sig: NoteSignature) -> str:
    return f"{DASH}{sig.name} {base64.b64encode(sig.key_id + sig.signature).decode('ascii')}\n"


class Witness:
    """The witness (see the module).  ``logs``: origin -> the log keys trusted for
    it; ``clock``: POSIX seconds now."""

    def __init__(
        self,
        cosigner: Cosigner,
        logs: Mapping[str, Iterable[Verifier]],
        store: WitnessStore,
        clock: Callable[[], float] = time.time,
    ):
        self.cosigner = cosigner
        self.logs = {origin: tuple(keys) for origin, keys in logs.items()}
        if not self.logs or not all(self.logs.values()):
            raise MalformedNote("a witness needs at least one log key, and every log it follows at least one")
        self.store = store
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> str:
        """tlog-witness ``add-checkpoint``: the witness's cosignature line for the
        checkpoint in ``body``, persisted before it is returned (see the module
        for the checks, their order and their errors)."""
        request = parse_add_checkpoint(body)
        signed = parse_note(request.checkpoint)
        cp = parse_checkpoint(signed.text)
        if request.old_size > cp.size:
            raise BadOldSize(f"old size {request.old_size} is larger than the checkpoint's size {cp.size}")
        keys = self.logs.get(cp.origin)
        if keys is None:
            raise UnknownLog(f"this witness does not follow a log with origin {cp.origin!r}")
        try:
            opened = open_note(request.checkpoint, list(keys))
        except SignatureError as exc:
            raise UntrustedCheckpoint(f"{cp.origin}: {exc.detail}") from exc
        proof = tuple(request.proof)
        logged = opened.text + "\n" + "".join(map(_line, opened.signatures))  # what the log signed, verified
        now = self._now()
        refused: Refusal | None = None
        with self.store.advance(cp.origin) as txn:
            latest = txn.latest
            stored = latest.size if latest else 0
            if request.old_size != stored:
                raise SizeMismatch(stored)
            reason = _inconsistency(request.old_size, proof, cp, latest)
            if reason is None:
                timestamp = max(now, latest.timestamp if latest else 0)
                line = self.cosigner.cosign(opened.text, timestamp)
                txn.record(Cosigned(cp.origin, cp.size, cp.root, logged + line, timestamp))
            else:  # kept as evidence in the same transaction, which then commits
                refused = Refusal(cp.origin, request.old_size, cp.size, stored, reason, logged, proof, now)
                txn.refuse(refused)
        if refused is not None:
            raise InconsistentCheckpoint(refused.reason, stored_size=refused.stored_size)
        return line

    def _now(self) -> int:
        now = int(self.clock())
        if now <= 0:  # tlog-witness: the timestamp MUST NOT be zero
            raise ValueError(f"the clock says {now}: a cosignature needs a POSIX time after 1970")
        return now

    def checkpoint(self, hex_hash: str) -> str:
        """The latest cosigned checkpoint of the log whose origin hashes to
        ``hex_hash`` (lowercase hex SHA-256); :class:`UnknownLog` if none."""
        found = self.store.latest_by_hash(hex_hash)
        if found is None:
            raise UnknownLog("this witness has never cosigned a checkpoint of that log")
        return found.note


def _inconsistency(old_size: int, proof: tuple[bytes, ...], cp: Checkpoint, latest: Cosigned | None) -> str | None:
    """Why ``cp`` is not consistent with the witness's view (tlog-witness's 422s), or None."""
    if cp.size == 0 and not hmac.compare_digest(cp.root, EMPTY_ROOT):
        return "a checkpoint of size 0 must have the empty tree's root, SHA-256 of the empty string"
    if old_size == 0:
        return "a consistency proof from size 0 must be empty" if proof else None
    assert latest is not None and latest.size == old_size  # the caller checked the old size
    if old_size == cp.size and not hmac.compare_digest(cp.root, latest.root):
        return (
            f"size {cp.size} has a different root from the one this witness cosigned: "
            "two checkpoints of one size with different roots are a split view"
        )
    try:
        verify_consistency(old_size, cp.size, latest.root, cp.root, proof)
    except ProofError as exc:
        return f"the consistency proof from size {old_size} to {cp.size} does not verify: {exc.detail}"
    return None
