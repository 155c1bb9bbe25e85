"""The one exception tree of Luodi.

Every error the core raises is a :class:`LuodiError`.  Each class carries the
HTTP status and the RFC 9457 problem ``type`` it maps to, so the HTTP layer
needs a single handler (``api/``) and the CLI a single ``except``.
"""

from __future__ import annotations


class LuodiError(Exception):
    """Root of every domain error."""

    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str = "", **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type(self) -> str:
        """The RFC 9457 problem type, a URI reference relative to the service."""
        return f"/problems/{self.slug}"

    def problem(self) -> dict:
        """The RFC 9457 problem object (without ``instance``)."""
        body = {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail}
        body.update(self.extra)
        return body


class InvalidInput(LuodiError):
    """Input that is well-formed enough to read but breaks a rule."""

    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class InvalidEntry(InvalidInput):
    """An entry envelope or body that the ledger refuses to write."""

    slug = "invalid-entry"
    title = "Invalid entry"


class MalformedNote(LuodiError):
    """A signed note, key string or checkpoint that does not parse."""

    status = 400
    slug = "malformed-note"
    title = "Malformed signed note"


class SignatureError(LuodiError):
    """A signature that does not verify, or a note no trusted key signed."""

    status = 400
    slug = "bad-signature"
    title = "Signature verification failed"


class ProofError(LuodiError):
    """A Merkle inclusion or consistency proof that does not verify."""

    status = 400
    slug = "bad-proof"
    title = "Proof verification failed"


class NotFound(LuodiError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(LuodiError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class Replay(Conflict):
    """A signed payload whose nonce this charity has used before."""

    slug = "replay"
    title = "Replayed signature"


class Overspend(Conflict):
    """A disbursement or refund above the money available to it."""

    slug = "overspend"
    title = "Not enough unspent money"


class Unauthorized(LuodiError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(LuodiError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class Unavailable(LuodiError):
    """The service cannot do this now, though nothing is wrong with the request:
    its storage is busy, full, read-only or failing, or it serves reads only.
    Nothing was written.  ``retry_after`` (seconds, or None) becomes the
    ``Retry-After`` header of the 503."""

    status = 503
    slug = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str = "", retry_after: int | None = None, **extra):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class InstanceError(LuodiError):
    """The instance folder, its key or its database is missing or unusable."""

    status = 500
    slug = "instance"
    title = "Instance error"


class VerificationFailed(LuodiError):
    """Something an auditor or a donor checked is wrong: an entry, a proof, a
    checkpoint, a receipt, or a figure the server published.

    The command-line verifiers exit 1 for these and 2 for every other error
    (usage, an unreachable server, an answer that is not JSON).  Whatever a
    server sends that fails to parse *as what it claims to be* (a proof that is
    not hex, a checkpoint that is not a note) is a verification failure too.
    """

    status = 500
    slug = "verification-failed"
    title = "Verification failed"


class LogCorrupted(VerificationFailed):
    """Whole-log verification found a stored entry, node or checkpoint that is wrong.

    ``seq`` is the first bad entry (for a tree node, the last entry it covers;
    for a checkpoint, its tree size minus one); ``receipt``, when known, is the
    hex leaf hash of the entry as it was read.
    """

    slug = "log-corrupted"
    title = "Log verification failed"

    def __init__(self, seq: int, detail: str, receipt: str | None = None):
        where = f"seq {seq} (receipt {receipt})" if receipt else f"seq {seq}"
        super().__init__(f"{where}: {detail}", seq=seq, **({"receipt": receipt} if receipt else {}))
        self.seq = seq
        self.receipt = receipt


class ReceiptInvalid(VerificationFailed):
    """A donor's receipt (JSON or C2SP tlog-proof) that does not check out;
    ``part`` names what failed (``checkpoint``, ``inclusion_proof``,
    ``allocation[0].signatures`` ...)."""

    slug = "bad-receipt"
    title = "Receipt verification failed"

    def __init__(self, part: str, detail: str):
        super().__init__(f"{part}: {detail}", part=part)
        self.part = part


class Misreported(VerificationFailed):
    """A server published a figure, proof or answer that disagrees with what the
    auditor recomputed from the verified entries."""

    slug = "misreported"
    title = "The server misreported"


class RemoteError(LuodiError):
    """Another Luodi server refused a request of our tools, or could not be reached;
    carries its problem detail."""

    status = 502
    slug = "remote"
    title = "The server refused the request"


class QuorumNotMet(VerificationFailed):
    """A checkpoint without the witness cosignatures a C2SP tlog-policy asks for:
    the log alone vouches for it, so it may be a split view."""

    slug = "quorum-not-met"
    title = "Witness quorum not met"


class NoSuchTile(NotFound):
    """A C2SP tlog-tiles path (``tile/<L>/<N>[.p/<W>]``, ``tile/entries/<N>[.p/<W>]``)
    that is malformed, names an empty tile, or names one beyond the tree: a 404."""

    slug = "no-such-tile"
    title = "No such tile"


class EntryTooLarge(InvalidEntry):
    """An entry whose canonical bytes exceed 65,535 bytes: a C2SP tlog-tiles entry
    bundle carries each entry behind a big-endian uint16 length, so the log refuses
    it at append (422) and nothing is written."""

    slug = "entry-too-large"
    title = "Entry too large"


class BadTile(VerificationFailed):
    """A tile or entry bundle that a tile reader fetched and that does not check out:
    wrong length, hashes that do not fold to the checkpoint's root, an undecodable
    bundle.  ``path`` names the resource."""

    slug = "bad-tile"
    title = "Tile verification failed"

    def __init__(self, path: str, detail: str):
        super().__init__(f"{path}: {detail}", path=path)
        self.path = path


# -- a witness's refusals (C2SP tlog-witness, add-checkpoint; ledger/log/witness.py) ------------


class BadOldSize(MalformedNote):
    """An add-checkpoint request whose old size is larger than its checkpoint's size (400)."""

    slug = "bad-old-size"
    title = "Old size larger than the checkpoint's"


class UnknownLog(NotFound):
    """A checkpoint of a log the witness does not follow, or never cosigned (404)."""

    slug = "unknown-log"
    title = "Unknown log"


class UntrustedCheckpoint(Forbidden):
    """A checkpoint no key the witness trusts for its origin signed, or one where a
    trusted key's name and ID sit on a signature that does not verify (403)."""

    slug = "untrusted-checkpoint"
    title = "Checkpoint not signed by a trusted log key"


class SizeMismatch(Conflict):
    """The request's old size is not the size of the latest checkpoint the witness
    cosigned for that log (409).  ``size`` is that size: the HTTP answer's
    ``text/x.tlog.size`` body."""

    slug = "size-mismatch"
    title = "Old size does not match the witness's latest"

    def __init__(self, size: int, detail: str = ""):
        super().__init__(detail or f"the latest checkpoint this witness cosigned for this log has size {size}", size=size)
        self.size = size


class InconsistentCheckpoint(InvalidInput):
    """A checkpoint inconsistent with what the witness cosigned before (422): a
    consistency proof that fails, a proof from size 0, the same size with
    another root, or a size-0 checkpoint without the empty tree's root."""

    slug = "inconsistent-checkpoint"
    title = "Checkpoint inconsistent with the witness's view"
