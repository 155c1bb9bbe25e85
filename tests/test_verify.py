"""Whole-log verification: a clean log passes, and every kind of storage tampering
is caught at the right seq.

Each tamper case drops the append-only triggers with a raw SQL client (which is
what an attacker with file access would do) and edits the database directly.
The ``seq`` every case expects is documented beside it; the rule
(``ledger.errors.LogCorrupted``) is: the first bad entry, for a tree node the
last entry it covers, for a checkpoint its tree size minus one.

The tamper cases edit a SQLite file with raw SQL, so they run on SQLite only
(the verifier reads rows through the log-store protocol, whatever the
backend); the clean-log, pinning and snapshot tests run on every backend.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from contextlib import closing

import pytest
from conftest import ORIGIN, REGISTRY, FixedClock, notes, open_ledger, target_of

from ledger.log.ledger import Ledger
from ledger.log.checkpoint import Checkpoint
from ledger.log.entry import body_bytes, seal
from ledger.errors import LogCorrupted, MalformedNote
from ledger.log.merkle import EMPTY_ROOT, Frontier
from ledger.log.note import Signer
from ledger.log.verify import verify_log

BATCHES = [50, 37, 63, 50]  # with the genesis: checkpoints at 1, 51, 88, 151, 201
SIZE = 1 + sum(BATCHES)
CHECKPOINTS = [1, 51, 88, 151, 201]
TRIGGERS = ["entries_no_update", "entries_no_delete", "checkpoints_no_update", "checkpoints_no_delete", "entries_next_seq"]


@pytest.fixture
def built(make_ledger):
    ledger = make_ledger(clock=FixedClock())
    for n, size in enumerate(BATCHES):
        ledger.append_batch(notes(size, f"b{n}"))
    assert ledger.size() == SIZE
    return ledger


# -- raw access helpers ----------------------------------------------------------


def open_raw(ledger: Ledger) -> sqlite3.Connection:
    conn = sqlite3.connect(str(ledger.store.path), isolation_level=None)
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    return conn


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def canonical(conn, seq: int) -> bytes:
    return conn.execute("SELECT canonical FROM entries WHERE seq = ?", (seq,)).fetchone()[0]


def put_entry(conn, seq: int, data: bytes, *, rehash: bool) -> None:
    conn.execute("UPDATE entries SET canonical = ? WHERE seq = ?", (data, seq))
    if rehash:
        conn.execute("UPDATE entries SET leaf_hash = ? WHERE seq = ?", (leaf(data), seq))


def note_of(conn, size: int) -> str:
    return conn.execute("SELECT note FROM checkpoints WHERE tree_size = ?", (size,)).fetchone()[0]


def put_note(conn, size: int, note: str) -> None:
    conn.execute("UPDATE checkpoints SET note = ? WHERE tree_size = ?", (note, size))


def flip_bit(b: bytes, i: int = 0) -> bytes:
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1 :]


def set_node(conn, level: int, index: int) -> int:
    """Flip a bit of the stored interior node (level, index); return the seq of its last leaf."""
    last = ((index + 1) << level) - 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "nodes" in tables:  # pragma: no cover - the older schema kept nodes in their own table
        node_id = (level << 40) | index
        h = conn.execute("SELECT hash FROM nodes WHERE id = ?", (node_id,)).fetchone()[0]
        conn.execute("UPDATE nodes SET hash = ? WHERE id = ?", (flip_bit(h), node_id))
    else:
        tree = conn.execute("SELECT tree FROM entries WHERE seq = ?", (last,)).fetchone()[0]
        assert len(tree) >= 32 * level
        conn.execute("UPDATE entries SET tree = ? WHERE seq = ?", (flip_bit(tree, 32 * (level - 1) + 5), last))
    return last


# -- tamper cases: each edits the db and returns nothing; the expected seq is beside it -----


def t_edit_text_byte(conn, ledger):
    data = canonical(conn, 100)
    assert b'"text":"b2 12"' in data  # seq 100 is the 13th entry of batch 2 (seqs 88..150)
    put_entry(conn, 100, data.replace(b'"text":"b2 12"', b'"text":"c2 12"'), rehash=False)


def t_edit_breaks_json(conn, ledger):
    data = canonical(conn, 100)
    put_entry(conn, 100, data[:-1] + b"]", rehash=False)


def t_edit_rehash_even(conn, ledger):
    # seq 100 is even and mid-batch, so it completes no tree node: the entry itself is
    # self-consistent and the first thing that fails is entry 101's prev link.
    data = canonical(conn, 100)
    put_entry(conn, 100, data.replace(b'"text":"b2 12"', b'"text":"c2 12"'), rehash=True)


def t_edit_rehash_odd(conn, ledger):
    # seq 101 is odd: the level-1 node (1, 50) stored with it no longer matches.
    data = canonical(conn, 101)
    put_entry(conn, 101, data.replace(b'"text":"b2 13"', b'"text":"c2 13"'), rehash=True)


def t_edit_rehash_batch_end(conn, ledger):
    # seq 150 is even and the last of its batch: the checkpoint at size 151 is checked
    # right after it and its root no longer matches.
    data = canonical(conn, 150)
    put_entry(conn, 150, data.replace(b'"text":"b2 62"', b'"text":"c2 62"'), rehash=True)


def t_leaf_hash_only(conn, ledger):
    h = conn.execute("SELECT leaf_hash FROM entries WHERE seq = 100").fetchone()[0]
    conn.execute("UPDATE entries SET leaf_hash = ? WHERE seq = 100", (flip_bit(h, 31),))


def t_node_level1(conn, ledger):
    assert set_node(conn, 1, 50) == 101  # covers leaves 100, 101


def t_node_level3(conn, ledger):
    assert set_node(conn, 3, 12) == 103  # covers leaves 96..103


def t_node_level7(conn, ledger):
    assert set_node(conn, 7, 0) == 127  # covers leaves 0..127


def t_delete_last(conn, ledger):
    # size becomes 200 while the checkpoint at 201 stays: reported at the new last seq.
    conn.execute("DELETE FROM entries WHERE seq = 200")


def t_delete_last_batch_entries(conn, ledger):
    conn.execute("DELETE FROM entries WHERE seq >= 151")


def t_delete_middle(conn, ledger):
    conn.execute("DELETE FROM entries WHERE seq = 100")


def t_delete_genesis(conn, ledger):
    conn.execute("DELETE FROM entries WHERE seq = 0")


def t_swap_rows(conn, ledger):
    a, b = canonical(conn, 100), canonical(conn, 101)
    ha, hb = leaf(a), leaf(b)
    conn.execute("UPDATE entries SET leaf_hash = zeroblob(32), canonical = X'' WHERE seq = 101")
    conn.execute("UPDATE entries SET leaf_hash = ?, canonical = ? WHERE seq = 100", (hb, b))
    conn.execute("UPDATE entries SET leaf_hash = ?, canonical = ? WHERE seq = 101", (ha, a))


def t_time_rewound(conn, ledger):
    data = canonical(conn, 100)
    time = re.search(rb'"time":"([^"]+)"', data).group(1)
    put_entry(conn, 100, data.replace(time, b"2020-01-01T00:00:00.000Z"), rehash=True)


def t_noncanonical_space(conn, ledger):
    data = canonical(conn, 100)
    put_entry(conn, 100, data.replace(b'"kind":', b'"kind": '), rehash=True)


def t_noncanonical_escape(conn, ledger):
    data = canonical(conn, 100)
    put_entry(conn, 100, data.replace(b'"text":"b2', b'"text":"\\u0062' + b"2"), rehash=True)


def t_noncanonical_order(conn, ledger):
    data = canonical(conn, 100)
    body_end = data.index(b',"kind":')
    body, tail = data[len(b'{"body":') : body_end], data[body_end + 1 : -1]
    put_entry(conn, 100, b"{" + tail + b',"body":' + body + b"}", rehash=True)


def t_noncanonical_trailing_newline(conn, ledger):
    put_entry(conn, 100, canonical(conn, 100) + b"\n", rehash=True)


def t_cp_other_key(conn, ledger):
    # A different key with the same name: an unknown key ID, so no trusted signature.
    text = note_of(conn, 151).split("\n\n")[0] + "\n"
    put_note(conn, 151, text + "\n" + Signer.generate(ORIGIN).signature_line(text))


def t_cp_bad_signature_bytes(conn, ledger):
    note = note_of(conn, 151)
    line = note.rstrip("\n").split("\n")[-1]
    name, b64 = line.rsplit(" ", 1)
    raw = base64.b64decode(b64)
    put_note(conn, 151, note.replace(line, f"{name} {base64.b64encode(flip_bit(raw, 10)).decode()}"))


def t_cp_root_unsigned(conn, ledger):
    note = note_of(conn, 151)
    root64 = note.split("\n")[2]
    other = base64.b64encode(flip_bit(base64.b64decode(root64))).decode()
    put_note(conn, 151, note.replace(root64, other))


def t_cp_root_resigned(conn, ledger):
    # Signed by the real log key, but over a root the entries do not have.
    put_note(conn, 151, Checkpoint(ORIGIN, 151, b"\x07" * 32).sign(ledger.signer))


def t_cp_size_resigned(conn, ledger):
    put_note(conn, 151, Checkpoint(ORIGIN, 150, ledger.root(151)).sign(ledger.signer))


def t_cp_other_origin(conn, ledger):
    put_note(conn, 151, Checkpoint("other.example/log", 151, ledger.root(151)).sign(ledger.signer))


def t_cp_latest_root(conn, ledger):
    put_note(conn, 201, Checkpoint(ORIGIN, 201, ledger.root(200)).sign(ledger.signer))


def t_cp_extra_forged(conn, ledger):
    # No trigger needed: an extra checkpoint at size 100 whose root is not the tree's.
    conn.execute("INSERT INTO checkpoints VALUES (100, ?)", (Checkpoint(ORIGIN, 100, ledger.root(99)).sign(ledger.signer),))


def t_cp_beyond(conn, ledger):
    conn.execute("INSERT INTO checkpoints VALUES (500, ?)", (Checkpoint(ORIGIN, 500, b"\x01" * 32).sign(ledger.signer),))


def _forge_next(conn, ledger, text="forged"):
    rows = conn.execute("SELECT leaf_hash, canonical FROM entries ORDER BY seq").fetchall()
    frontier = Frontier()
    for h, _ in rows:
        frontier.append(h)
    last = ledger.entry(len(rows) - 1)
    body = {"text": text}
    entry = seal(len(rows), last.receipt, last.time, "note", body, body_bytes("note", body, REGISTRY))
    made = frontier.append(entry.leaf_hash)
    conn.execute(
        "INSERT INTO entries VALUES (?, ?, ?, ?)",
        (entry.seq, entry.leaf_hash, b"".join(m[2] for m in made), entry.canonical),
    )
    return entry, frontier


def t_forged_tail_no_checkpoint(conn, ledger):
    # A perfectly chained entry with correct tree nodes, but the log never signed it.
    entry, _ = _forge_next(conn, ledger)
    assert entry.seq == 201


def t_forged_tail_foreign_checkpoint(conn, ledger):
    _, frontier = _forge_next(conn, ledger)
    note = Checkpoint(ORIGIN, 202, frontier.root()).sign(Signer.generate(ORIGIN))
    conn.execute("INSERT INTO checkpoints VALUES (202, ?)", (note,))


def t_genesis_other_key(conn, ledger):
    # A genesis naming another key (rehashed): the checkpoint at size 1 fails under that key.
    data = canonical(conn, 0)
    mine = ledger.signer.verifier.to_string().encode()
    other = Signer.generate(ORIGIN).verifier.to_string().encode()
    put_entry(conn, 0, data.replace(mine, other), rehash=True)


def t_second_genesis(conn, ledger):
    g = ledger.genesis
    e = ledger.entry(100)
    forged = seal(100, e.prev, e.time, "genesis", g.body, body_bytes("genesis", g.body, REGISTRY))
    conn.execute("UPDATE entries SET canonical = ?, leaf_hash = ? WHERE seq = 100", (forged.canonical, forged.leaf_hash))


CASES = [
    # (tamper, expected seq, detail pattern)
    (t_edit_text_byte, 100, "leaf hash does not match"),
    (t_edit_breaks_json, 100, "entry is invalid"),
    (t_edit_rehash_even, 101, "prev is"),
    (t_edit_rehash_odd, 101, "tree nodes"),
    (t_edit_rehash_batch_end, 150, "root"),
    (t_leaf_hash_only, 100, "leaf hash does not match"),
    (t_node_level1, 101, "node level 1, index 50"),
    (t_node_level3, 103, "node level 3, index 12"),
    (t_node_level7, 127, "node level 7, index 0"),
    (t_delete_last, 199, "beyond"),
    (t_delete_last_batch_entries, 150, "beyond"),
    (t_delete_middle, 100, "entry 100 is missing"),
    (t_delete_genesis, 0, "entry 0 is missing"),
    (t_swap_rows, 100, "says seq 101"),
    (t_time_rewound, 100, "before the previous"),
    (t_noncanonical_space, 100, "canonical"),
    (t_noncanonical_escape, 100, "canonical"),
    (t_noncanonical_order, 100, "canonical"),
    (t_noncanonical_trailing_newline, 100, "entry is invalid"),
    (t_cp_other_key, 150, "tree size 151"),
    (t_cp_bad_signature_bytes, 150, "does not verify"),
    (t_cp_root_unsigned, 150, "tree size 151"),
    (t_cp_root_resigned, 150, "root that does not match"),
    (t_cp_size_resigned, 150, "says size 150"),
    (t_cp_other_origin, 150, "origin"),
    (t_cp_latest_root, 200, "root that does not match"),
    (t_cp_extra_forged, 99, "root that does not match"),
    (t_cp_beyond, 200, "beyond"),
    (t_forged_tail_no_checkpoint, 201, "not covered by a checkpoint"),
    (t_forged_tail_foreign_checkpoint, 201, "tree size 202"),
    (t_genesis_other_key, 0, "tree size 1"),
    (t_second_genesis, 100, "genesis"),
]


@pytest.mark.parametrize(("tamper", "seq", "detail"), CASES, ids=[c[0].__name__[2:] for c in CASES])
@pytest.mark.sqlite_only("tampering by raw SQL on the SQLite file")
def test_tampering_caught_at_seq(built, tamper, seq, detail):
    verify_log(built.store, REGISTRY)  # clean before
    with closing(open_raw(built)) as conn:
        tamper(conn, built)
    with pytest.raises(LogCorrupted) as info:
        verify_log(built.store, REGISTRY)
    assert info.value.seq == seq, str(info.value)
    assert re.search(detail, info.value.detail), info.value.detail
    # the seq, and the receipt hash of the entry as read where there is one
    assert re.match(rf"seq {seq}( \(receipt [0-9a-f]{{64}}\))?: ", info.value.detail), info.value.detail
    assert info.value.problem()["seq"] == seq
    # Pinning the right key does not make a tampered log pass either.
    with pytest.raises(LogCorrupted):
        verify_log(built.store, REGISTRY, built.signer.verifier.to_string())


@pytest.mark.sqlite_only("tampering by raw SQL on the SQLite file")
def test_node_tamper_is_inside_the_covered_range(built):
    for level, index in [(2, 30), (4, 5), (5, 2), (6, 1)]:
        lo, hi = index << level, ((index + 1) << level) - 1
        with closing(open_raw(built)) as conn:
            set_node(conn, level, index)
            with pytest.raises(LogCorrupted) as info:
                verify_log(built.store, REGISTRY)
            set_node(conn, level, index)  # flipping the same bit again restores it
        assert lo <= info.value.seq <= hi
        assert info.value.seq == hi
        verify_log(built.store, REGISTRY)


@pytest.mark.sqlite_only("tampering by raw SQL on the SQLite file")
def test_dropping_triggers_alone_is_not_tampering(built):
    with closing(open_raw(built)):
        pass
    assert verify_log(built.store, REGISTRY).size == SIZE


def test_clean_log_report(built):
    report = verify_log(built.store, REGISTRY)
    assert report.size == SIZE == built.size()
    assert report.root == built.root() == built.latest_checkpoint().root
    assert report.checkpoints == len(CHECKPOINTS)
    assert [s for s, _ in built.store.iter_checkpoints()] == CHECKPOINTS
    assert report.origin == ORIGIN
    assert report.log_key == built.signer.verifier.to_string()
    # Pinning the right key, as a string or a Verifier, gives the same report.
    assert verify_log(built.store, REGISTRY, built.signer.verifier.to_string()) == report
    assert verify_log(built.store, REGISTRY, built.signer.verifier) == report


def test_report_follows_growth(built):
    before = verify_log(built.store, REGISTRY)
    built.append("note", {"text": "one more"})
    after = verify_log(built.store, REGISTRY)
    assert (after.size, after.checkpoints) == (before.size + 1, before.checkpoints + 1)
    assert after.root == built.root() != before.root


@pytest.mark.parametrize("other_name", [ORIGIN, "other.example/log"])
def test_pinning_another_key_fails_at_genesis(built, other_name):
    other = Signer.generate(other_name).verifier
    for pinned in (other.to_string(), other):
        with pytest.raises(LogCorrupted) as info:
            verify_log(built.store, REGISTRY, pinned)
        assert info.value.seq == 0
        assert "pinned" in info.value.detail


def test_pinning_a_malformed_key_is_refused(built):
    with pytest.raises(MalformedNote):
        verify_log(built.store, REGISTRY, "not a key")


def test_empty_store_verifies_as_empty(backend):
    stores = backend.open("empty", upgrade=True)
    try:
        report = verify_log(stores.log, REGISTRY)
        assert (report.size, report.root, report.checkpoints) == (0, EMPTY_ROOT, 0)
    finally:
        stores.close()


def test_verification_sees_one_snapshot_while_another_process_appends(built, monkeypatch, signer):
    """Appends committed by another connection mid-verification are not half-seen."""
    writer = open_ledger(target_of(built), signer, clock=FixedClock(1_800_000_000_000))
    other = writer.store
    real_iter = built.store.iter_entries
    appended = []

    def iter_entries(start=0):
        for row in real_iter(start):
            if row[0] == 120 and not appended:
                appended.extend(writer.append_batch(notes(30, "concurrent")))
            yield row

    monkeypatch.setattr(built.store, "iter_entries", iter_entries)
    try:
        report = verify_log(built.store, REGISTRY)
        assert len(appended) == 30
        assert report.size == SIZE
        assert report.checkpoints == len(CHECKPOINTS)
        monkeypatch.undo()
        assert verify_log(built.store, REGISTRY).size == SIZE + 30
    finally:
        other.close()


# -- large logs: chunk boundaries and worker processes -----------------------------------

BIG_BATCH = 1000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    """A clean log of more than two verification chunks, built once; tests get copies."""
    from ledger.log.verify import CHUNK

    signer = Signer.generate(ORIGIN)
    path = tmp_path_factory.mktemp("big") / "big.sqlite"
    ledger = open_ledger(path, signer, create=True, clock=FixedClock())
    n = 0
    while ledger.size() < 2 * CHUNK + 500:
        ledger.append_batch(notes(BIG_BATCH, f"big{n}"))
        n += 1
    size = ledger.size()
    ledger.store.close()  # checkpoints the WAL into the file, so a plain copy is whole
    return path, signer, size, CHUNK


@pytest.fixture
def big(big_log, tmp_path):
    import shutil

    path, signer, size, chunk = big_log
    copy = tmp_path / "big.sqlite"
    shutil.copyfile(path, copy)
    ledger = open_ledger(copy, signer)
    yield ledger, size, chunk
    ledger.store.close()


def _rewrite(conn, seq, **changes):
    """Re-seal entry ``seq`` with some envelope fields changed, and store it rehashed."""
    from ledger.log.entry import parse_entry

    e = parse_entry(canonical(conn, seq), REGISTRY)
    fields = {"prev": e.prev, "time": e.time, "kind": e.kind, "body": e.body, **changes}
    data = body_bytes(fields["kind"], fields["body"], REGISTRY)
    forged = seal(seq, fields["prev"], fields["time"], fields["kind"], fields["body"], data)
    put_entry(conn, seq, forged.canonical, rehash=True)


def b_rehash_last_of_chunk(conn, c):
    _rewrite(conn, c - 1, body={"text": "changed"})  # odd: its own tree nodes differ
    return c - 1


def b_rehash_before_last_of_chunk(conn, c):
    _rewrite(conn, c - 2, body={"text": "changed"})  # even: the next entry's prev, same chunk
    return c - 1


def b_rehash_last_links_across_chunks(conn, c):
    # Re-seal the last entry of chunk 1 and store the tree nodes it now completes, so
    # the only thing left to catch it is the first entry of chunk 2 (its prev link).
    _rewrite(conn, c - 1, body={"text": "changed"})
    frontier = Frontier()
    made = []
    for (h,) in conn.execute("SELECT leaf_hash FROM entries WHERE seq < ? ORDER BY seq", (c,)):
        made = frontier.append(h)
    conn.execute("UPDATE entries SET tree = ? WHERE seq = ?", (b"".join(m[2] for m in made), c - 1))
    return c


def b_prev_of_first_in_chunk(conn, c):
    _rewrite(conn, c, prev="ab" * 32)  # the link checked where chunks meet
    return c


def b_time_of_first_in_chunk(conn, c):
    _rewrite(conn, c, time="2020-01-01T00:00:00.000Z")
    return c


def b_leaf_first_in_chunk(conn, c):
    h = conn.execute("SELECT leaf_hash FROM entries WHERE seq = ?", (c,)).fetchone()[0]
    conn.execute("UPDATE entries SET leaf_hash = ? WHERE seq = ?", (flip_bit(h), c))
    return c


def b_delete_first_in_chunk(conn, c):
    conn.execute("DELETE FROM entries WHERE seq = ?", (c,))
    return c


def b_delete_last_in_chunk(conn, c):
    conn.execute("DELETE FROM entries WHERE seq = ?", (c - 1,))
    return c - 1


def b_big_node(conn, c):
    level = (c - 1).bit_length()  # row c - 1 completes levels 1..log2(c): the root of chunk 1
    return set_node(conn, level, 0)


def b_two_faults_tree_first(conn, c):
    conn.execute("UPDATE entries SET leaf_hash = zeroblob(32) WHERE seq = ?", (c + 300,))
    return set_node(conn, 1, (c + 101) // 2)  # row c + 101, earlier than the leaf fault


def b_two_faults_entry_first(conn, c):
    _rewrite(conn, c + 100, body={"text": "changed"})  # even: caught at c + 101 (prev)
    set_node(conn, 2, (c + 403) // 4)  # row c + 403, later
    return c + 101


def b_two_faults_across_chunks(conn, c):
    set_node(conn, 1, (2 * c + 9) // 2)  # chunk 3
    conn.execute("UPDATE entries SET leaf_hash = zeroblob(32) WHERE seq = ?", (c - 500,))  # chunk 1
    return c - 500


BIG_CASES = [
    b_rehash_last_of_chunk,
    b_rehash_before_last_of_chunk,
    b_rehash_last_links_across_chunks,
    b_prev_of_first_in_chunk,
    b_time_of_first_in_chunk,
    b_leaf_first_in_chunk,
    b_delete_first_in_chunk,
    b_delete_last_in_chunk,
    b_big_node,
    b_two_faults_tree_first,
    b_two_faults_entry_first,
    b_two_faults_across_chunks,
]


@pytest.mark.sqlite_only("a copy of a SQLite file, built once for the module")
def test_big_clean_log_verifies_with_and_without_workers(big):
    ledger, size, _ = big
    one = verify_log(ledger.store, REGISTRY, workers=1)
    two = verify_log(ledger.store, REGISTRY, workers=2)
    assert one == two
    assert one.size == size == ledger.size()
    assert one.root == ledger.root() == ledger.latest_checkpoint().root
    assert one.checkpoints == 1 + (size - 1) // BIG_BATCH


@pytest.mark.parametrize("tamper", BIG_CASES, ids=[f.__name__[2:] for f in BIG_CASES])
@pytest.mark.sqlite_only("tampering by raw SQL on the SQLite file")
def test_big_log_tampering_same_seq_with_workers(big, tamper):
    ledger, size, chunk = big
    with closing(open_raw(ledger)) as conn:
        seq = tamper(conn, chunk)
    found = []
    for workers in (1, 2):
        with pytest.raises(LogCorrupted) as info:
            verify_log(ledger.store, REGISTRY, workers=workers)
        found.append((info.value.seq, info.value.detail))
    assert found[0] == found[1]
    assert found[0][0] == seq, found[0][1]


@pytest.mark.parametrize("column, value", [("canonical", "text, not bytes"), ("canonical", 42), ("tree", "x" * 32), ("leaf_hash", "y" * 32)])
@pytest.mark.sqlite_only("tampering by raw SQL on the SQLite file")
def test_changed_column_types_are_reported_at_their_seq(make_ledger, column, value):
    """SQLite is dynamically typed: a tamperer can store text or a number where bytes belong."""
    ledger = make_ledger()
    ledger.append_batch(notes(10))
    path = ledger.store.path
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER entries_no_update")
    raw.execute(f"UPDATE entries SET {column} = ? WHERE seq = 5", (value,))
    raw.commit()
    raw.close()
    with pytest.raises(LogCorrupted) as info:
        verify_log(ledger.store, REGISTRY, workers=1)
    assert info.value.seq == 5
