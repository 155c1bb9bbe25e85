"""The SQLite books store (:class:`ledger.charity.store.BooksStore`).

The tables are created by the migrations alone (``migrations/sqlite/``);
:data:`BOOKS_TABLES` only names them, and a test checks the names against
what the migrations create.  Inside an append the books write through the
log's own write connection, so an entry and its index rows commit together.
"""

from __future__ import annotations

import json
import sqlite3

from ...charity.store import DERIVED, DERIVED_ORDER, BooksStore, BooksView, Charity, Donation, Policy, Project
from ...log.store import LogTxn
from .database import Database
from .log import SQLiteAppend

BOOKS_TABLES = ("books_state", *DERIVED, "donor_private")
# Looked up by their primary key, stored WITHOUT ROWID (migrations 0004, 0005 and 0007).
KEYED_TABLES = (
    "charity_keys", "donations", "allocations", "nonces", "intake_keys", "donor_private", "project_entries",
    "charity_entries",
)
# Keys per ``IN (...)`` query, well under SQLite's bound on parameters (999 before 3.32).
_IN_CHUNK = 500
_PROJECT = "SELECT project, charity, currency, seq, closed_seq IS NOT NULL, raised, spent, refunded, donations FROM projects"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _keys(text: str):
    try:
        return tuple(json.loads(text))
    except (TypeError, ValueError):
        return text  # not what this store writes: differs from any replay


class SQLiteBooks(BooksView):
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def applied(self) -> int:
        return self.conn.execute("SELECT applied FROM books_state WHERE id = 1").fetchone()[0]

    def mark_applied(self, seq: int) -> None:
        self.conn.execute("UPDATE books_state SET applied = ? WHERE id = 1", (seq,))

    # -- reads ---------------------------------------------------------------------------

    def charity(self, charity):
        row = self.conn.execute(
            "SELECT charity, name, keys, threshold FROM charities WHERE charity = ?", (charity,)
        ).fetchone()
        return None if row is None else Charity(row[0], row[1], tuple(json.loads(row[2])), row[3])

    def owner_of(self, public_key):
        row = self.conn.execute("SELECT charity FROM charity_keys WHERE public_key = ?", (public_key,)).fetchone()
        return None if row is None else row[0]

    def project(self, project):
        row = self.conn.execute(_PROJECT + " WHERE project = ?", (project,)).fetchone()
        return None if row is None else Project(row[0], row[1], row[2], row[3], bool(row[4]), *row[5:])

    def projects(self):
        rows = self.conn.execute(_PROJECT + " ORDER BY seq").fetchall()
        return [Project(r[0], r[1], r[2], r[3], bool(r[4]), *r[5:]) for r in rows]

    def donation(self, receipt):
        row = self.conn.execute(
            "SELECT d.seq, d.project, d.amount, d.spent, d.refunded, p.currency "
            "FROM donations AS d JOIN projects AS p ON p.project = d.project WHERE d.receipt = ?",
            (receipt,),
        ).fetchone()
        return None if row is None else Donation(receipt.hex(), *row)

    def allocations_of(self, receipt):
        rows = self.conn.execute(
            "SELECT disbursement, amount FROM allocations WHERE donation = ? ORDER BY seq", (receipt,)
        )
        return [(d.hex(), a) for d, a in rows]

    def project_seqs(self, project, start, limit):
        rows = self.conn.execute(
            "SELECT seq FROM project_entries WHERE project = ? AND seq >= ? ORDER BY seq LIMIT ?", (project, start, limit)
        )
        return [r[0] for r in rows]

    def charity_seqs(self, charity):
        rows = self.conn.execute("SELECT seq FROM charity_entries WHERE charity = ? ORDER BY seq", (charity,))
        return [r[0] for r in rows]

    def intake(self, charity, intake_key):
        row = self.conn.execute(
            "SELECT receipt FROM intake_keys WHERE charity = ? AND intake_key = ?", (charity, intake_key)
        ).fetchone()
        return None if row is None else row[0]

    def unspent(self, project):
        cur = self.conn.execute(
            "SELECT receipt, amount - spent - refunded FROM donations "
            "WHERE project = ? AND amount > spent + refunded ORDER BY seq",
            (project,),
        )
        while rows := cur.fetchmany(64):
            yield from rows

    def private(self, receipt):
        row = self.conn.execute(
            "SELECT salt, fingerprint, personal FROM donor_private WHERE receipt = ?", (receipt,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def privates(self):
        cur = self.conn.execute("SELECT receipt, salt, fingerprint, personal FROM donor_private ORDER BY receipt")
        while rows := cur.fetchmany(256):
            yield from rows

    def policy(self):
        row = self.conn.execute("SELECT signing_window_seconds, seq FROM policy").fetchone()
        return None if row is None else Policy(*row)

    def derived(self, table):
        columns = ", ".join(DERIVED[table])
        rows = self.conn.execute(f"SELECT {columns} FROM {table} ORDER BY {DERIVED_ORDER[table]}").fetchall()  # noqa: S608
        if table == "charities":
            rows = [(c, n, _keys(k), t, s) for c, n, k, t, s in rows]
        return sorted(rows)  # by the key fields, which come first and are unique

    # -- writes --------------------------------------------------------------------------

    def add_charity(self, charity, name, keys, threshold, seq):
        self.conn.execute(
            "INSERT INTO charities (charity, name, keys, threshold, seq) VALUES (?, ?, ?, ?, ?)",
            (charity, name, json.dumps(keys), threshold, seq),
        )

    def set_keys(self, charity, keys, threshold):
        self.conn.execute(
            "UPDATE charities SET keys = ?, threshold = ? WHERE charity = ?", (json.dumps(keys), threshold, charity)
        )

    def claim_key(self, public_key, charity):
        self.conn.execute("INSERT OR IGNORE INTO charity_keys (public_key, charity) VALUES (?, ?)", (public_key, charity))

    def _insert_new(self, sql: str, args: tuple) -> bool:
        """Insert a row keyed by what must be new; False if its key is taken."""
        try:
            self.conn.execute(sql, args)
        except sqlite3.IntegrityError:
            return False
        return True

    def use_nonce(self, charity, nonce):
        return self._insert_new("INSERT INTO nonces (charity, nonce) VALUES (?, ?)", (charity, nonce))

    def add_project(self, project, charity, currency, seq):
        self.conn.execute(
            "INSERT INTO projects (project, charity, currency, seq) VALUES (?, ?, ?, ?)", (project, charity, currency, seq)
        )

    def close_project(self, project, seq):
        self.conn.execute("UPDATE projects SET closed_seq = ? WHERE project = ?", (seq, project))

    def add_intake_key(self, charity, intake_key, receipt):
        return self._insert_new(
            "INSERT INTO intake_keys (charity, intake_key, receipt) VALUES (?, ?, ?)", (charity, intake_key, receipt)
        )

    def add_donation(self, receipt, seq, project, amount):
        self.conn.execute(
            "INSERT INTO donations (receipt, seq, project, amount) VALUES (?, ?, ?, ?)", (receipt, seq, project, amount)
        )
        self.conn.execute(
            "UPDATE projects SET raised = raised + ?, donations = donations + 1 WHERE project = ?", (amount, project)
        )

    def spend(self, donation, disbursement, amount, seq):
        self.conn.execute("UPDATE donations SET spent = spent + ? WHERE receipt = ?", (amount, donation))
        self.conn.execute(
            "INSERT INTO allocations (donation, disbursement, amount, seq) VALUES (?, ?, ?, ?)",
            (donation, disbursement, amount, seq),
        )

    def add_spent(self, project, amount):
        self.conn.execute("UPDATE projects SET spent = spent + ? WHERE project = ?", (amount, project))

    def refund(self, donation, project, amount):
        self.conn.execute("UPDATE donations SET refunded = refunded + ? WHERE receipt = ?", (amount, donation))
        self.conn.execute("UPDATE projects SET refunded = refunded + ? WHERE project = ?", (amount, project))

    def add_project_entry(self, project, seq):
        self.conn.execute("INSERT INTO project_entries (project, seq) VALUES (?, ?)", (project, seq))

    def set_policy(self, signing_window_seconds, seq):
        self.conn.execute("INSERT INTO policy (id, signing_window_seconds, seq) VALUES (1, ?, ?)", (signing_window_seconds, seq))

    def add_charity_entry(self, charity, seq):
        self.conn.execute("INSERT INTO charity_entries (charity, seq) VALUES (?, ?)", (charity, seq))

    def put_private(self, receipt, salt, fingerprint, personal):
        self.conn.execute(
            "INSERT INTO donor_private (receipt, salt, fingerprint, personal) VALUES (?, ?, ?, ?)",
            (receipt, salt, fingerprint, personal),
        )


    # -- many at once: one statement per table ---------------------------------------------

    def intakes(self, charity, intake_keys):
        keys = list(dict.fromkeys(intake_keys))
        found = {}
        for lo in range(0, len(keys), _IN_CHUNK):
            chunk = keys[lo : lo + _IN_CHUNK]
            rows = self.conn.execute(
                f"SELECT intake_key, receipt FROM intake_keys WHERE charity = ? AND intake_key IN ({_marks(len(chunk))})",  # noqa: S608
                (charity, *chunk),
            )
            found.update(rows)
        return found

    def add_donations(self, rows):
        self.conn.executemany(
            "INSERT INTO intake_keys (charity, intake_key, receipt) VALUES (?, ?, ?)", [r[:3] for r in rows]
        )
        self.conn.executemany("INSERT INTO donations (receipt, seq, project, amount) VALUES (?, ?, ?, ?)", [r[2:] for r in rows])
        totals: dict[str, list[int]] = {}
        for *_, project, amount in rows:
            total = totals.setdefault(project, [0, 0])
            total[0] += amount
            total[1] += 1
        for project, (raised, count) in totals.items():
            self.conn.execute(
                "UPDATE projects SET raised = raised + ?, donations = donations + ? WHERE project = ?", (raised, count, project)
            )

    def add_project_entries(self, rows):
        self.conn.executemany("INSERT INTO project_entries (project, seq) VALUES (?, ?)", rows)

    def put_privates(self, rows):
        self.conn.executemany("INSERT INTO donor_private (receipt, salt, fingerprint, personal) VALUES (?, ?, ?, ?)", rows)


class SQLiteBooksStore(BooksStore):
    def __init__(self, db: Database):
        self.db = db

    def view(self) -> SQLiteBooks:
        return SQLiteBooks(self.db.reader())

    def in_transaction(self, txn: LogTxn) -> SQLiteBooks:
        if not isinstance(txn, SQLiteAppend):
            raise TypeError("the SQLite books follow the SQLite log only")
        return SQLiteBooks(txn.conn)

    def erase_private(self, receipt: bytes) -> bool:
        with self.db.write() as conn:
            erased = conn.execute("DELETE FROM donor_private WHERE receipt = ?", (receipt,)).rowcount > 0
        if erased:
            self.db.scrub()
        return erased
