"""The accounting index ("the books"): derived from the log, kept in step with it.

Everything here can be rebuilt by replaying the entries, except
``donor_private``, which holds what the intake chose to send about a donor
and the receipt salt.  It is not part of the log and can be erased without
touching the chain.
"""

# Frozen as first applied: later changes to the books' tables are migrations of their own.
STATEMENTS = [
    "CREATE TABLE books_state (id INTEGER PRIMARY KEY CHECK (id = 1), applied INTEGER NOT NULL)",
    "INSERT INTO books_state (id, applied) VALUES (1, -1)",
    """CREATE TABLE charities (
        charity TEXT PRIMARY KEY, name TEXT NOT NULL, keys TEXT NOT NULL,
        threshold INTEGER NOT NULL, seq INTEGER NOT NULL)""",
    "CREATE TABLE charity_keys (public_key BLOB PRIMARY KEY, charity TEXT NOT NULL)",
    """CREATE TABLE projects (
        project TEXT PRIMARY KEY, charity TEXT NOT NULL, currency TEXT NOT NULL, seq INTEGER NOT NULL,
        closed_seq INTEGER, raised INTEGER NOT NULL DEFAULT 0, spent INTEGER NOT NULL DEFAULT 0,
        refunded INTEGER NOT NULL DEFAULT 0, donations INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE donations (
        receipt BLOB PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, project TEXT NOT NULL,
        amount INTEGER NOT NULL, spent INTEGER NOT NULL DEFAULT 0, refunded INTEGER NOT NULL DEFAULT 0)""",
    # FIFO reads the oldest donations that still hold money; spent ones leave this index.
    "CREATE INDEX donations_unspent ON donations (project, seq) WHERE amount > spent + refunded",
    """CREATE TABLE allocations (
        donation BLOB NOT NULL, disbursement BLOB NOT NULL, amount INTEGER NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (donation, disbursement))""",
    "CREATE INDEX allocations_by_disbursement ON allocations (disbursement)",
    "CREATE TABLE nonces (charity TEXT NOT NULL, nonce TEXT NOT NULL, PRIMARY KEY (charity, nonce))",
    "CREATE TABLE intake_keys (intake_key TEXT PRIMARY KEY, receipt BLOB NOT NULL)",
    """CREATE TABLE donor_private (
        receipt BLOB PRIMARY KEY, salt BLOB NOT NULL, fingerprint BLOB NOT NULL, personal TEXT)""",
]


def migrate(db) -> None:
    for statement in STATEMENTS:
        db.execute(statement)
