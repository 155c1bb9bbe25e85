"""The whole schema as SQLite's migrations 0001-0008 leave it: the log, the books, the tokens.

- The log: ``entries`` (each row with the Merkle nodes it completes, packed as
  :func:`ledger.log.merkle.pack_nodes` defines) and ``checkpoints``.
  Triggers refuse UPDATE, DELETE and TRUNCATE on both, and refuse entries
  whose seqs do not continue the log without a gap, as SQLite's do.  The seq
  check is one statement-level trigger over the rows a statement added (a
  transition table), so a batch's multi-row INSERT checks its seqs once.
- The books, derived from the log, and ``donor_private``, which is not.
- Text keys use the "C" collation, so that they sort byte for byte as on SQLite.
"""

_C = 'COLLATE "C"'

# Frozen as first applied.
STATEMENTS = [
    """CREATE TABLE entries (
        seq bigint PRIMARY KEY CHECK (seq >= 0),
        leaf_hash bytea NOT NULL UNIQUE CHECK (octet_length(leaf_hash) = 32),
        tree bytea NOT NULL CHECK (octet_length(tree) % 32 = 0),
        canonical bytea NOT NULL
    )""",
    "CREATE TABLE checkpoints (tree_size bigint PRIMARY KEY, note text NOT NULL)",
    """CREATE FUNCTION luodi_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% are append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    # The rows a statement added are seqs [lo, hi] without a gap (count = hi - lo + 1, seq
    # being unique), lo - 1 is in the table (or lo = 0) and nothing lies past hi: since the
    # log before had no gap either, the log after has none.  "Nothing past hi" is asked as
    # max(seq) = hi, read from the end of the primary key's index: the function's generic
    # plan for "EXISTS seq > hi" was a scan of the whole table.
    """CREATE FUNCTION luodi_entries_next_seq() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE lo bigint; hi bigint; n bigint;
    BEGIN
        SELECT min(seq), max(seq), count(*) INTO lo, hi, n FROM added;
        IF n > 0 AND (hi - lo + 1 <> n
                      OR (lo > 0 AND NOT EXISTS (SELECT 1 FROM entries WHERE seq = lo - 1))
                      OR (SELECT max(seq) FROM entries) <> hi) THEN
            RAISE EXCEPTION 'entries are appended in seq order without gaps' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER entries_next_seq AFTER INSERT ON entries REFERENCING NEW TABLE AS added
       FOR EACH STATEMENT EXECUTE FUNCTION luodi_entries_next_seq()""",
]
for _table in ("entries", "checkpoints"):
    STATEMENTS += [
        f"""CREATE TRIGGER {_table}_no_change BEFORE UPDATE OR DELETE ON {_table}
            FOR EACH ROW EXECUTE FUNCTION luodi_append_only()""",
        f"""CREATE TRIGGER {_table}_no_truncate BEFORE TRUNCATE ON {_table}
            FOR EACH STATEMENT EXECUTE FUNCTION luodi_append_only()""",
    ]
STATEMENTS += [
    "CREATE TABLE books_state (id integer PRIMARY KEY CHECK (id = 1), applied bigint NOT NULL)",
    "INSERT INTO books_state (id, applied) VALUES (1, -1)",
    f"""CREATE TABLE charities (
        charity text {_C} PRIMARY KEY, name text {_C} NOT NULL, keys text {_C} NOT NULL,
        threshold integer NOT NULL, seq bigint NOT NULL)""",
    f"CREATE TABLE charity_keys (public_key bytea PRIMARY KEY, charity text {_C} NOT NULL)",
    f"""CREATE TABLE projects (
        project text {_C} PRIMARY KEY, charity text {_C} NOT NULL, currency text {_C} NOT NULL, seq bigint NOT NULL,
        closed_seq bigint, raised bigint NOT NULL DEFAULT 0, spent bigint NOT NULL DEFAULT 0,
        refunded bigint NOT NULL DEFAULT 0, donations bigint NOT NULL DEFAULT 0)""",
    f"""CREATE TABLE donations (
        receipt bytea PRIMARY KEY, seq bigint NOT NULL UNIQUE, project text {_C} NOT NULL,
        amount bigint NOT NULL, spent bigint NOT NULL DEFAULT 0, refunded bigint NOT NULL DEFAULT 0)""",
    # FIFO reads the oldest donations that still hold money; spent ones leave this index.
    "CREATE INDEX donations_unspent ON donations (project, seq) WHERE amount > spent + refunded",
    """CREATE TABLE allocations (
        donation bytea NOT NULL, disbursement bytea NOT NULL, amount bigint NOT NULL,
        seq bigint NOT NULL, PRIMARY KEY (donation, disbursement))""",
    "CREATE INDEX allocations_by_disbursement ON allocations (disbursement)",
    f"CREATE TABLE nonces (charity text {_C} NOT NULL, nonce text {_C} NOT NULL, PRIMARY KEY (charity, nonce))",
    f"""CREATE TABLE intake_keys (
        charity text {_C} NOT NULL, intake_key text {_C} NOT NULL, receipt bytea NOT NULL,
        PRIMARY KEY (charity, intake_key))""",
    f"""CREATE TABLE donor_private (
        receipt bytea PRIMARY KEY, salt bytea NOT NULL, fingerprint bytea NOT NULL, personal text {_C})""",
    f"CREATE TABLE project_entries (project text {_C} NOT NULL, seq bigint NOT NULL, PRIMARY KEY (project, seq))",
    """CREATE TABLE policy (
        id integer PRIMARY KEY CHECK (id = 1), signing_window_seconds bigint NOT NULL, seq bigint NOT NULL)""",
    f"CREATE TABLE charity_entries (charity text {_C} NOT NULL, seq bigint NOT NULL, PRIMARY KEY (charity, seq))",
    f"""CREATE TABLE tokens (
        token_hash bytea PRIMARY KEY, role text {_C} NOT NULL CHECK (role IN ('admin', 'intake')),
        charity text {_C}, created text {_C} NOT NULL, rate text {_C})""",
]
