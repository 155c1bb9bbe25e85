"""The PostgreSQL token store (:class:`ledger.charity.store.TokenStore`): bearer-token
hashes, each change in a write transaction of its own (retried after a conflict)."""

from __future__ import annotations

from ...charity.store import TokenStore
from .database import Database

_ALL = "SELECT token_hash, role, charity, created, rate FROM tokens ORDER BY created, token_hash"


class PostgresTokens(TokenStore):
    def __init__(self, db: Database):
        self.db = db

    def add(self, token_hash, role, charity, created, rate=None):
        self.db.run_write(
            lambda conn: conn.execute(
                "INSERT INTO tokens (token_hash, role, charity, created, rate) VALUES (%s, %s, %s, %s, %s)",
                (token_hash, role, charity, created, rate),
            )
        )

    def get(self, token_hash):
        return self.db.read(
            lambda conn: conn.execute(
                "SELECT token_hash, role, charity, rate FROM tokens WHERE token_hash = %s", (token_hash,)
            ).fetchone()
        )

    def all(self):
        return self.db.read(lambda conn: conn.execute(_ALL).fetchall())

    def remove(self, token_hash):
        return self.db.run_write(
            lambda conn: conn.execute("DELETE FROM tokens WHERE token_hash = %s", (token_hash,)).rowcount > 0
        )
