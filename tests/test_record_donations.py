"""record_donations in process: a batch decided item by item as the single call would
(one savepoint per item, as it used to be done), written together.

Each item is checked before the append lock; the intake keys are looked up in one
query; the accepted items are appended together, their index rows written a table
at a time, with no savepoint per item.  What each item answers, what is stored and
what the books hold must be what the item-by-item way gives; the tests here compare
the two on twin ledgers (on every backend), and count the statements a batch costs
(on SQLite, whose connection can trace them).
"""

from __future__ import annotations

import pytest
from conftest import REGISTRY
from factories import books_rows, open_project, register, state, writes_nothing

from ledger.charity.audit import audit_books
from ledger.charity.books import Books
from ledger.charity.memory import MemoryBooks
from ledger.charity.service import DonationReceipt
from ledger.charity.store import DERIVED
from ledger.errors import Conflict, InvalidEntry, InvalidInput, LuodiError, NotFound
from ledger.log.entry import body_bytes
from ledger.log.merkle import verify_inclusion
from ledger.log.verify import verify_log

BASE = {
    "amount": "20.00",
    "channel": "wechat",
    "payment_ref": "WX-0001",
    "donor_ref": "donor-0001",
    "value_date": "2026-11-29",
    "personal": {"name": "Li Wei"},
}


def item(key, **changes) -> dict:
    return {**BASE, "intake_key": key, **changes}


@pytest.fixture
def make_twins(make_books):
    """Two ledgers with the same charity, projects and earlier donations."""

    def make(name: str):
        stores, cl = make_books(name)
        ck = register(cl, "hope", keys=1, threshold=1)
        open_project(cl, "winter", ck, "CNY")
        open_project(cl, "spring", ck, "CNY")
        cl.record_donation("winter", **item("old-key-0001"))
        erased = cl.record_donation("winter", **item("erased-key-01"))
        cl.erase_personal_data(erased.entry.receipt)
        cl.record_donation("spring", **item("spring-key-01"))
        return stores, cl

    return make


def one_by_one(cl, project, items):
    """The batch as it was done before: each item in its own savepoint of one writer."""
    done = []
    with cl.ledger.writer() as w:
        for it in items:
            try:
                with w.savepoint():
                    done.append(cl.record_donation_in(w, project, **it))
            except LuodiError as exc:
                if exc.status >= 500:
                    raise
                done.append(exc)
    return done


def outcome(d):
    """What an answer says, but the salt (and what it is hashed into): random per gift."""
    if isinstance(d, LuodiError):
        return (type(d).__name__, d.status, d.detail)
    body = {k: v for k, v in d.entry.body.items() if k != "donor_commitment"}
    return ("replayed" if d.replayed else "new", d.entry.seq, d.entry.kind, body)


def books_without_salts(target):
    rows = books_rows(target)
    # receipts are leaf hashes of entries that hold a salted commitment: compare what is not salted
    return {
        "projects": rows["projects"],
        "intake_keys": sorted((c, k) for c, k, _ in rows["intake_keys"]),
        "donations": sorted((seq, p, a, s, r) for _, seq, p, a, s, r in rows["donations"]),
        "project_entries": rows["project_entries"],
        "donor_private": sorted(personal or "" for *_, personal in rows["donor_private"]),
    }


MIXED = [
    item("new-key-0001"),
    item("new-key-0002", amount="1.001"),  # three decimals for CNY: refused before the body is built
    item("new-key-0003", channel="pigeon"),  # the donation kind refuses the body
    item("new-key-0001"),  # the same key and request earlier in the batch: a replay of it
    item("new-key-0001", amount="21.00"),  # ... with another request: a conflict
    item("old-key-0001"),  # recorded before the batch: a replay
    item("old-key-0001", donor_ref="someone-else"),  # ... with another request: a conflict
    item("erased-key-01"),  # its personal data was erased: a conflict
    item("new-key-0004", payment_ref="   "),  # no payment reference
    item(12345),  # a key that is not a string: the body's rules refuse it
    item("short"),  # too short for a key
    item("new-key-0005", personal=None, amount="5"),
    item("new-key-0003"),  # the key the refused item named is still free
    item("spring-key-01"),  # a key of the same charity, used for the other project: a conflict
    item("new-key-0006", payment_ref="WX\x01"),  # a control character: the canonical check refuses it
    item("new-key-0007", personal={"age": 7}),  # personal data must be strings
    item("new-key-0003", channel="pigeon"),  # now taken: a conflict, whatever the body's own rules say
    item("new-key-0008", amount="0.01"),
]


def test_a_mixed_batch_answers_as_item_by_item_and_stores_the_same(make_twins):
    stores, cl = make_twins("batch")
    twin_stores, twin = make_twins("twin")
    size, cp = cl.ledger.size(), stores.log.checkpoint()
    done = cl.record_donations("winter", MIXED)
    want = one_by_one(twin, "winter", MIXED)
    assert [outcome(d) for d in done] == [outcome(d) for d in want]
    assert [type(d).__name__ if isinstance(d, LuodiError) else d.replayed for d in done] == [
        False, "InvalidInput", "InvalidEntry", True, "Conflict", True, "Conflict", "Conflict", "InvalidInput",
        "InvalidEntry", "InvalidEntry", False, False, "Conflict", "InvalidEntry", "InvalidInput", "Conflict", False,
    ]
    new = [d for d in done if isinstance(d, DonationReceipt) and not d.replayed]
    assert [d.entry.seq for d in new] == [size, size + 1, size + 2, size + 3]
    assert cl.ledger.size() == size + 4 and stores.log.checkpoint()[0] == size + 4 != cp[0]
    assert books_without_salts(stores) == books_without_salts(twin_stores)
    assert state(cl).projects == state(twin).projects
    # a replay in the batch is the gift it repeats, salt and all; one before the batch, the original
    assert done[3].entry == done[0].entry and done[3].salt == done[0].salt
    old = cl.record_donation("winter", **item("old-key-0001"))
    assert done[5].entry == old.entry and done[5].salt == old.salt
    # every new gift's receipt proves it in the tree its checkpoint signs
    root = cl.ledger.root(size + 4)
    for d in new:
        r = d.receipt
        assert r.tree_size == size + 4 and r.checkpoint == stores.log.checkpoint()[1]
        verify_inclusion(d.entry.leaf_hash, d.entry.seq, r.tree_size, r.proof, root)
        stored = cl.receipt(d.entry.receipt)  # the same receipt, read back from storage
        assert (r.entry, r.tree_size, r.proof, r.checkpoint, r.log_key, r.trace) == (
            stored.entry, stored.tree_size, stored.proof, stored.checkpoint, stored.log_key, stored.trace)
    assert done[3].receipt == cl.receipt(done[0].entry.receipt)  # a replay answers from the log
    assert cl.personal_data(done[0].entry.receipt) == {"name": "Li Wei"}
    assert cl.personal_data(done[11].entry.receipt) is None
    verify_log(stores.log, REGISTRY, workers=1)
    audit_books(stores)


def test_the_same_batch_again_is_all_replays_or_the_same_refusals_and_writes_nothing(make_twins):
    stores, cl = make_twins("batch")
    first = cl.record_donations("winter", MIXED)
    with writes_nothing(cl):
        again = cl.record_donations("winter", MIXED)
    for a, b in zip(first, again, strict=True):
        if isinstance(a, LuodiError):
            assert outcome(b) == outcome(a) or (a.status, b.status) == (422, 409)  # refused then; its key may be taken now
        else:
            assert b.replayed and b.entry == a.entry and b.salt == a.salt


def test_a_closed_project_refuses_each_new_item_and_still_replays(make_twins):
    stores, cl = make_twins("batch")
    twin_stores, twin = make_twins("twin")
    for c in (cl, twin):
        c.close_project("spring", "done")
    items = [item("spring-key-01"), item("spring-new-01"), item("spring-new-02", amount="x"), item("spring-new-03")]
    with writes_nothing(cl):
        done = cl.record_donations("spring", items)
    assert [outcome(d) for d in done] == [outcome(d) for d in one_by_one(twin, "spring", items)]
    assert done[0].replayed
    assert [type(d) for d in done[1:]] == [Conflict, InvalidInput, Conflict]
    assert done[1] is not done[3]  # each refused item gets its own error


def test_an_unknown_project_refuses_each_item_and_writes_nothing(make_twins):
    stores, cl = make_twins("batch")
    items = [item("none-key-0001"), item("none-key-0002", payment_ref=""), item("old-key-0001")]
    with writes_nothing(cl):
        done = cl.record_donations("no-such-project", items)
    assert [type(d) for d in done] == [NotFound, InvalidInput, NotFound]


@pytest.mark.sqlite_only("counts statements with SQLite's trace callback")
def test_a_batch_costs_the_same_statements_whatever_its_size_and_no_savepoint(make_twins):
    """The write connection runs a fixed number of statements per batch: the keys are
    looked up in one query and each table is written with one executemany."""
    stores, cl = make_twins("batch")
    conn = stores.log.db.conn
    counts = []
    for n in (3, 60):
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            done = cl.record_donations("winter", [item(f"count-{n}-{i:04d}") for i in range(n)])
        finally:
            conn.set_trace_callback(None)
        assert all(isinstance(d, DonationReceipt) and not d.replayed for d in done)
        assert sum(s.startswith("COMMIT") for s in seen) == 1
        assert not any("SAVEPOINT" in s for s in seen)
        # an executemany is traced once per row: count the distinct statements run
        counts.append(len({s for s in seen if not s.startswith("INSERT")}) + len(
            {s.split("VALUES")[0] for s in seen if s.startswith("INSERT")}))
        inserts = [s for s in seen if s.startswith("INSERT INTO intake_keys")]
        assert len(inserts) == n
    assert counts[0] == counts[1]


@pytest.mark.sqlite_only("counts statements with SQLite's trace callback")
def test_a_replay_heavy_batch_looks_its_keys_up_in_one_query(make_twins):
    stores, cl = make_twins("batch")
    cl.record_donations("winter", [item(f"again-{i:04d}") for i in range(40)])
    conn = stores.log.db.conn
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        done = cl.record_donations("winter", [item(f"again-{i:04d}") for i in range(40)] + [item("again-new-01")])
    finally:
        conn.set_trace_callback(None)
    assert [d.replayed for d in done] == [True] * 40 + [False]
    assert sum("FROM intake_keys" in s and " IN (" in s for s in seen) == 2  # the batch's, and the books' own check
    assert not any("FROM intake_keys" in s and " IN (" not in s for s in seen)


# -- the books' rules for a run of donations --------------------------------------------------


def bodies(cl, keys, project="winter"):
    """Donation bodies as the service builds them (through its own preparation)."""
    facts = cl._project_facts(project, cl.books)
    return [cl._gift(project, lambda: facts, **item(k)).body for k in keys]


@pytest.mark.parametrize(
    ("keys", "error", "match"),
    [
        (["run-key-0001", "run-key-0002", "run-key-0001"], Conflict, "intake key 'run-key-0001' was already used"),
        (["run-key-0001", "old-key-0001"], Conflict, "intake key 'old-key-0001' was already used"),
    ],
)
def test_a_run_of_donations_is_refused_whole_as_apply_refuses_its_first_bad_one(make_twins, keys, error, match):
    stores, cl = make_twins("batch")
    items = [("donation", b, body_bytes("donation", b, REGISTRY)) for b in bodies(cl, keys)]
    with writes_nothing(cl, error, match, exact=True):
        with cl.ledger.writer() as w:
            try:
                w.append_many_checked(items)
            finally:
                assert w.entries == [] and w.frontier.size == cl.ledger.size()  # nothing staged
    # one by one, the same refusal comes at the same entry
    with writes_nothing(cl, error, match, exact=True):
        with cl.ledger.writer() as w:
            for kind, body, data in items:
                w.append_checked(kind, body, data)


def test_a_run_to_a_closed_project_is_refused_whole(make_twins):
    stores, cl = make_twins("batch")
    items = bodies(cl, ["run-key-0001", "run-key-0002"], "spring")
    cl.close_project("spring", "done")
    with writes_nothing(cl, Conflict, "project 'spring' is closed", exact=True):
        with cl.ledger.writer() as w:
            w.append_many_checked([("donation", b, body_bytes("donation", b, REGISTRY)) for b in items])


def test_apply_batch_keeps_the_books_apply_keeps(make_twins):
    """Replaying a log into books in plain memory: runs through apply_batch (the protocol's
    default batch writes) and entries one by one through apply hold the same rows."""
    stores, cl = make_twins("batch")
    cl.record_donations("winter", [item(f"mem-key-{i:04d}") for i in range(5)])
    cl.close_project("spring", "done")
    cl.record_donations("winter", [item(f"mem-key-{i:04d}") for i in range(3, 9)])
    entries = [cl.ledger.entry(s) for s in range(cl.ledger.size())]
    one, many = MemoryBooks(), MemoryBooks()
    for e in entries:
        Books(one).apply(e)
    Books(many).apply_batch(entries)
    for table in DERIVED:
        assert many.derived(table) == one.derived(table) == stores.books.view().derived(table), table


def test_the_protocol_defaults_refuse_a_taken_key_as_the_sqlite_store_does(make_twins):
    mem = MemoryBooks()
    mem.add_intake_key("hope", "taken-key-01", b"r" * 32)
    with pytest.raises(ValueError, match="taken"):
        mem.add_donations([("hope", "taken-key-01", b"s" * 32, 5, "winter", 100)])
    assert mem.intakes("hope", ["taken-key-01", "free-key-001"]) == {"taken-key-01": b"r" * 32}


def test_invalid_entry_and_input_are_what_the_single_call_raises(make_twins):
    """The single call raises what the batch returns in an item's place."""
    stores, cl = make_twins("batch")
    for it, error in [(item("x-key-00001", channel="pigeon"), InvalidEntry), (item("x-key-00002", amount="-1"), InvalidInput)]:
        with writes_nothing(cl, error, exact=True) as info:
            cl.record_donation("winter", **it)
        (batch,) = cl.record_donations("winter", [it])
        assert (type(batch), batch.detail) == (error, info.value.detail)
