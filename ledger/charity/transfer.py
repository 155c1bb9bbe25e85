"""Moving a charity log to another database: ``luodi db copy``.

:func:`copy_instance` copies, through the storage protocols alone (so between
any two drivers), everything an instance keeps in its database:

- the log, verbatim: every stored row and every signed checkpoint as the
  source holds them (nothing is re-signed, so the copy has the same roots and
  every receipt and checkpoint ever handed out stays valid in it).  The source
  is read in one snapshot, verified whole first (:func:`check_source`: every
  entry, node and checkpoint signature, so a source that does not verify is
  refused before anything is written), and checked again as it is copied:
  each row's entry, leaf hash, ``prev`` link and stored tree nodes, and each
  checkpoint's size and root, recomputed from the rows before it;
- the books, which follow the log: the entries of each commit go through the
  books' rules (:class:`ledger.charity.books.Books`) inside the target's append
  transaction that writes them, as an append's hook would, and the books
  record how far they got in the same transaction;
- the donor private rows (the one books table not derived from the log), each
  in the transaction that writes its donation;
- the witnesses' cosigned checkpoints (``docs/witnessing.md``), verbatim,
  after the log: the target's driver takes each only as its own log's note at
  that size with cosignature lines added;
- the bearer tokens, after the log.

**Restartable.**  Each target transaction writes one or more whole commits of
the source (rows, checkpoint, books and private rows together), so a copy that
stops (killed, a lost connection) leaves the target holding a verified prefix
of the source: the same log, cut at one of its checkpoints.  Running the copy
again finds that prefix (the target's latest checkpoint is byte for byte the
source's checkpoint at that size) and goes on from it.  A target that holds any
other log, or a longer one, is refused before anything is written.

A caller that should not even open the target for a source that does not
verify runs :func:`check_source` itself, inside the source's snapshot, and
passes its report on (``luodi db copy`` does).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import Conflict, InstanceError, InvalidInput, LogCorrupted, LuodiError, MalformedNote, NotFound, SignatureError
from ..log.checkpoint import parse_checkpoint
from ..log.entry import Entry
from ..log.merkle import Frontier, leaf_hash, pack_nodes
from ..log.note import parse_note
from ..log.store import Row
from ..log.verify import CHUNK, Chain, VerifyReport, check_chunk, verify_log
from .books import Books, verify_signed
from .kinds import registry
from .store import Stores

BATCH = 4096  # entries per target transaction (whole commits: one commit may hold more)

Progress = Callable[[int, int], None]  # (entries in the target now, entries in the source)


@dataclass
class CopyReport:
    size: int  # entries in the source and, now, in the target
    root: bytes  # the root of the latest checkpoint (the same bytes in both)
    checkpoint: str  # the latest signed checkpoint, as both hold it
    resumed_from: int  # entries the target held when this run began
    copied: int = 0  # entries this run wrote
    transactions: int = 0  # target transactions this run committed
    privates: int = 0  # donor private rows this run wrote
    privates_erased: int = 0  # stale private rows removed (erased in the source since an earlier run)
    tokens_added: int = 0
    tokens_removed: int = 0  # tokens the target held that the source no longer does (revoked since)
    cosigned: int = 0  # cosigned checkpoints this run wrote
    sizes: list[int] = field(default_factory=list)  # the target's size after each transaction

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode()


@dataclass
class _Commit:
    """One source commit, checked: its rows, parsed entries and signed checkpoint."""

    rows: list[Row]
    entries: list[Entry]
    checkpoint: tuple[int, str]


def check_source(source: Stores) -> VerifyReport:
    """Verify the whole source log (every entry, node and checkpoint); refuse an empty one.

    Run it inside the snapshot that :func:`copy_instance` will copy (a caller that
    opens the target only once the source has verified does so), and hand its
    report to :func:`copy_instance`, which then need not check the checkpoints'
    signatures a second time."""
    if source.log.checkpoint() is None:
        raise InstanceError("the source holds no log: there is nothing to copy")
    return verify_log(source.log, registry())


def copy_instance(
    source: Stores,
    target: Stores,
    *,
    verified: VerifyReport | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy ``source``'s log, books, private rows and tokens into ``target`` (see the module).

    ``verified``: what :func:`check_source` reported in the snapshot this call
    runs in (the caller's ``source.log.snapshot()``); without it, the source is
    verified here first, before anything is written."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    with source.log.snapshot(streaming=True):
        latest = source.log.checkpoint()
        if verified is None:
            verified = check_source(source)
        if latest is None or verified.size != latest[0]:
            raise ValueError("verified= is check_source()'s report in the snapshot being copied")
        start = _resume_point(source, target, latest)
        report = CopyReport(latest[0], b"", latest[1], start)
        pending: list[_Commit] = []
        held = 0  # entries in pending
        src_books = source.books.view()
        for commit in _checked_commits(source):
            if commit.checkpoint[0] <= start:
                continue  # the target holds it already (checked in _resume_point)
            pending.append(commit)
            held += len(commit.rows)
            if held >= batch:
                _write(target, pending, src_books, report, progress)
                pending, held = [], 0
        if pending:
            _write(target, pending, src_books, report, progress)
        _copy_cosigned(source, target, report)
        _copy_tokens(source, target, report)
        _reconcile_privates(source, target, report)
    with target.log.snapshot():
        final = target.log.checkpoint()
    if final != latest:
        raise InstanceError(
            f"after the copy the target's latest checkpoint (tree size {final and final[0]}) "
            f"is not the source's (tree size {latest[0]})"
        )
    report.root = _root_of(latest[1])
    return report


def _root_of(note: str) -> bytes:
    return base64.b64decode(note.split("\n")[2])


def _resume_point(source: Stores, target: Stores, latest: tuple[int, str]) -> int:
    """The size the target already holds of the source's log (0 for an empty target);
    refuse a target that holds anything else."""
    with target.log.snapshot():
        size = target.log.size()
        held = target.log.checkpoint()
        applied = target.books.view().applied()
        if size == 0:
            if held is not None or target.tokens.all() or next(iter(target.books.view().privates()), None):
                raise InstanceError("the target holds no log but is not empty (tokens or private rows): "
                                    "copy into an empty database")
            return 0
    what = f"the target already holds a log of {size} entries"
    if held is None or held[0] != size:
        raise InstanceError(f"{what} whose latest checkpoint does not cover it: copy into an empty database")
    if size > latest[0]:
        raise InstanceError(f"{what}, more than the source's {latest[0]}: copy into an empty database")
    ours = source.log.checkpoint(size)
    if ours is None or not hmac.compare_digest(ours[1].encode(), held[1].encode()):
        raise InstanceError(f"{what} that is not this source's log: copy into an empty database")
    if applied != size - 1:
        raise InstanceError(f"{what} whose books are not up to date (applied {applied}): copy into an empty database")
    return size


def _checked_commits(source: Stores) -> Iterator[_Commit]:
    """The source's commits in order, each checked again as it is read: entries, chain,
    stored tree nodes, and each checkpoint's root against the entries before it."""
    kinds = registry()
    frontier, chain = Frontier(), Chain()
    checkpoints = source.log.iter_checkpoints()
    next_cp = next(checkpoints, None)
    rows: list[Row] = []
    entries: list[Entry] = []
    for chunk in _chunks(source.log.iter_entries(0)):
        seq0 = frontier.size
        if chunk[0][0] != seq0:
            raise LogCorrupted(seq0, f"entry {seq0} is missing (the source holds later entries)")
        result = check_chunk([(seq, leaf, canonical) for seq, leaf, _, canonical in chunk], kinds, keep=True)
        chain.link(result, seq0)
        # result.entries stops at the chunk's first fault: the commits before it are good.
        for row, entry in zip(chunk, result.entries, strict=False):
            if row[0] != frontier.size:
                raise LogCorrupted(frontier.size, f"entry {frontier.size} is missing (the source holds later entries)")
            made = frontier.append(entry.leaf_hash)
            if not hmac.compare_digest(row[2], pack_nodes(made)):
                raise LogCorrupted(row[0], "stored tree nodes of this entry do not match", entry.receipt)
            rows.append(row)
            entries.append(entry)
            if next_cp is None or next_cp[0] < frontier.size:
                raise LogCorrupted(row[0], "no checkpoint at the end of this entry's commit, or one out of order")
            if next_cp[0] == frontier.size:
                _check_checkpoint(next_cp, frontier)
                yield _Commit(rows, entries, next_cp)
                rows, entries = [], []
                next_cp = next(checkpoints, None)
        if result.error is not None:
            seq, detail = result.error
            data = chunk[seq - seq0][3]
            raise LogCorrupted(seq, detail, leaf_hash(data).hex() if isinstance(data, bytes) else None)
    if next_cp is not None:
        raise LogCorrupted(max(frontier.size - 1, 0), f"checkpoint at tree size {next_cp[0]} is beyond the log")


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_checkpoint(cp: tuple[int, str], frontier: Frontier) -> None:
    """The checkpoint's size and root are those of the entries before it (its signature
    was checked by :func:`check_source`, in the same snapshot)."""
    size, note = cp
    try:
        opened = parse_checkpoint(parse_note(note).text)
    except LuodiError as exc:
        raise LogCorrupted(size - 1, f"checkpoint at tree size {size}: {exc.detail}") from exc
    if opened.size != size or not hmac.compare_digest(opened.root, frontier.root()):
        raise LogCorrupted(size - 1, f"checkpoint at tree size {size} does not match the entries before it")


def _write(target: Stores, commits: list[_Commit], src_books, report: CopyReport, progress: Progress | None) -> None:
    """One target transaction: the commits' rows and checkpoints, the books following
    them, and the private rows of their donations."""
    first = commits[0].rows[0][0]
    last = commits[-1].checkpoint[0]
    entries = [entry for commit in commits for entry in commit.entries]
    privates = []
    for entry in entries:
        if entry.kind == "donation":
            found = src_books.private(entry.leaf_hash)
            if found is not None:
                privates.append((entry.leaf_hash, *found))
    try:
        with target.log.append_transaction() as txn:
            size = txn.tip()[0]
            if size != first:
                raise InstanceError(f"the target changed during the copy: it holds {size} entries, not {first}")
            books = Books(target.books.in_transaction(txn))
            if books.applied() != first - 1:
                raise InstanceError(f"the target's books changed during the copy (applied {books.applied()})")
            try:
                for entry in entries:
                    verify_signed(entry.kind, entry.body)  # what the server checked before its lock
                books.apply_batch(entries)  # the commits' entries are consecutive: the books need no checkpoint
            except _RULES as exc:
                raise _Refused() from exc  # leave the transaction: it rolls back
            for commit in commits:
                txn.write(commit.rows, commit.checkpoint)
            if privates:
                books.view.put_privates(privates)
            books.mark_applied(last - 1)
    except _Refused:
        _name_refusal(target, entries)
    report.copied += last - first
    report.transactions += 1
    report.privates += len(privates)
    report.sizes.append(last)
    if progress is not None:
        progress(last, report.size)


class _Refused(Exception):
    """The books refused some entry of a batch: the transaction is rolled back."""


# What the books' rules refuse an entry with (not a driver's Unavailable, say).
_RULES = (InvalidInput, NotFound, Conflict, SignatureError, MalformedNote)


def _name_refusal(target: Stores, entries: list[Entry]) -> None:
    """Apply ``entries`` one by one in a transaction that is rolled back, to name the
    first the books refuse, as :class:`LogCorrupted` at its seq."""
    with target.log.append_transaction() as txn:
        books = Books(target.books.in_transaction(txn))
        for entry in entries:
            try:
                verify_signed(entry.kind, entry.body)
                books.apply(entry)
            except _RULES as exc:
                raise LogCorrupted(
                    entry.seq, f"the accounting rules refuse this entry: {exc.detail}", entry.receipt
                ) from exc
        raise LogCorrupted(entries[0].seq, "the accounting rules refuse these entries together")  # pragma: no cover


def _copy_cosigned(source: Stores, target: Stores, report: CopyReport) -> None:
    """The source's cosigned checkpoints the target lacks (insert-if-absent, so a rerun adds none)."""
    for size, note in source.log.iter_cosigned_checkpoints():
        if target.log.add_cosigned_checkpoint(size, note):
            report.cosigned += 1


def _copy_tokens(source: Stores, target: Stores, report: CopyReport) -> None:
    """Make the target's tokens the source's: add the missing, remove those revoked since."""
    theirs = {row[0]: row for row in target.tokens.all()}
    ours = {row[0]: row for row in source.tokens.all()}
    for token_hash, row in ours.items():
        held = theirs.get(token_hash)
        if held is None:
            target.tokens.add(*row)
            report.tokens_added += 1
        elif tuple(held) != tuple(row):
            raise InstanceError(f"the target holds token {token_hash.hex()[:12]} with other settings than the source")
    for token_hash in theirs.keys() - ours.keys():
        target.tokens.remove(token_hash)
        report.tokens_removed += 1


def _reconcile_privates(source: Stores, target: Stores, report: CopyReport) -> None:
    """The target's private rows must be the source's: walk both in receipt order.
    A row the source no longer has was erased there after an earlier run copied it:
    erase it here too.  Anything else that differs is refused."""
    stale: list[bytes] = []
    with target.log.snapshot():
        theirs = iter(target.books.view().privates())
        ours = iter(source.books.view().privates())
        mine, held = next(ours, None), next(theirs, None)
        while mine is not None or held is not None:
            if held is not None and (mine is None or held[0] < mine[0]):
                stale.append(held[0])
                held = next(theirs, None)
            elif held is None or mine[0] < held[0]:
                raise InstanceError(f"the target lacks the private row of donation {mine[0].hex()}")
            elif tuple(mine) != tuple(held):
                raise InstanceError(f"the target's private row of donation {mine[0].hex()} differs from the source's")
            else:
                mine, held = next(ours, None), next(theirs, None)
    for receipt in stale:
        target.books.erase_private(receipt)
    report.privates_erased = len(stale)
