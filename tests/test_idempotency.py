"""Intake idempotency: one donation per intake key of a charity, however often and from wherever it is sent.

Intake keys are scoped to the charity of the project the donation is for,
whichever token sent it: two charities may use the same key.

The same key with the same request returns the original entry (same receipt,
same salt, ``replayed=True``) and writes nothing; the same key with a
different request is a :class:`Conflict` and writes nothing.  Duplicates sent
at the same time by two processes (or by threads sharing one ledger) still
make exactly one entry per key, and every sender gets the same receipt.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import pytest
from conftest import REGISTRY, target_of
from factories import donate, entries, open_project, register, state, writes_nothing

from ledger.charity.audit import audit_books
from ledger.charity.books import Books
from ledger.charity.kinds import postings_for
from ledger.charity.money import parse_amount
from ledger.charity.service import donor_commitment, payment_ref_hash
from ledger.errors import Conflict, Overspend
from ledger.log.note import Signer
from ledger.log.verify import verify_log

ROOT = Path(__file__).resolve().parent.parent

REQUEST = {
    "project": "winter",
    "amount": "200.00",
    "channel": "wechat",
    "payment_ref": "WX-2026-11-29-000123",
    "donor_ref": "donor-8841",
    "value_date": "2026-11-29",
    "personal": {"name": "Li Wei", "phone": "+86 138 0000 0000"},
}
KEY = "intake-2026-11-29-000001"


@pytest.fixture
def books(make_books):
    stores, cl = make_books("idem")
    ck = register(cl, "hope", keys=1, threshold=1)
    open_project(cl, "winter", ck, "CNY")
    open_project(cl, "spring", ck, "CNY")
    yield cl
    verify_log(stores.log, REGISTRY, workers=1)
    audit_books(stores)


def record(cl, key=KEY, **changes):
    return cl.record_donation(intake_key=key, **{**REQUEST, **changes})


def test_the_same_key_and_request_returns_the_original_entry(books):
    first = record(books)
    assert not first.replayed
    e = first.entry
    assert e.kind == "donation" and e.body["intake_key"] == KEY and e.body["amount"] == 20000
    # The salt lets the donor prove the gift; the entry holds only hashes.
    assert e.body["donor_commitment"] == donor_commitment(bytes.fromhex(first.salt), REQUEST["donor_ref"])
    assert e.body["payment_ref_hash"] == payment_ref_hash(REQUEST["payment_ref"])
    assert REQUEST["donor_ref"] not in e.canonical.decode() and "Li Wei" not in e.canonical.decode()
    assert books.personal_data(e.receipt) == REQUEST["personal"]

    before = state(books)
    for _ in range(3):
        again = record(books)
        assert again.replayed
        assert again.entry == e and again.entry.receipt == e.receipt and again.entry.seq == e.seq
        assert again.salt == first.salt
    after = state(books)
    assert after.size == before.size
    assert after.checkpoint == before.checkpoint  # no new checkpoint
    assert after.projects == before.projects and after.books == before.books
    assert books.project("winter").raised == 20000 and books.project("winter").donations == 1


def test_the_same_amount_written_differently_is_the_same_request(books):
    first = record(books, amount="200.00")
    again = record(books, amount="200")
    assert again.replayed and again.entry == first.entry and again.salt == first.salt


def test_a_replay_after_the_project_closed_still_returns_the_original(books):
    first = record(books)
    books.close_project("winter", "campaign over")
    before = state(books)
    again = record(books)
    assert again.replayed and again.entry == first.entry and again.salt == first.salt
    assert state(books) == before


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "200.01"},
        {"donor_ref": "donor-8842"},
        {"channel": "alipay"},
        {"personal": {"name": "Li Wei", "phone": "+86 138 0000 0001"}},
        {"personal": None},
        {"payment_ref": "WX-2026-11-29-000124"},
        {"value_date": "2026-11-30"},
        {"project": "spring"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_the_same_key_with_a_different_request_is_a_conflict(books, change):
    first = record(books)
    with writes_nothing(books, Conflict, "different donation", exact=True) as info:
        record(books, **change)
    assert info.value.status == 409
    # The original is still what the key answers.
    again = record(books)
    assert again.replayed and again.entry == first.entry and again.salt == first.salt


def test_a_key_without_personal_data_conflicts_with_one_that_adds_it(books):
    record(books, personal=None)
    with writes_nothing(books, Conflict, exact=True):
        record(books)


def test_a_replay_after_personal_data_was_erased_is_a_conflict(books):
    first = record(books)
    assert books.erase_personal_data(first.entry.receipt)
    assert books.personal_data(first.entry.receipt) is None
    with writes_nothing(books, Conflict, "erased", exact=True):
        record(books)


def test_an_entry_reusing_an_intake_key_is_refused_by_the_books(books):
    """Even written without the facade, a second donation with a used key is refused."""
    first = record(books)
    body = dict(first.entry.body, amount=100, donor_commitment="0" * 64)
    body["postings"] = postings_for("donation", body)
    with writes_nothing(books, Conflict, "intake key", exact=True):
        books.ledger.append("donation", body)


def test_different_keys_make_different_entries(books):
    a = record(books, key="intake-a-00000001")
    b = record(books, key="intake-b-00000002")
    assert not a.replayed and not b.replayed
    assert a.entry.receipt != b.entry.receipt and b.entry.seq == a.entry.seq + 1
    # The same donor gets unlinkable commitments: a fresh salt per gift.
    assert a.salt != b.salt and a.entry.body["donor_commitment"] != b.entry.body["donor_commitment"]
    assert books.project("winter").raised == 40000 and books.project("winter").donations == 2
    assert [e.body["intake_key"] for e in entries(books.stores) if e.kind == "donation"] == [
        "intake-a-00000001",
        "intake-b-00000002",
    ]


# -- one key space per charity -------------------------------------------------------------------


def test_two_charities_may_use_the_same_intake_key(books):
    """Intake keys are scoped to the charity of the project: another charity's use of a key
    neither blocks it nor answers for it, and within one charity nothing changes."""
    river = register(books, "river", keys=1, threshold=1)
    open_project(books, "clean", river, "CNY")
    hope_gift = record(books)
    river_gift = record(books, project="clean")  # the same key and request, for another charity's project
    assert not river_gift.replayed and river_gift.entry.receipt != hope_gift.entry.receipt
    assert books.books.intake("hope", KEY) == hope_gift.entry.leaf_hash
    assert books.books.intake("river", KEY) == river_gift.entry.leaf_hash
    for project, first in (("winter", hope_gift), ("clean", river_gift)):
        again = record(books, project=project)
        assert again.replayed and again.entry == first.entry and again.salt == first.salt
    with writes_nothing(books, Conflict, "different donation", exact=True):
        record(books, project="spring")  # hope's other project: hope's key space
    with writes_nothing(books, Conflict, "different donation", exact=True):
        record(books, project="clean", amount="1.00")
    assert [e.body["intake_key"] for e in entries(books.stores) if e.kind == "donation"] == [KEY, KEY]


def test_the_books_refuse_a_key_reused_within_a_charity_and_take_it_across_charities(books):
    """Written without the facade: a donation entry is refused for a key its project's charity
    used, and accepted for a key only another charity used."""
    river = register(books, "river", keys=1, threshold=1)
    open_project(books, "clean", river, "CNY")
    first = record(books)
    body = dict(first.entry.body, project="spring", amount=100, donor_commitment="0" * 64)
    body["postings"] = postings_for("donation", body)
    with writes_nothing(books, Conflict, f"intake key '{KEY}' was already used by charity hope", exact=True):
        books.ledger.append("donation", body)
    body = dict(body, project="clean")
    body["postings"] = postings_for("donation", body)
    entry = books.ledger.append("donation", body)
    assert books.books.intake("river", KEY) == entry.leaf_hash


# -- concurrent duplicates -------------------------------------------------------------------

N_KEYS = 50
LOCKSTEP = 10  # the processes wait for each other every this many keys, so they really interleave
ROUNDS = 3


def race_request(i: int, who: str) -> dict:
    """The request for key i.  Every key ending in 7 is sent with another amount by process b."""
    project = "winter" if i % 3 else "tokyo"
    amount = f"{10 + i}.{i % 100:02d}" if project == "winter" else str(100 + i)
    if who == "b" and i % 10 == 7:
        amount = f"{1000 + i}.00" if project == "winter" else str(5000 + i)
    return {
        "project": project,
        "amount": amount,
        "channel": ("wechat", "alipay", "unionpay")[i % 3],
        "payment_ref": f"PAY-{i:06d}",
        "donor_ref": f"donor-{i:06d}",
        "value_date": "2026-11-29",
        "intake_key": f"race-{i:06d}",
        "personal": {"name": f"donor {i}"} if i % 2 else None,
    }


def conflicting(i: int) -> bool:
    return i % 10 == 7


# The child runs race_request's own source, then this.
CHILD = textwrap.dedent(inspect.getsource(race_request)) + textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    from ledger.charity.service import open_charity_ledger
    from ledger.errors import Conflict
    from ledger.log.note import Signer

    who, other, path, work = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    if path.startswith(("postgresql://", "postgres://")):
        from ledger.stores.postgres import open_postgres as open_database
    else:
        from ledger.stores.sqlite import open_sqlite as open_database
    N_KEYS, LOCKSTEP, ROUNDS = map(int, sys.argv[5:8])

    def barrier(label):
        (work / f"{label}-{who}").touch()
        deadline = time.monotonic() + 60
        while not (work / f"{label}-{other}").exists():
            if time.monotonic() > deadline:
                sys.exit(f"{who}: the other process never reached {label}")
            time.sleep(0.0005)

    stores = open_database(path)
    cl = open_charity_ledger(stores, Signer.from_string(os.environ["LUODI_TEST_KEY"]))
    cl.ledger.check_signer()
    results = {}
    barrier("start")
    for rnd in range(ROUNDS):
        # Round 0: both in the same order, in lockstep; later rounds: b goes backwards.
        order = range(N_KEYS) if rnd == 0 or who == "a" else reversed(range(N_KEYS))
        for n, i in enumerate(order):
            if rnd == 0 and n % LOCKSTEP == 0:
                barrier(f"step{n}")
            req = race_request(i, who)
            try:
                r = cl.record_donation(**req)
                got = ["ok", r.entry.receipt, r.salt, r.replayed]
            except Conflict as exc:
                got = ["conflict", exc.detail]
            results.setdefault(req["intake_key"], []).append(got)
    stores.close()
    print(json.dumps(results))
    """
)


def _race_setup(make_books):
    signer = Signer.generate("race.luodi.example/log")
    stores, cl = make_books("race", signer)
    ck = register(cl, "hope", keys=1, threshold=1)
    open_project(cl, "winter", ck, "CNY")
    open_project(cl, "tokyo", ck, "JPY")
    return signer, stores, cl


def _check_race(stores, cl, results: dict[str, dict[str, list]], base_size: int, base_checkpoints: int):
    """results[who][intake_key] = the list of answers that sender got, in order."""
    log = entries(stores)
    donations = [e for e in log if e.kind == "donation"]
    by_key = {e.body["intake_key"]: e for e in donations}
    keys = [f"race-{i:06d}" for i in range(N_KEYS)]
    # Exactly one entry per intake key, and nothing else was written.
    assert len(donations) == len(by_key) == N_KEYS
    assert set(by_key) == set(keys)
    assert stores.log.size() == base_size + N_KEYS
    # A replay or a conflict commits nothing: every new checkpoint covers at least
    # one new entry (threads of one process may share one, in a group commit).
    sizes = [size for size, _ in stores.log.iter_checkpoints()]
    assert sizes == sorted(set(sizes))
    assert base_checkpoints < len(sizes) <= base_checkpoints + N_KEYS

    senders = sorted(results)
    for i, key in enumerate(keys):
        answers = [a for who in senders for a in results[who][key]]
        oks = [a for a in answers if a[0] == "ok"]
        originals = [a for a in oks if not a[3]]
        assert len(originals) == 1, (key, answers)
        receipt, salt = originals[0][1], originals[0][2]
        assert receipt == by_key[key].receipt
        # Every sender that got an answer got the same receipt and salt.
        assert all(a[1:3] == [receipt, salt] for a in oks), (key, answers)
        body = by_key[key].body
        assert body["donor_commitment"] == donor_commitment(bytes.fromhex(salt), f"donor-{i:06d}")
        if conflicting(i) and "b" in results:
            # The winner's request is in the log; the loser got a Conflict every time.
            winner = next(who for who in senders if any(a[0] == "ok" and not a[3] for a in results[who][key]))
            loser = next(who for who in senders if who != winner)
            assert all(a[0] == "ok" for a in results[winner][key])
            assert [a[0] for a in results[loser][key]] == ["conflict"] * len(results[loser][key])
            sent = race_request(i, winner)
            assert body["project"] == sent["project"]
            assert body["amount"] == parse_amount(sent["amount"], body["currency"])
        else:
            assert all(a[0] == "ok" for a in answers), (key, answers)

    # The totals are those of the winning requests, and the books pass the audit.
    raised = Counter()
    for e in donations:
        raised[e.body["project"]] += e.body["amount"]
    assert {p.project: (p.raised, p.donations) for p in cl.projects()} == {
        "winter": (raised["winter"], sum(1 for e in donations if e.body["project"] == "winter")),
        "tokyo": (raised["tokyo"], sum(1 for e in donations if e.body["project"] == "tokyo")),
    }
    assert verify_log(stores.log, REGISTRY, workers=1).size == base_size + N_KEYS
    report = audit_books(stores)
    assert report.donations == N_KEYS


def test_two_processes_sending_the_same_donations_make_one_entry_per_key(tmp_path, make_books):
    signer, stores, cl = _race_setup(make_books)
    base_size, base_checkpoints = stores.log.size(), len(list(stores.log.iter_checkpoints()))
    work = tmp_path / "barriers"
    work.mkdir()
    env = {
        **os.environ,
        "LUODI_TEST_KEY": signer.to_string(),
        "PYTHONPATH": str(ROOT),
    }
    args = [str(target_of(stores)), str(work), str(N_KEYS), str(LOCKSTEP), str(ROUNDS)]
    children = {}
    outputs = {}
    try:
        for who, other in (("a", "b"), ("b", "a")):
            children[who] = subprocess.Popen(
                [sys.executable, "-c", CHILD, who, other, *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        for who, child in children.items():
            outputs[who] = child.communicate(timeout=120)
    finally:
        for child in children.values():  # a child that failed leaves the other waiting
            if child.poll() is None:
                child.kill()
            child.communicate()
    results = {}
    for who, child in children.items():
        assert child.returncode == 0, outputs[who][1]
        results[who] = json.loads(outputs[who][0])
    for who in results:
        assert all(len(results[who][f"race-{i:06d}"]) == ROUNDS for i in range(N_KEYS))
    _check_race(stores, cl, results, base_size, base_checkpoints)


def test_threads_sharing_one_ledger_make_one_entry_per_key(make_books):
    """The SQLite stores guard their one write connection with a lock held for the whole intake
    (lookup of the key, append, commit), so threads may share a CharityLedger."""
    _, stores, cl = _race_setup(make_books)
    base_size, base_checkpoints = stores.log.size(), len(list(stores.log.iter_checkpoints()))
    senders = ["a", "c", "d", "e"]  # all send the same requests ("b" would conflict)
    results: dict[str, dict[str, list]] = {who: {} for who in senders}
    errors = []
    start = threading.Barrier(len(senders))

    def work(n, who):
        try:
            start.wait()
            for rnd in range(2):
                order = list(range(N_KEYS))
                order = order[n * 7 :] + order[: n * 7] if rnd == 0 else order[::-1]
                for i in order:
                    r = cl.record_donation(**race_request(i, who))
                    results[who].setdefault(f"race-{i:06d}", []).append(
                        ["ok", r.entry.receipt, r.salt, r.replayed]
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, who)) for n, who in enumerate(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    _check_race(stores, cl, results, base_size, base_checkpoints)
    # Each key was sent 8 times and written once.
    assert sum(len(v) for r in results.values() for v in r.values()) == 8 * N_KEYS


def test_a_reader_thread_never_sees_an_append_that_is_then_refused(make_books, monkeypatch):
    """Threads that share a CharityLedger share its one SQLite write connection.  While one thread
    is inside an append (here a batch whose second entry the books refuse), another thread's
    reads must show only what is committed: a refused batch writes nothing, not even for a
    moment.  The writer is paused just before its refused entry to make the moment visible."""
    cl = _race_setup(make_books)[2]
    d = donate(cl, "winter", "10.00").entry
    committed = cl.project("winter")
    extra = dict(d.body, intake_key="intake-in-flight-01", amount=5000)
    extra["postings"] = postings_for("donation", extra)
    refund = {"donation": d.receipt, "project": "winter", "amount": 1001, "currency": "CNY", "reason": "too much"}
    refund["postings"] = postings_for("refund", refund)

    paused, resume = threading.Event(), threading.Event()
    real_apply = Books.apply

    def pausing_apply(self, entry):
        if entry.kind == "refund" and threading.current_thread().name == "writer":
            paused.set()
            resume.wait(30)
        return real_apply(self, entry)

    monkeypatch.setattr(Books, "apply", pausing_apply)
    refused, seen = [], []

    def writer():
        try:
            cl.ledger.append_batch([("donation", extra), ("refund", refund)])
        except Overspend as exc:
            refused.append(exc)

    def reader():
        seen.append((cl.project("winter"), cl.books.intake("hope", "intake-in-flight-01")))

    w = threading.Thread(target=writer, name="writer")
    r = threading.Thread(target=reader, name="reader")
    w.start()
    try:
        assert paused.wait(30)
        r.start()
        r.join(1)  # a reader that waits for the writer's lock is fine too: it reads after the rollback
    finally:
        resume.set()
        w.join(30)
        r.join(30)
    assert len(refused) == 1 and "unspent" in refused[0].detail
    assert cl.project("winter") == committed and cl.books.intake("hope", "intake-in-flight-01") is None
    assert seen == [(committed, None)], "a reader saw the books of an append that was rolled back"


def test_many_donations_in_one_writer_commit_once_and_replay_within_the_batch(books):
    """An intake can commit a batch of donations with one checkpoint; a key repeated
    inside the batch returns the entry staged earlier in it."""
    ledger = books.ledger
    size, checkpoints = ledger.size(), ledger.store.checkpoint()[0]
    with ledger.writer() as w:
        first = books.record_donation_in(w, intake_key="batch-key-0001", **REQUEST)
        second = books.record_donation_in(w, intake_key="batch-key-0002", **{**REQUEST, "amount": "5.00"})
        again = books.record_donation_in(w, intake_key="batch-key-0001", **REQUEST)
        with pytest.raises(Conflict):
            books.record_donation_in(w, intake_key="batch-key-0002", **REQUEST)
    assert (again.entry, again.salt, again.replayed) == (first.entry, first.salt, True)
    assert ledger.size() == size + 2
    assert ledger.store.checkpoint()[0] == size + 2 != checkpoints
    assert ledger.store.checkpoint(size + 1) is None
    assert [e.receipt for e in (ledger.entry(size), ledger.entry(size + 1))] == [first.entry.receipt, second.entry.receipt]
