"""Index each charity's registration and key-rotation entries.

A receipt carries the entries that say which keys could sign for the charity
when a disbursement spent the gift (docs/architecture.md §9), so the server
must find them without reading the whole log.  ``charity_entries`` is derived
from the log like the rest of the books; it is back-filled here for the
entries the books have already applied.  (Numbered 0007: 0006 is left to
the policy entry of the same issue.)
"""

# Frozen as applied.
STATEMENTS = [
    "CREATE TABLE charity_entries (charity TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (charity, seq)) WITHOUT ROWID",
    """INSERT INTO charity_entries (charity, seq)
       SELECT coalesce(json_extract(CAST(canonical AS TEXT), '$.body.charity'),
                       json_extract(CAST(canonical AS TEXT), '$.body.payload.charity')), seq
       FROM entries
       WHERE json_extract(CAST(canonical AS TEXT), '$.kind') IN ('charity.registered', 'charity.keys_rotated')
         AND seq <= (SELECT applied FROM books_state WHERE id = 1)""",
]


def migrate(db) -> None:
    for statement in STATEMENTS:
        db.execute(statement)
