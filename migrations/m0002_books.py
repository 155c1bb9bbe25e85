"""The accounting index ("the books"): derived from the log, kept in step with it.

Everything here can be rebuilt by replaying the entries, except
``donor_private``, which holds what the intake chose to send about a donor
and the receipt salt.  It is not part of the log and can be erased without
touching the chain.
"""

from ledger.books import BOOKS_SCHEMA


def migrate(db) -> None:
    for statement in BOOKS_SCHEMA:
        db.execute(statement)
