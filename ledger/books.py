"""The books: the accounting rules that need the log so far, over an index kept beside it.

For every entry appended, :meth:`Books.apply` checks the contextual rules
(the charity and project exist; a threshold of the charity's current keys
signed; the nonce is new and ``signed_at`` is within the window of the entry's
time; the project's balance covers a disbursement and the donation's unspent
money covers a refund) and updates the index in the same transaction as the
entry, so a refusal writes nothing.  Disbursements are allocated with
:func:`ledger.allocation.allocate_fifo`, the same function an auditor's
:func:`ledger.allocation.trace_fifo` uses.

The index is SQLite tables on the log's own connection; a server database
later implements the same queries.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import sqlite3
from dataclasses import dataclass

from .allocation import allocate_fifo
from .canonical import canonical_bytes
from .charity_kinds import DISBURSEMENT, KEYS_ROTATED
from .clock import parse_time
from .entry import Entry
from .errors import Conflict, InvalidInput, MalformedNote, NotFound, Overspend, Replay, SignatureError
from .note import Verifier, b64decode_strict

DEFAULT_WINDOW_SECONDS = 600

# Tables keyed by what they are looked up by, stored WITHOUT ROWID: each row
# lives in its key's B-tree, so an insert writes that B-tree alone, not a rowid
# table and an index beside it (migration 0004).
KEYED_TABLES = {
    "charity_keys": "CREATE TABLE charity_keys (public_key BLOB PRIMARY KEY, charity TEXT NOT NULL) WITHOUT ROWID",
    "donations": """CREATE TABLE donations (
        receipt BLOB PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, project TEXT NOT NULL,
        amount INTEGER NOT NULL, spent INTEGER NOT NULL DEFAULT 0, refunded INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID""",
    "allocations": """CREATE TABLE allocations (
        donation BLOB NOT NULL, disbursement BLOB NOT NULL, amount INTEGER NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (donation, disbursement)) WITHOUT ROWID""",
    "nonces": """CREATE TABLE nonces (
        charity TEXT NOT NULL, nonce TEXT NOT NULL, PRIMARY KEY (charity, nonce)) WITHOUT ROWID""",
    "intake_keys": "CREATE TABLE intake_keys (intake_key TEXT PRIMARY KEY, receipt BLOB NOT NULL) WITHOUT ROWID",
    "donor_private": """CREATE TABLE donor_private (
        receipt BLOB PRIMARY KEY, salt BLOB NOT NULL, fingerprint BLOB NOT NULL, personal TEXT) WITHOUT ROWID""",
    "project_entries": """CREATE TABLE project_entries (
        project TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (project, seq)) WITHOUT ROWID""",
}
KEYED_INDEXES = [
    # FIFO reads the oldest donations that still hold money; spent ones leave this index.
    "CREATE INDEX donations_unspent ON donations (project, seq) WHERE amount > spent + refunded",
    "CREATE INDEX allocations_by_disbursement ON allocations (disbursement)",
]

BOOKS_SCHEMA = [
    "CREATE TABLE books_state (id INTEGER PRIMARY KEY CHECK (id = 1), applied INTEGER NOT NULL)",
    "INSERT INTO books_state (id, applied) VALUES (1, -1)",
    """CREATE TABLE charities (
        charity TEXT PRIMARY KEY, name TEXT NOT NULL, keys TEXT NOT NULL,
        threshold INTEGER NOT NULL, seq INTEGER NOT NULL)""",
    """CREATE TABLE projects (
        project TEXT PRIMARY KEY, charity TEXT NOT NULL, currency TEXT NOT NULL, seq INTEGER NOT NULL,
        closed_seq INTEGER, raised INTEGER NOT NULL DEFAULT 0, spent INTEGER NOT NULL DEFAULT 0,
        refunded INTEGER NOT NULL DEFAULT 0, donations INTEGER NOT NULL DEFAULT 0)""",
    *KEYED_TABLES.values(),
    *KEYED_INDEXES,
]

BOOKS_TABLES = tuple(re.findall(r"CREATE TABLE (\w+)", " ".join(BOOKS_SCHEMA)))


@dataclass(frozen=True)
class Charity:
    charity: str
    name: str
    keys: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class Project:
    project: str
    charity: str
    currency: str
    seq: int
    closed: bool
    raised: int
    spent: int
    refunded: int
    donations: int

    @property
    def balance(self) -> int:
        return self.raised - self.spent - self.refunded


@dataclass(frozen=True)
class Donation:
    receipt: str
    seq: int
    project: str
    amount: int
    spent: int
    refunded: int
    currency: str

    @property
    def unspent(self) -> int:
        return self.amount - self.spent - self.refunded


def check_signatures(payload: dict, sigs: list[dict], charity: Charity, owner_of) -> None:
    """At least ``threshold`` distinct current keys of ``charity`` signed the canonical payload.

    Every listed signature must be valid and by a current key: a key of
    another charity, a key counted twice or a bad signature refuses the whole.
    """
    data = canonical_bytes(payload)
    current = {Verifier.from_string(k).public_key for k in charity.keys}
    seen: set[bytes] = set()
    for i, sig in enumerate(sigs):
        verifier = Verifier.from_string(sig["key"])
        if verifier.public_key in seen:
            raise SignatureError(f"signature {i}: the same key signed twice")
        seen.add(verifier.public_key)
        if verifier.public_key not in current:
            owner = owner_of(verifier.public_key)
            if owner is not None and owner != charity.charity:
                raise SignatureError(f"signature {i} is by a key of charity {owner}, not {charity.charity}")
            raise SignatureError(f"signature {i} is not by a current key of charity {charity.charity}")
        try:
            raw = b64decode_strict(sig["signature"], f"signature {i}")
        except MalformedNote as exc:
            raise SignatureError(exc.detail) from exc
        if len(raw) != 64 or not verifier.verify(data, raw):
            raise SignatureError(f"signature {i} by {verifier.name} does not verify over the payload")
    if len(seen) < charity.threshold:
        raise SignatureError(f"{len(seen)} distinct key(s) signed; charity {charity.charity} needs {charity.threshold}")


class Books:
    def __init__(self, conn: sqlite3.Connection, window_seconds: int = DEFAULT_WINDOW_SECONDS):
        self.conn = conn
        self.window = _dt.timedelta(seconds=window_seconds)

    # -- state of the index --------------------------------------------------------

    def applied(self) -> int:
        return self.conn.execute("SELECT applied FROM books_state WHERE id = 1").fetchone()[0]

    def mark_applied(self, seq: int) -> None:
        self.conn.execute("UPDATE books_state SET applied = ? WHERE id = 1", (seq,))

    # -- queries -------------------------------------------------------------------

    def charity(self, charity: str) -> Charity | None:
        row = self.conn.execute(
            "SELECT charity, name, keys, threshold FROM charities WHERE charity = ?", (charity,)
        ).fetchone()
        return None if row is None else Charity(row[0], row[1], tuple(json.loads(row[2])), row[3])

    def owner_of(self, public_key: bytes) -> str | None:
        row = self.conn.execute("SELECT charity FROM charity_keys WHERE public_key = ?", (public_key,)).fetchone()
        return None if row is None else row[0]

    def project(self, project: str) -> Project | None:
        row = self.conn.execute(
            "SELECT project, charity, currency, seq, closed_seq IS NOT NULL, raised, spent, refunded, donations "
            "FROM projects WHERE project = ?",
            (project,),
        ).fetchone()
        return None if row is None else Project(row[0], row[1], row[2], row[3], bool(row[4]), *row[5:])

    def projects(self) -> list[Project]:
        ids = [r[0] for r in self.conn.execute("SELECT project FROM projects ORDER BY seq")]
        return [self.project(p) for p in ids]

    def donation(self, receipt: str) -> Donation | None:
        row = self.conn.execute(
            "SELECT d.seq, d.project, d.amount, d.spent, d.refunded, p.currency "
            "FROM donations AS d JOIN projects AS p ON p.project = d.project WHERE d.receipt = ?",
            (bytes.fromhex(receipt),),
        ).fetchone()
        return None if row is None else Donation(receipt, *row)

    def allocations_of(self, receipt: str) -> list[tuple[str, int]]:
        """(disbursement receipt, amount) that spent this donation, in log order."""
        rows = self.conn.execute(
            "SELECT disbursement, amount FROM allocations WHERE donation = ? ORDER BY seq", (bytes.fromhex(receipt),)
        )
        return [(d.hex(), a) for d, a in rows]

    def project_seqs(self, project: str, start: int, limit: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT seq FROM project_entries WHERE project = ? AND seq >= ? ORDER BY seq LIMIT ?", (project, start, limit)
        )
        return [r[0] for r in rows]

    def intake(self, intake_key: str) -> str | None:
        row = self.conn.execute("SELECT receipt FROM intake_keys WHERE intake_key = ?", (intake_key,)).fetchone()
        return None if row is None else row[0].hex()

    def unspent(self, project: str):
        """(receipt, unspent) of the project's donations that hold money, oldest first."""
        cur = self.conn.execute(
            "SELECT receipt, amount - spent - refunded FROM donations "
            "WHERE project = ? AND amount > spent + refunded ORDER BY seq",
            (project,),
        )
        while rows := cur.fetchmany(64):
            yield from rows

    # -- donor privacy: the only table that is not derived from the log ---------------

    def put_private(self, receipt: bytes, salt: bytes, fingerprint: bytes, personal: str | None) -> None:
        self.conn.execute(
            "INSERT INTO donor_private (receipt, salt, fingerprint, personal) VALUES (?, ?, ?, ?)",
            (receipt, salt, fingerprint, personal),
        )

    def private(self, receipt: str) -> tuple[bytes, bytes, str | None] | None:
        row = self.conn.execute(
            "SELECT salt, fingerprint, personal FROM donor_private WHERE receipt = ?", (bytes.fromhex(receipt),)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def erase_private(self, receipt: str) -> bool:
        cur = self.conn.execute("DELETE FROM donor_private WHERE receipt = ?", (bytes.fromhex(receipt),))
        return cur.rowcount > 0

    # -- rules -----------------------------------------------------------------------

    def apply(self, entry: Entry) -> None:
        """Check ``entry`` against the books and record it; raise to refuse it."""
        handler = _HANDLERS.get(entry.kind)
        if handler is not None:
            handler(self, entry, entry.body)
            project = entry.body.get("project") or entry.body.get("payload", {}).get("project")
            if project is not None:
                self.conn.execute("INSERT INTO project_entries (project, seq) VALUES (?, ?)", (project, entry.seq))

    def _need_charity(self, charity: str) -> Charity:
        found = self.charity(charity)
        if found is None:
            raise NotFound(f"no charity {charity!r}")
        return found

    def _need_open_project(self, project: str, currency: str | None = None) -> Project:
        found = self.project(project)
        if found is None:
            raise NotFound(f"no project {project!r}")
        if found.closed:
            raise Conflict(f"project {project!r} is closed")
        if currency is not None and currency != found.currency:
            raise InvalidInput(f"project {project!r} takes {found.currency}, not {currency}")
        return found

    def _claim_keys(self, charity: str, keys) -> None:
        for key in keys:
            public = Verifier.from_string(key).public_key
            owner = self.owner_of(public)
            if owner is not None and owner != charity:
                raise Conflict(f"key {key.split('+')[0]} is registered to charity {owner}")
            self.conn.execute(
                "INSERT OR IGNORE INTO charity_keys (public_key, charity) VALUES (?, ?)", (public, charity)
            )

    def _check_signed(self, entry: Entry, payload: dict, sigs: list[dict], charity: Charity) -> None:
        check_signatures(payload, sigs, charity, self.owner_of)
        signed_at = parse_time(payload["signed_at"])
        if abs(parse_time(entry.time) - signed_at) > self.window:
            raise SignatureError(
                f"signed_at {payload['signed_at']} is more than {int(self.window.total_seconds())}s "
                f"from the entry time {entry.time}"
            )
        try:
            self.conn.execute("INSERT INTO nonces (charity, nonce) VALUES (?, ?)", (charity.charity, payload["nonce"]))
        except sqlite3.IntegrityError as exc:
            raise Replay(f"nonce {payload['nonce']!r} was already used by charity {charity.charity}") from exc

    def _charity_registered(self, entry: Entry, body: dict) -> None:
        if self.charity(body["charity"]) is not None:
            raise Conflict(f"charity {body['charity']!r} is already registered")
        self._claim_keys(body["charity"], body["keys"])
        self.conn.execute(
            "INSERT INTO charities (charity, name, keys, threshold, seq) VALUES (?, ?, ?, ?, ?)",
            (body["charity"], body["name"], json.dumps(body["keys"]), body["threshold"], entry.seq),
        )

    def _charity_keys_rotated(self, entry: Entry, body: dict) -> None:
        payload = body["payload"]
        assert payload["action"] == KEYS_ROTATED
        charity = self._need_charity(payload["charity"])
        self._check_signed(entry, payload, body["signatures"], charity)
        self._claim_keys(charity.charity, payload["keys"])
        self.conn.execute(
            "UPDATE charities SET keys = ?, threshold = ? WHERE charity = ?",
            (json.dumps(payload["keys"]), payload["threshold"], charity.charity),
        )

    def _project_opened(self, entry: Entry, body: dict) -> None:
        if self.project(body["project"]) is not None:
            raise Conflict(f"project {body['project']!r} already exists")
        self._need_charity(body["charity"])
        self.conn.execute(
            "INSERT INTO projects (project, charity, currency, seq) VALUES (?, ?, ?, ?)",
            (body["project"], body["charity"], body["currency"], entry.seq),
        )

    def _donation(self, entry: Entry, body: dict) -> None:
        self._need_open_project(body["project"], body["currency"])
        try:
            self.conn.execute(
                "INSERT INTO intake_keys (intake_key, receipt) VALUES (?, ?)", (body["intake_key"], entry.leaf_hash)
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"intake key {body['intake_key']!r} was already used") from exc
        self.conn.execute(
            "INSERT INTO donations (receipt, seq, project, amount) VALUES (?, ?, ?, ?)",
            (entry.leaf_hash, entry.seq, body["project"], body["amount"]),
        )
        self.conn.execute(
            "UPDATE projects SET raised = raised + ?, donations = donations + 1 WHERE project = ?",
            (body["amount"], body["project"]),
        )

    def _disbursement(self, entry: Entry, body: dict) -> None:
        payload = body["payload"]
        assert payload["action"] == DISBURSEMENT
        project = self.project(payload["project"])
        if project is not None and project.charity != payload["charity"]:
            raise SignatureError(
                f"project {project.project!r} belongs to charity {project.charity}, not {payload['charity']}"
            )
        project = self._need_open_project(payload["project"], payload["currency"])
        charity = self._need_charity(payload["charity"])
        self._check_signed(entry, payload, body["signatures"], charity)
        if payload["amount"] > project.balance:
            raise Overspend(
                f"disbursement of {payload['amount']} exceeds project {project.project!r} balance {project.balance}"
            )
        takes = allocate_fifo(self.unspent(project.project), payload["amount"])
        for receipt, take in takes:
            self.conn.execute("UPDATE donations SET spent = spent + ? WHERE receipt = ?", (take, receipt))
            self.conn.execute(
                "INSERT INTO allocations (donation, disbursement, amount, seq) VALUES (?, ?, ?, ?)",
                (receipt, entry.leaf_hash, take, entry.seq),
            )
        self.conn.execute(
            "UPDATE projects SET spent = spent + ? WHERE project = ?", (payload["amount"], project.project)
        )

    def _refund(self, entry: Entry, body: dict) -> None:
        donation = self.donation(body["donation"])
        if donation is None:
            raise NotFound(f"no donation with receipt {body['donation']}")
        if donation.project != body["project"]:
            raise InvalidInput(f"donation {body['donation']} belongs to project {donation.project!r}")
        project = self.project(donation.project)
        if body["currency"] != project.currency:
            raise InvalidInput(f"project {project.project!r} takes {project.currency}, not {body['currency']}")
        if body["amount"] > donation.unspent:
            raise Overspend(f"refund of {body['amount']} exceeds the donation's unspent {donation.unspent}")
        self.conn.execute(
            "UPDATE donations SET refunded = refunded + ? WHERE receipt = ?",
            (body["amount"], bytes.fromhex(body["donation"])),
        )
        self.conn.execute(
            "UPDATE projects SET refunded = refunded + ? WHERE project = ?", (body["amount"], project.project)
        )

    def _project_closed(self, entry: Entry, body: dict) -> None:
        self._need_open_project(body["project"])
        self.conn.execute("UPDATE projects SET closed_seq = ? WHERE project = ?", (entry.seq, body["project"]))


_HANDLERS = {
    "charity.registered": Books._charity_registered,
    "charity.keys_rotated": Books._charity_keys_rotated,
    "project.opened": Books._project_opened,
    "donation": Books._donation,
    "disbursement": Books._disbursement,
    "refund": Books._refund,
    "project.closed": Books._project_closed,
}
