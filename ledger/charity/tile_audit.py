"""The audit from C2SP tlog-tiles alone (``luodi audit --tiles``): no ``/v1`` API, only
the static resources any web host or CDN can serve.

:func:`audit_tiles` runs :class:`ledger.charity.remote_audit.RemoteAudit` over a
:class:`TileSource`, a ``fetch(path)`` (:mod:`api.tile_fetch`: HTTP or a folder) read
through :class:`ledger.log.tile_reader.TileReader`:

1. ``<prefix>/checkpoint`` is verified with the pinned key and no other (and, with a
   witness policy, must carry a quorum of cosignatures); its size and root pin the tree;
2. every entry is read from the entry bundles (``tile/entries/<N>[.p/<W>]``), each
   checked against its leaf hash in the level-0 tile, every tile checked against the
   checkpoint's root (tlog-tiles, *Merkle Tree*, *Partial Tiles*, *Log entries*);
3. the entries go through the same whole-log checks, accounting replay and FIFO fold
   as the API audit's, and the root recomputed from them must be the checkpoint's;
4. with a saved monitor state (``--state``), the log did not shrink, extends the saved
   one entry for entry, and the RFC 9162 consistency proof from the saved checkpoint,
   assembled from the hash tiles, verifies;
5. inclusion proofs of sampled entries, assembled from the hash tiles, verify against
   the root: the tiles a donor's page or ``verify-receipt --tiles`` reads are the log's.

Tiles carry no projects or receipts, so nothing published beside the log is compared
(``luodi audit --url`` does that).  A tile that does not check out is a
:class:`ledger.errors.BadTile` naming its path, an entry that does not hash to its
leaf a :class:`ledger.errors.LogCorrupted` naming the seq (both exit 1); a resource the
host does not serve (or cannot) is a :class:`ledger.errors.RemoteError` (exit 2).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BadTile, LuodiError, RemoteError
from ..log.checkpoint import Checkpoint
from ..log.entry import Entry
from ..log.tile_reader import Fetch, TileReader
from ..log.tiles import ENTRIES, TILE_WIDTH, parse_tile_path
from .remote_audit import RemoteAudit, RemoteReport

CHECKPOINT = "checkpoint"


class TileSource:
    """The log behind ``fetch(path)``: its checkpoint, then (once that is verified and
    :meth:`open` was called with it) its entries and proofs, read from tiles."""

    def __init__(self, fetch: Fetch):
        self.fetch = fetch
        self.reader: TileReader | None = None

    def checkpoint(self) -> str | bytes:
        data = self.fetch(CHECKPOINT)
        if data is None:
            raise RemoteError(f"no {CHECKPOINT} is served at {getattr(self.fetch, 'base', 'the tiles')}")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data  # not text: the audit says the checkpoint is not a note

    def open(self, cp: Checkpoint) -> None:
        """Read the tree of the verified checkpoint ``cp``; every tile is checked against its root."""
        self.reader = TileReader(self.fetch, cp.size, cp.root)

    def export(self, start: int, end: int) -> Iterator[bytes]:
        return self.reader.entries(start, end)


class TileAudit(RemoteAudit):
    """The remote audit with tiles for the API: see the module."""

    def __init__(self, source: TileSource, log_key, **kwargs):
        super().__init__(source, log_key, receipts=0, **kwargs)

    def _pin(self, note, cp: Checkpoint) -> None:
        super()._pin(note, cp)
        self.source.open(cp)

    def _consistency(self, first: int, second: int) -> list[bytes]:
        return self.source.reader.consistency_proof(first)

    def _inclusion(self, seq: int, receipt: str, size: int, what: str) -> list[bytes]:
        return self.source.reader.inclusion_proof(seq)

    def _compare_published(self) -> Iterator[Entry]:
        return iter(())  # tiles publish nothing beside the log

    def run(self) -> RemoteReport:
        try:
            report = super().run()
        except BadTile as exc:
            raise _covering(exc, self.source.reader) from exc
        report.projects = len(self.mem.projects())
        return report


def _covering(exc: BadTile, reader: TileReader | None) -> BadTile:
    """``exc`` naming the entries its tile covers too (tlog-tiles: tile ``N`` at level ``L``
    spans ``D[N * 256**(L+1) : (N+1) * 256**(L+1)]``), when it names one tile."""
    try:
        tile = parse_tile_path(exc.path)
    except LuodiError:
        return exc
    span = TILE_WIDTH ** ((0 if tile.level == ENTRIES else tile.level) + 1)
    first = tile.index * span
    last = min(first + span, reader.size if reader else first + span) - 1
    detail = exc.detail[len(exc.path) + 2:] if exc.detail.startswith(exc.path + ": ") else exc.detail
    return BadTile(f"{exc.path} (seq {first} to {last})", detail)


def audit_tiles(fetch: Fetch, log_key, **kwargs) -> RemoteReport:
    """Audit the log whose tiles ``fetch`` reads, with only ``log_key`` trusted (see the
    module); return a report, or raise :class:`VerificationFailed` at the first fault."""
    return TileAudit(TileSource(fetch), log_key, **kwargs).run()
