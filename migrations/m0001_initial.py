"""The append-only log: entries, Merkle nodes and signed checkpoints.

Triggers refuse UPDATE and DELETE on all three tables, and refuse an entry
whose seq is not the next one, so even a raw SQL client cannot rewrite history
without first dropping them (which whole-log verification then exposes).
"""

STATEMENTS = [
    """CREATE TABLE entries (
        seq INTEGER PRIMARY KEY,
        leaf_hash BLOB NOT NULL UNIQUE CHECK (length(leaf_hash) = 32),
        canonical BLOB NOT NULL
    )""",
    # Perfect subtrees above the leaves: id = level << 40 | index, level >= 1.
    """CREATE TABLE nodes (
        id INTEGER PRIMARY KEY,
        hash BLOB NOT NULL CHECK (length(hash) = 32)
    )""",
    """CREATE TABLE checkpoints (
        tree_size INTEGER PRIMARY KEY,
        note TEXT NOT NULL
    )""",
    """CREATE TRIGGER entries_next_seq BEFORE INSERT ON entries
       WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), -1) + 1 FROM entries)
       BEGIN SELECT RAISE(ABORT, 'entries are appended in seq order without gaps'); END""",
]
for table in ("entries", "nodes", "checkpoints"):
    for op in ("UPDATE", "DELETE"):
        STATEMENTS.append(
            f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} are append-only: {op} refused'); END"""
        )


def migrate(db) -> None:
    for statement in STATEMENTS:
        db.execute(statement)
