"""The append-only log: entries (with the Merkle nodes they complete) and signed checkpoints.

``tree`` holds the hashes of the perfect subtrees whose last leaf is this
entry, levels 1, 2, ... in order (32 bytes each; empty for an even seq), so
every node of the tree is stored exactly once, in the row that completed it.

Triggers refuse UPDATE and DELETE on both tables, and refuse an entry whose
seq is not the next one, so even a raw SQL client cannot rewrite history
without first dropping them (which whole-log verification then exposes).
"""

STATEMENTS = [
    """CREATE TABLE entries (
        seq INTEGER PRIMARY KEY,
        leaf_hash BLOB NOT NULL UNIQUE CHECK (length(leaf_hash) = 32),
        tree BLOB NOT NULL CHECK (length(tree) % 32 = 0),
        canonical BLOB NOT NULL
    )""",
    """CREATE TABLE checkpoints (
        tree_size INTEGER PRIMARY KEY,
        note TEXT NOT NULL
    )""",
    """CREATE TRIGGER entries_next_seq BEFORE INSERT ON entries
       WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), -1) + 1 FROM entries)
       BEGIN SELECT RAISE(ABORT, 'entries are appended in seq order without gaps'); END""",
]
for table in ("entries", "checkpoints"):
    for op in ("UPDATE", "DELETE"):
        STATEMENTS.append(
            f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} are append-only: {op} refused'); END"""
        )


def migrate(db) -> None:
    for statement in STATEMENTS:
        db.execute(statement)
