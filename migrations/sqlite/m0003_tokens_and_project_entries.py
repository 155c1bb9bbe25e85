"""Bearer tokens (stored only as hashes) and the per-project entry index.

``project_entries`` is derived from the log like the rest of the books; it is
back-filled here for entries the books have already applied.
"""

STATEMENTS = [
    """CREATE TABLE tokens (
        token_hash BLOB PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin', 'intake')),
        charity TEXT, created TEXT NOT NULL)""",
    # Frozen as first applied (migration 0004 rebuilds it WITHOUT ROWID).
    "CREATE TABLE project_entries (project TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (project, seq))",
    """INSERT INTO project_entries (project, seq)
       SELECT coalesce(json_extract(CAST(canonical AS TEXT), '$.body.project'),
                       json_extract(CAST(canonical AS TEXT), '$.body.payload.project')), seq
       FROM entries
       WHERE json_extract(CAST(canonical AS TEXT), '$.kind')
             IN ('project.opened', 'donation', 'disbursement', 'refund', 'project.closed')
         AND seq <= (SELECT applied FROM books_state WHERE id = 1)""",
]


def migrate(db) -> None:
    for statement in STATEMENTS:
        db.execute(statement)
