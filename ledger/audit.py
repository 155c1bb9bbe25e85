"""The accounting audit: recompute the books from the entries alone and compare.

:func:`audit_books` replays every entry through the books' rules on a fresh,
private index (so a forged signature, a replayed nonce, an overspend or a
broken balance that somehow reached the log is reported at its seq), folds the
same entries through :func:`ledger.allocation.trace_fifo`, and checks that the
replay, the fold and the server's own index agree on every donation.  Run
:func:`ledger.verify.verify_log` first: this audit trusts the chain.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .allocation import trace_fifo
from .books import BOOKS_SCHEMA, DEFAULT_WINDOW_SECONDS, Books
from .entry import parse_entry
from .errors import LogCorrupted, LuodiError
from .storage import Storage


# Every derived table of the books, with the order to compare it in.  The
# server enforces future appends with these, so all of them must equal the replay.
DERIVED_TABLES = {
    "charities": "charity",
    "charity_keys": "public_key",
    "projects": "project",
    "donations": "receipt",
    "allocations": "donation, disbursement",
    "nonces": "charity, nonce",
    "intake_keys": "intake_key",
    "project_entries": "project, seq",
}


def _compare_index(replayed: sqlite3.Connection, server: sqlite3.Connection, last_seq: int) -> None:
    for table, order in DERIVED_TABLES.items():
        sql = f"SELECT * FROM {table} ORDER BY {order}"
        mine, theirs = replayed.execute(sql).fetchall(), server.execute(sql).fetchall()
        if mine == theirs:
            continue
        columns = [d[0] for d in replayed.execute(f"SELECT * FROM {table} LIMIT 0").description]
        differing = set(mine) ^ set(theirs)
        seqs = [row[columns.index("seq")] for row in differing if "seq" in columns]
        seq = min([s for s in seqs if isinstance(s, int) and 0 <= s <= last_seq] or [last_seq])
        raise LogCorrupted(
            seq, f"the server's {table} index differs from the books replayed from the log ({len(differing)} rows)"
        )


@dataclass(frozen=True)
class AuditReport:
    entries: int
    donations: int
    disbursements: int
    refunds: int
    projects: int


def audit_books(storage: Storage, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> AuditReport:
    mem = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in BOOKS_SCHEMA:
            mem.execute(statement)
        replay = Books(mem, window_seconds)
        counts = {"entries": 0, "disbursement": 0, "refund": 0}
        seq_of: dict[str, int] = {}

        def replayed():
            for seq, _, _, canonical in storage.iter_entries():
                entry = parse_entry(canonical)
                try:
                    replay.apply(entry)
                except LuodiError as exc:
                    raise LogCorrupted(seq, f"the accounting rules refuse this entry: {exc.detail}") from exc
                counts["entries"] += 1
                counts[entry.kind] = counts.get(entry.kind, 0) + 1
                if entry.kind == "donation":
                    seq_of[entry.receipt] = seq
                yield entry

        mem.execute("BEGIN")
        with storage.snapshot(streaming=True):
            try:
                traces = trace_fifo(replayed())
            except LuodiError as exc:
                if isinstance(exc, LogCorrupted):
                    raise
                raise LogCorrupted(counts["entries"] - 1, f"the FIFO fold refuses this entry: {exc.detail}") from exc
            server = storage.books(window_seconds)
            if server.applied() != counts["entries"] - 1:
                raise LogCorrupted(max(server.applied(), 0), "the server's books are not up to date with the log")
            for receipt, trace in traces.items():
                seq = seq_of[receipt]
                for name, books in (("replayed", replay), ("server", server)):
                    donation = books.donation(receipt)
                    if donation is None:
                        raise LogCorrupted(seq, f"the {name} books have no donation {receipt}")
                    if books.allocations_of(receipt) != trace.spent:
                        raise LogCorrupted(seq, f"the {name} books allocate donation {receipt} differently from FIFO")
                    if (donation.spent, donation.refunded) != (trace.spent_total, trace.refunded):
                        raise LogCorrupted(seq, f"the {name} books hold other totals for donation {receipt}")
            for project in replay.projects():
                if server.project(project.project) != project:
                    raise LogCorrupted(project.seq, f"the server's totals for project {project.project!r} are wrong")
            _compare_index(replay.conn, server.conn, counts["entries"] - 1)
            projects = len(replay.projects())
        mem.execute("ROLLBACK")
    finally:
        mem.close()
    return AuditReport(counts["entries"], len(traces), counts["disbursement"], counts["refund"], projects)
