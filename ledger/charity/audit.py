"""The accounting audit: recompute the books from the entries alone and compare.

:func:`audit_books` replays every entry through the books' rules into a
fresh, private books view in plain Python (:class:`ledger.charity.memory.MemoryBooks`),
so a forged signature, a replayed nonce, an overspend or a broken balance
that somehow reached the log is reported at its seq.  It folds the same
entries through :func:`ledger.charity.allocation.trace_fifo`, and checks that
the replay, the fold and the server's own index agree on every donation and
on every derived table.  Run :func:`ledger.log.verify.verify_log` first: this
audit trusts the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LogCorrupted, LuodiError
from ..log.entry import parse_entry
from .allocation import trace_fifo
from .books import Books, verify_signed
from .kinds import registry
from .memory import MemoryBooks
from .store import DERIVED, BooksView, Stores


@dataclass(frozen=True)
class AuditReport:
    entries: int
    donations: int
    disbursements: int
    refunds: int
    projects: int


def _compare_index(replayed: BooksView, server: BooksView, last_seq: int) -> None:
    """Every derived table of the server's books must equal the replay's: the server
    decides future appends with them (keys, thresholds, nonces, intake keys)."""
    for table, columns in DERIVED.items():
        mine, theirs = replayed.derived(table), server.derived(table)
        if mine == theirs:
            continue
        differing = set(mine) ^ set(theirs)
        at = columns.index("seq") if "seq" in columns else None
        seqs = [row[at] for row in differing if at is not None]
        seq = min([s for s in seqs if isinstance(s, int) and 0 <= s <= last_seq] or [last_seq])
        raise LogCorrupted(
            seq, f"the server's {table} index differs from the books replayed from the log ({len(differing)} rows)"
        )


def audit_books(stores: Stores) -> AuditReport:
    """Replay the log into private books and compare them with the server's; the
    signing window is the one the log records (``policy.recorded``)."""
    log = stores.log
    kinds = registry()
    mem = MemoryBooks()
    replay = Books(mem)
    counts = {"entries": 0, "disbursement": 0, "refund": 0}
    seq_of: dict[str, int] = {}

    def replayed():
        for seq, _, _, canonical in log.iter_entries():
            entry = parse_entry(canonical, kinds)
            try:
                verify_signed(entry.kind, entry.body)  # what the server checked before its lock
                replay.apply(entry)
            except LuodiError as exc:
                raise LogCorrupted(seq, f"the accounting rules refuse this entry: {exc.detail}") from exc
            counts["entries"] += 1
            counts[entry.kind] = counts.get(entry.kind, 0) + 1
            if entry.kind == "donation":
                seq_of[entry.receipt] = seq
            yield entry

    with log.snapshot(streaming=True):
        try:
            traces = trace_fifo(replayed())
        except LuodiError as exc:
            if isinstance(exc, LogCorrupted):
                raise
            raise LogCorrupted(counts["entries"] - 1, f"the FIFO fold refuses this entry: {exc.detail}") from exc
        server = stores.books.view()
        if server.applied() != counts["entries"] - 1:
            raise LogCorrupted(max(server.applied(), 0), "the server's books are not up to date with the log")
        for receipt, trace in traces.items():
            seq, key = seq_of[receipt], bytes.fromhex(receipt)
            for name, books in (("replayed", mem), ("server", server)):
                donation = books.donation(key)
                if donation is None:
                    raise LogCorrupted(seq, f"the {name} books have no donation {receipt}")
                if books.allocations_of(key) != trace.spent:
                    raise LogCorrupted(seq, f"the {name} books allocate donation {receipt} differently from FIFO")
                if (donation.spent, donation.refunded) != (trace.spent_total, trace.refunded):
                    raise LogCorrupted(seq, f"the {name} books hold other totals for donation {receipt}")
        projects = mem.projects()
        for project in projects:
            if server.project(project.project) != project:
                raise LogCorrupted(project.seq, f"the server's totals for project {project.project!r} are wrong")
        _compare_index(mem, server, counts["entries"] - 1)
    return AuditReport(counts["entries"], len(traces), counts["disbursement"], counts["refund"], len(projects))
