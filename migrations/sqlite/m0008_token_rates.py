"""A rate limit of each bearer token's own.

Write limits are keyed on the token, not the client's address, so that a
payment provider's intake server is not capped as one anonymous client.  A
token may carry its own limit (``luodi token create --rate "N per minute"``);
NULL means the server's default for its role (RATELIMIT_INTAKE or
RATELIMIT_WRITES, docs/operations.md).
"""

# Frozen as applied.
STATEMENTS = ["ALTER TABLE tokens ADD COLUMN rate TEXT"]


def migrate(db) -> None:
    for statement in STATEMENTS:
        db.execute(statement)
