"""Cosigned checkpoints: the log's signed checkpoints as witnesses cosigned them.

When the operator configures witnesses (docs/witnessing.md), the log submits
its checkpoints to them (C2SP tlog-witness) and keeps each checkpoint whose
cosignatures met its policy: ``(tree size, note)``, where the note is the
log-signed note at that size with the witnesses' cosignature lines added
(C2SP tlog-cosignature).  So a trigger refuses a note that does not begin
with the log's own note at that size, followed by at least one more line,
and, as for the log's other tables, UPDATE and DELETE.
"""

# Frozen as applied.
STATEMENTS = [
    "CREATE TABLE cosigned_checkpoints (tree_size INTEGER PRIMARY KEY, note TEXT NOT NULL)",
    """CREATE TRIGGER cosigned_checkpoints_of_the_log BEFORE INSERT ON cosigned_checkpoints
       WHEN NOT EXISTS (
           SELECT 1 FROM checkpoints
           WHERE checkpoints.tree_size = NEW.tree_size
             AND length(NEW.note) > length(checkpoints.note)
             AND substr(NEW.note, 1, length(checkpoints.note)) = checkpoints.note)
       BEGIN SELECT RAISE(ABORT, 'a cosigned checkpoint is the log''s checkpoint at its size with cosignatures added'); END""",
]
for _op in ("UPDATE", "DELETE"):
    STATEMENTS.append(
        f"""CREATE TRIGGER cosigned_checkpoints_no_{_op.lower()} BEFORE {_op} ON cosigned_checkpoints
        BEGIN SELECT RAISE(ABORT, 'cosigned_checkpoints are append-only: {_op} refused'); END"""
    )


def migrate(db) -> None:
    for statement in STATEMENTS:
        db.execute(statement)
