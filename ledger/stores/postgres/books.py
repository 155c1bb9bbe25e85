"""The PostgreSQL books store (:class:`ledger.charity.store.BooksStore`).

The same tables and rules as SQLite's (:mod:`ledger.stores.sqlite.books`),
created by ``migrations/postgres/``.  Inside an append the books write through
the log's own transaction, so an entry and its index rows commit together.
An error aborts a PostgreSQL transaction, so a key that must be new is
inserted with ``ON CONFLICT DO NOTHING`` and judged by the row count, never by
catching the error.  A batch writes each table with one multi-row INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg

from ...charity.store import DERIVED, DERIVED_ORDER, BooksStore, BooksView, Charity, Donation, Policy, Project
from ...log.store import LogTxn
from .database import Database
from .log import PostgresAppend

_PROJECT = "SELECT project, charity, currency, seq, closed_seq IS NOT NULL, raised, spent, refunded, donations FROM projects"


def _keys(text: str):
    try:
        return tuple(json.loads(text))
    except (TypeError, ValueError):
        return text  # not what this store writes: differs from any replay


def _project(row) -> Project:
    return Project(row[0], row[1], row[2], row[3], bool(row[4]), *row[5:])


class PostgresBooks(BooksView):
    """The books through ``run``: ``run(work)`` calls ``work(conn)`` on the append
    transaction's connection, or on a reading one (:meth:`Database.read`)."""

    def __init__(self, run: Callable[[Callable[[psycopg.Connection], Any]], Any], db: Database | None = None):
        self._run = run
        self._db = db  # for scans outside an append

    def _one(self, query: str, args: tuple = ()):
        return self._run(lambda conn: conn.execute(query, args).fetchone())

    def _all(self, query: str, args: tuple = ()) -> list[tuple]:
        return self._run(lambda conn: conn.execute(query, args).fetchall())

    def _do(self, query: str, args: tuple = ()) -> int:
        return self._run(lambda conn: conn.execute(query, args).rowcount)

    def applied(self) -> int:
        return self._one("SELECT applied FROM books_state WHERE id = 1")[0]

    def mark_applied(self, seq: int) -> None:
        self._do("UPDATE books_state SET applied = %s WHERE id = 1", (seq,))

    # -- reads ---------------------------------------------------------------------------

    def charity(self, charity):
        row = self._one("SELECT charity, name, keys, threshold FROM charities WHERE charity = %s", (charity,))
        return None if row is None else Charity(row[0], row[1], tuple(json.loads(row[2])), row[3])

    def owner_of(self, public_key):
        row = self._one("SELECT charity FROM charity_keys WHERE public_key = %s", (public_key,))
        return None if row is None else row[0]

    def project(self, project):
        row = self._one(_PROJECT + " WHERE project = %s", (project,))
        return None if row is None else _project(row)

    def projects(self):
        return [_project(r) for r in self._all(_PROJECT + " ORDER BY seq")]

    def donation(self, receipt):
        row = self._one(
            "SELECT d.seq, d.project, d.amount, d.spent, d.refunded, p.currency "
            "FROM donations AS d JOIN projects AS p ON p.project = d.project WHERE d.receipt = %s",
            (receipt,),
        )
        return None if row is None else Donation(receipt.hex(), *row)

    def allocations_of(self, receipt):
        rows = self._all("SELECT disbursement, amount FROM allocations WHERE donation = %s ORDER BY seq", (receipt,))
        return [(d.hex(), a) for d, a in rows]

    def project_seqs(self, project, start, limit):
        rows = self._all(
            "SELECT seq FROM project_entries WHERE project = %s AND seq >= %s ORDER BY seq LIMIT %s", (project, start, limit)
        )
        return [r[0] for r in rows]

    def charity_seqs(self, charity):
        return [r[0] for r in self._all("SELECT seq FROM charity_entries WHERE charity = %s ORDER BY seq", (charity,))]

    def intake(self, charity, intake_key):
        row = self._one("SELECT receipt FROM intake_keys WHERE charity = %s AND intake_key = %s", (charity, intake_key))
        return None if row is None else row[0]

    def unspent(self, project):
        query = (
            "SELECT receipt, amount - spent - refunded, seq FROM donations "
            "WHERE project = %s AND amount > spent + refunded AND seq > %s ORDER BY seq LIMIT %s"
        )
        if self._db is not None:  # a read: stream, the project may hold millions
            for receipt, unspent, _ in self._db.scan(query, (project, -1, None), rows=256):
                yield receipt, unspent
            return
        # Inside an append: FIFO stops after the few donations a disbursement spends,
        # so read a page at a time, from where the last page ended (the partial index's order).
        after, page = -1, 64
        while True:
            rows = self._all(query, (project, after, page))
            for receipt, unspent, _ in rows:
                yield receipt, unspent
            if len(rows) < page:
                return
            after, page = rows[-1][2], min(page * 4, 4096)

    def private(self, receipt):
        row = self._one("SELECT salt, fingerprint, personal FROM donor_private WHERE receipt = %s", (receipt,))
        return None if row is None else (row[0], row[1], row[2])

    def privates(self):
        query = "SELECT receipt, salt, fingerprint, personal FROM donor_private ORDER BY receipt"
        if self._db is not None:
            yield from self._db.scan(query, rows=256)
        else:
            yield from self._all(query)

    def policy(self):
        row = self._one("SELECT signing_window_seconds, seq FROM policy")
        return None if row is None else Policy(*row)

    def derived(self, table):
        columns = ", ".join(DERIVED[table])
        rows = self._all(f"SELECT {columns} FROM {table} ORDER BY {DERIVED_ORDER[table]}")  # noqa: S608 - constant names
        if table == "charities":
            rows = [(c, n, _keys(k), t, s) for c, n, k, t, s in rows]
        return sorted(rows)  # by the key fields, which come first and are unique

    # -- writes --------------------------------------------------------------------------

    def add_charity(self, charity, name, keys, threshold, seq):
        self._do(
            "INSERT INTO charities (charity, name, keys, threshold, seq) VALUES (%s, %s, %s, %s, %s)",
            (charity, name, json.dumps(keys), threshold, seq),
        )

    def set_keys(self, charity, keys, threshold):
        self._do("UPDATE charities SET keys = %s, threshold = %s WHERE charity = %s", (json.dumps(keys), threshold, charity))

    def claim_key(self, public_key, charity):
        self._do(
            "INSERT INTO charity_keys (public_key, charity) VALUES (%s, %s) ON CONFLICT DO NOTHING", (public_key, charity)
        )

    def use_nonce(self, charity, nonce):
        return self._do("INSERT INTO nonces (charity, nonce) VALUES (%s, %s) ON CONFLICT DO NOTHING", (charity, nonce)) == 1

    def add_project(self, project, charity, currency, seq):
        self._do(
            "INSERT INTO projects (project, charity, currency, seq) VALUES (%s, %s, %s, %s)", (project, charity, currency, seq)
        )

    def close_project(self, project, seq):
        self._do("UPDATE projects SET closed_seq = %s WHERE project = %s", (seq, project))

    def add_intake_key(self, charity, intake_key, receipt):
        return (
            self._do(
                "INSERT INTO intake_keys (charity, intake_key, receipt) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (charity, intake_key, receipt),
            )
            == 1
        )

    def add_donation(self, receipt, seq, project, amount):
        def work(conn):
            conn.execute(
                "INSERT INTO donations (receipt, seq, project, amount) VALUES (%s, %s, %s, %s)", (receipt, seq, project, amount)
            )
            conn.execute(
                "UPDATE projects SET raised = raised + %s, donations = donations + 1 WHERE project = %s", (amount, project)
            )

        self._run(work)

    def spend(self, donation, disbursement, amount, seq):
        def work(conn):
            conn.execute("UPDATE donations SET spent = spent + %s WHERE receipt = %s", (amount, donation))
            conn.execute(
                "INSERT INTO allocations (donation, disbursement, amount, seq) VALUES (%s, %s, %s, %s)",
                (donation, disbursement, amount, seq),
            )

        self._run(work)

    def add_spent(self, project, amount):
        self._do("UPDATE projects SET spent = spent + %s WHERE project = %s", (amount, project))

    def refund(self, donation, project, amount):
        def work(conn):
            conn.execute("UPDATE donations SET refunded = refunded + %s WHERE receipt = %s", (amount, donation))
            conn.execute("UPDATE projects SET refunded = refunded + %s WHERE project = %s", (amount, project))

        self._run(work)

    def add_project_entry(self, project, seq):
        self._do("INSERT INTO project_entries (project, seq) VALUES (%s, %s)", (project, seq))

    def set_policy(self, signing_window_seconds, seq):
        self._do("INSERT INTO policy (id, signing_window_seconds, seq) VALUES (1, %s, %s)", (signing_window_seconds, seq))

    def add_charity_entry(self, charity, seq):
        self._do("INSERT INTO charity_entries (charity, seq) VALUES (%s, %s)", (charity, seq))

    def put_private(self, receipt, salt, fingerprint, personal):
        self._do(
            "INSERT INTO donor_private (receipt, salt, fingerprint, personal) VALUES (%s, %s, %s, %s)",
            (receipt, salt, fingerprint, personal),
        )

    # -- many at once: one statement per table ---------------------------------------------

    def intakes(self, charity, intake_keys):
        keys = list(dict.fromkeys(intake_keys))
        if not keys:
            return {}
        rows = self._all(
            "SELECT intake_key, receipt FROM intake_keys WHERE charity = %s AND intake_key = ANY(%s::text[])", (charity, keys)
        )
        return dict(rows)

    def add_donations(self, rows):
        if not rows:
            return
        totals: dict[str, list[int]] = {}
        for *_, project, amount in rows:
            total = totals.setdefault(project, [0, 0])
            total[0] += amount
            total[1] += 1
        charities, keys, receipts, seqs, projects, amounts = (list(c) for c in zip(*rows, strict=True))

        def work(conn):
            conn.execute(
                "INSERT INTO intake_keys (charity, intake_key, receipt) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::bytea[])",
                (charities, keys, receipts),
            )
            conn.execute(
                "INSERT INTO donations (receipt, seq, project, amount) "
                "SELECT * FROM unnest(%s::bytea[], %s::bigint[], %s::text[], %s::bigint[])",
                (receipts, seqs, projects, amounts),
            )
            for project, (raised, count) in totals.items():
                conn.execute(
                    "UPDATE projects SET raised = raised + %s, donations = donations + %s WHERE project = %s",
                    (raised, count, project),
                )

        self._run(work)

    def add_project_entries(self, rows):
        if rows:
            projects, seqs = (list(c) for c in zip(*rows, strict=True))
            self._do(
                "INSERT INTO project_entries (project, seq) SELECT * FROM unnest(%s::text[], %s::bigint[])", (projects, seqs)
            )

    def put_privates(self, rows):
        if rows:
            receipts, salts, prints, personal = (list(c) for c in zip(*rows, strict=True))
            self._do(
                "INSERT INTO donor_private (receipt, salt, fingerprint, personal) "
                "SELECT * FROM unnest(%s::bytea[], %s::bytea[], %s::bytea[], %s::text[])",
                (receipts, salts, prints, personal),
            )


class PostgresBooksStore(BooksStore):
    def __init__(self, db: Database):
        self.db = db

    def view(self) -> PostgresBooks:
        return PostgresBooks(self.db.read, self.db)

    def in_transaction(self, txn: LogTxn) -> PostgresBooks:
        if not isinstance(txn, PostgresAppend):
            raise TypeError("the PostgreSQL books follow the PostgreSQL log only")
        conn = txn.conn
        return PostgresBooks(lambda work: work(conn))

    def erase_private(self, receipt: bytes) -> bool:
        """Delete the row, then VACUUM the table so the dead row's space is
        reclaimed at once (see docs/operations.md on what PostgreSQL's WAL and
        backups still hold)."""
        erased = self.db.run_write(
            lambda conn: conn.execute("DELETE FROM donor_private WHERE receipt = %s", (receipt,)).rowcount > 0
        )
        if erased:
            self.db.read(lambda conn: conn.execute("VACUUM donor_private"))
        return erased
