"""Rebuild the books' keyed tables WITHOUT ROWID.

Each of these tables is looked up by its primary key.  Stored as a rowid table
with its key in a separate index, every insert wrote two B-trees; WITHOUT
ROWID, the row lives in its key's B-tree and an insert writes one.  A
donation's commit goes from 17 written pages to 14 (measured at 1,000,000
entries, see docs/performance.md).  The rows are copied unchanged.
"""

# Frozen as applied: the tables and indexes as they are after this migration.
TABLES = {
    "charity_keys": "CREATE TABLE {name} (public_key BLOB PRIMARY KEY, charity TEXT NOT NULL) WITHOUT ROWID",
    "donations": """CREATE TABLE {name} (
        receipt BLOB PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, project TEXT NOT NULL,
        amount INTEGER NOT NULL, spent INTEGER NOT NULL DEFAULT 0, refunded INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID""",
    "allocations": """CREATE TABLE {name} (
        donation BLOB NOT NULL, disbursement BLOB NOT NULL, amount INTEGER NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (donation, disbursement)) WITHOUT ROWID""",
    "nonces": """CREATE TABLE {name} (
        charity TEXT NOT NULL, nonce TEXT NOT NULL, PRIMARY KEY (charity, nonce)) WITHOUT ROWID""",
    "intake_keys": "CREATE TABLE {name} (intake_key TEXT PRIMARY KEY, receipt BLOB NOT NULL) WITHOUT ROWID",
    "donor_private": """CREATE TABLE {name} (
        receipt BLOB PRIMARY KEY, salt BLOB NOT NULL, fingerprint BLOB NOT NULL, personal TEXT) WITHOUT ROWID""",
    "project_entries": """CREATE TABLE {name} (
        project TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (project, seq)) WITHOUT ROWID""",
}
INDEXES = [
    "CREATE INDEX donations_unspent ON donations (project, seq) WHERE amount > spent + refunded",
    "CREATE INDEX allocations_by_disbursement ON allocations (disbursement)",
]


def migrate(db) -> None:
    for name, create in TABLES.items():
        db.execute(create.format(name=f"{name}_rebuilt"))
        db.execute(f"INSERT INTO {name}_rebuilt SELECT * FROM {name}")  # noqa: S608 - names are constants
        db.execute(f"DROP TABLE {name}")  # its indexes go with it
        db.execute(f"ALTER TABLE {name}_rebuilt RENAME TO {name}")
    for statement in INDEXES:
        db.execute(statement)
