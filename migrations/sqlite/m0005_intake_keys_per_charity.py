"""Scope intake (idempotency) keys per charity.

An intake key was unique across the whole instance, so one charity's intake
could be refused (409) for its own real donation because another charity had
used the same key, and could probe which keys exist.  A key is now unique
within the charity of the project the donation is for, whichever token sent
it, as payment APIs scope idempotency keys per account.  Every row keeps its
key and receipt and gains the charity of its donation's project.
"""

# Frozen as applied: the table as it is after this migration.
TABLE = """CREATE TABLE {name} (
    charity TEXT NOT NULL, intake_key TEXT NOT NULL, receipt BLOB NOT NULL,
    PRIMARY KEY (charity, intake_key)) WITHOUT ROWID"""


def migrate(db) -> None:
    db.execute(TABLE.format(name="intake_keys_rebuilt"))
    db.execute(
        "INSERT INTO intake_keys_rebuilt (charity, intake_key, receipt) "
        "SELECT p.charity, i.intake_key, i.receipt FROM intake_keys AS i "
        "JOIN donations AS d ON d.receipt = i.receipt JOIN projects AS p ON p.project = d.project"
    )
    before = db.execute("SELECT count(*) FROM intake_keys").fetchone()[0]
    after = db.execute("SELECT count(*) FROM intake_keys_rebuilt").fetchone()[0]
    if after != before:  # the whole migration rolls back: nothing is lost
        raise ValueError(
            f"{before - after} intake key(s) have no donation in the books: run 'luodi audit' before upgrading"
        )
    db.execute("DROP TABLE intake_keys")
    db.execute("ALTER TABLE intake_keys_rebuilt RENAME TO intake_keys")
