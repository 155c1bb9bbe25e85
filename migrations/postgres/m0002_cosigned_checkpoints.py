"""Cosigned checkpoints, as SQLite's migration 0009 adds them: the log's
checkpoints with the witnesses' cosignature lines added, kept once the log's
witness policy is met (docs/witnessing.md).

A trigger refuses a note that does not begin with the log's own note at that
size followed by at least one more line; UPDATE, DELETE and TRUNCATE are
refused as on the log's other tables (``luodi_append_only`` of 0001).
"""

# Frozen as first applied.
STATEMENTS = [
    "CREATE TABLE cosigned_checkpoints (tree_size bigint PRIMARY KEY, note text NOT NULL)",
    """CREATE FUNCTION luodi_cosigned_of_the_log() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM checkpoints c
                       WHERE c.tree_size = NEW.tree_size
                         AND octet_length(NEW.note) > octet_length(c.note)
                         AND left(NEW.note, length(c.note)) = c.note) THEN
            RAISE EXCEPTION 'a cosigned checkpoint is the log''s checkpoint at its size with cosignatures added'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER cosigned_checkpoints_of_the_log BEFORE INSERT ON cosigned_checkpoints
       FOR EACH ROW EXECUTE FUNCTION luodi_cosigned_of_the_log()""",
    """CREATE TRIGGER cosigned_checkpoints_no_change BEFORE UPDATE OR DELETE ON cosigned_checkpoints
       FOR EACH ROW EXECUTE FUNCTION luodi_append_only()""",
    """CREATE TRIGGER cosigned_checkpoints_no_truncate BEFORE TRUNCATE ON cosigned_checkpoints
       FOR EACH STATEMENT EXECUTE FUNCTION luodi_append_only()""",
]
