"""The books' policy table: the log's ``policy.recorded`` entry, indexed.

The signing window the books apply to signed entries is recorded in the log
itself (once, by ``luodi init`` in a new log, or by ``luodi policy record``
in an existing one), so an auditor replays the rules with the value the
operator ran with.  One row at most; before the entry there is none, and the
documented default (600 s) governs.  Existing logs hold no such entry yet, so
the table starts empty.
"""


def migrate(db) -> None:
    db.execute(
        "CREATE TABLE policy (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "signing_window_seconds INTEGER NOT NULL, seq INTEGER NOT NULL)"
    )
