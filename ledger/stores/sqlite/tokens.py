"""The SQLite token store (:class:`ledger.charity.store.TokenStore`): bearer-token
hashes, each change in a write transaction of its own."""

from __future__ import annotations

from ...charity.store import TokenStore
from .database import Database

_ALL = "SELECT token_hash, role, charity, created, rate FROM tokens ORDER BY created, token_hash"


class SQLiteTokens(TokenStore):
    def __init__(self, db: Database):
        self.db = db

    def add(self, token_hash, role, charity, created, rate=None):
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO tokens (token_hash, role, charity, created, rate) VALUES (?, ?, ?, ?, ?)",
                (token_hash, role, charity, created, rate),
            )

    def get(self, token_hash):
        return self.db.reader().execute(
            "SELECT token_hash, role, charity, rate FROM tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()

    def all(self):
        return self.db.reader().execute(_ALL).fetchall()

    def remove(self, token_hash):
        with self.db.write() as conn:
            return conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,)).rowcount > 0
