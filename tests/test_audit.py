"""The accounting audit: recompute the books from the entries alone and compare with the server.

``audit_books`` must pass on an honest ledger and count what is in it; it
must catch a server index that was edited behind the log's back (naming the
seq of the donation or project concerned); and it must catch an entry that
reached the log without the books' rules being checked (an overspend, a
forged or insufficient signature, a replayed nonce...), even though the hash
chain, the tree and the checkpoints around such an entry are all intact.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from backends import execute
from conftest import REGISTRY
from factories import (
    CharityKeys,
    disburse,
    donate,
    entries,
    open_project,
    payout,
    register,
)

from ledger.charity import payload as P
from ledger.charity.audit import audit_books
from ledger.charity.books import Books, BooksHook
from ledger.charity.kinds import postings_for
from ledger.errors import LogCorrupted
from ledger.log.clock import format_time
from ledger.log.note import Signer
from ledger.log.verify import verify_log


@pytest.fixture
def mixed(make_books):
    """An honest ledger with a bit of everything; returns a namespace of what it holds."""
    stores, cl = make_books("audit")
    hope = register(cl, "hope", keys=3, threshold=2)
    river = register(cl, "river", keys=1, threshold=1)
    winter = open_project(cl, "winter", hope, "CNY")
    tokyo = open_project(cl, "tokyo", hope, "JPY")
    clean = open_project(cl, "river-clean", river, "CNY")
    w = [donate(cl, "winter", a).entry for a in ("100.00", "50.00", "30.00", "20.00", "10.00", "5.55")]
    t = [donate(cl, "tokyo", a).entry for a in ("1000", "2500", "300")]
    r = [donate(cl, "river-clean", a).entry for a in ("80.00", "45.50")]
    x1 = disburse(cl, "winter", hope, "120.00")  # all of w0, 20.00 of w1
    cl.refund(w[2].receipt, "10.00", "partial refund")
    # The charity rotates its keys; later disbursements are signed with the new ones.
    new = [Signer.generate(f"hope/finance-{i}") for i in (4, 5)]
    rotation = P.rotation(charity="hope", keys=[s.verifier.to_string() for s in new], threshold=2)
    cl.rotate_keys(rotation, hope.sign(rotation))
    old_hope = CharityKeys("hope", list(hope.signers), 2)
    hope.signers = new
    x2 = disburse(cl, "winter", hope, "50.00")  # 30.00 of w1, 20.00 of w2 (w2 had 10.00 refunded)
    x3 = disburse(cl, "tokyo", hope, "3000", currency="JPY")
    x4 = disburse(cl, "river-clean", river, "100.00")
    cl.close_project("tokyo", "campaign over")
    cl.refund(t[2].receipt, "300", "returned after closing")
    cl.ledger.append("note", {"text": "Audited by an independent auditor."})
    yield SimpleNamespace(
        stores=stores,
        cl=cl,
        hope=hope,
        old_hope=old_hope,
        river=river,
        winter=winter,
        tokyo=tokyo,
        clean=clean,
        w=w,
        t=t,
        r=r,
        x=[x1, x2, x3, x4],
    )


def tamper(stores, *statements):
    """Edit the database behind the ledger's back, with a connection of our own."""
    execute(stores, *statements)


@contextmanager
def books_look_away(monkeypatch):
    """Appends inside this block skip the books' rules, those checked before the append
    lock included (and leave the server index alone)."""
    with monkeypatch.context() as m:
        m.setattr(Books, "apply", lambda self, entry: None)
        m.setattr(BooksHook, "check", lambda self, kind, body, clock: None)
        yield


def test_a_clean_mixed_ledger_passes_and_is_counted(mixed):
    stores, cl = mixed.stores, mixed.cl
    assert verify_log(stores.log, REGISTRY, workers=1).size == stores.log.size()
    report = audit_books(stores)
    assert report.entries == stores.log.size() == 26
    assert (report.donations, report.disbursements, report.refunds, report.projects) == (11, 4, 2, 3)
    kinds = [e.kind for e in entries(stores)]
    assert (kinds.count("donation"), kinds.count("disbursement"), kinds.count("refund")) == (11, 4, 2)
    # The books the audit recomputed are the ones the ledger answers with.
    w = mixed.w
    x1, x2 = mixed.x[0].receipt, mixed.x[1].receipt
    assert cl.trace(w[0].receipt).spent == [(x1, 10000)]
    assert cl.trace(w[1].receipt).spent == [(x1, 2000), (x2, 3000)]
    assert cl.trace(w[2].receipt).spent == [(x2, 2000)] and cl.trace(w[2].receipt).refunded == 1000
    tokyo = cl.project("tokyo")
    assert (tokyo.closed, tokyo.raised, tokyo.spent, tokyo.refunded, tokyo.balance) == (True, 3800, 3000, 300, 500)
    # Auditing writes nothing.
    size, cp = stores.log.size(), stores.log.checkpoint()
    audit_books(stores)
    assert (stores.log.size(), stores.log.checkpoint()) == (size, cp)


def test_an_empty_ledger_passes(make_books):
    stores, _ = make_books("empty")
    assert audit_books(stores).entries == 1
    assert (audit_books(stores).donations, audit_books(stores).projects) == (0, 0)


# -- the server's index edited behind the log's back ------------------------------------------


def _corrupted(stores, seq: int, *words: str) -> LogCorrupted:
    verify_log(stores.log, REGISTRY, workers=1)  # the log itself is untouched
    with pytest.raises(LogCorrupted) as info:
        audit_books(stores)
    assert info.value.seq == seq, str(info.value)
    assert str(info.value).startswith(f"seq {seq}: ")
    for word in words:
        assert word in str(info.value)
    return info.value


def test_an_edited_allocation_amount_is_caught_at_the_donation(mixed):
    w1, x1 = mixed.w[1], mixed.x[0]
    tamper(
        mixed.stores,
        (
            "UPDATE allocations SET amount = amount - 1 WHERE donation = ? AND disbursement = ?",
            (w1.leaf_hash, x1.leaf_hash),
        ),
    )
    _corrupted(mixed.stores, w1.seq, "server", "differently from FIFO", w1.receipt)


def test_a_deleted_allocation_is_caught_at_the_donation(mixed):
    w1, x2 = mixed.w[1], mixed.x[1]
    tamper(
        mixed.stores,
        ("DELETE FROM allocations WHERE donation = ? AND disbursement = ?", (w1.leaf_hash, x2.leaf_hash)),
    )
    _corrupted(mixed.stores, w1.seq, "differently from FIFO", w1.receipt)


def test_an_allocation_moved_to_a_younger_donation_is_caught(mixed):
    """The index says x1 spent w4 instead of w0: not FIFO.  The oldest donation concerned is named."""
    w0, w4, x1 = mixed.w[0], mixed.w[4], mixed.x[0]
    tamper(
        mixed.stores,
        (
            "UPDATE allocations SET donation = ?, amount = 1000 WHERE donation = ? AND disbursement = ?",
            (w4.leaf_hash, w0.leaf_hash, x1.leaf_hash),
        ),
    )
    _corrupted(mixed.stores, w0.seq, "differently from FIFO", w0.receipt)


def test_an_edited_donation_spent_total_is_caught_at_the_donation(mixed):
    w2 = mixed.w[2]
    tamper(mixed.stores, ("UPDATE donations SET spent = spent + 1 WHERE receipt = ?", (w2.leaf_hash,)))
    _corrupted(mixed.stores, w2.seq, "server", "other totals", w2.receipt)


def test_an_edited_donation_refund_total_is_caught_at_the_donation(mixed):
    t2 = mixed.t[2]
    tamper(mixed.stores, ("UPDATE donations SET refunded = 0 WHERE receipt = ?", (t2.leaf_hash,)))
    _corrupted(mixed.stores, t2.seq, "other totals", t2.receipt)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE projects SET spent = spent - 1 WHERE project = ?",
        "UPDATE projects SET raised = raised + 100 WHERE project = ?",
        "UPDATE projects SET refunded = refunded + 1 WHERE project = ?",
        "UPDATE projects SET donations = donations - 1 WHERE project = ?",
    ],
    ids=["spent", "raised", "refunded", "donations"],
)
def test_edited_project_totals_are_caught_at_the_project(mixed, sql):
    tamper(mixed.stores, (sql, ("winter",)))
    _corrupted(mixed.stores, mixed.winter.seq, "totals for project 'winter' are wrong")


def test_a_closed_project_reopened_in_the_index_is_caught(mixed):
    tamper(mixed.stores, ("UPDATE projects SET closed_seq = NULL WHERE project = ?", ("tokyo",)))
    _corrupted(mixed.stores, mixed.tokyo.seq, "project 'tokyo'")


def test_books_behind_the_log_are_caught(mixed):
    size = mixed.stores.log.size()
    tamper(mixed.stores, ("UPDATE books_state SET applied = ? WHERE id = 1", (size - 3,)))
    _corrupted(mixed.stores, size - 3, "not up to date")


# -- entries that reached the log without the books' rules ------------------------------------


def _forged(mixed, monkeypatch, kind: str, body: dict, *words: str, then_more: bool = False):
    """Append ``body`` while the books look away; the chain stays whole, the audit must name it."""
    stores = mixed.stores
    with books_look_away(monkeypatch):
        entry = mixed.cl.ledger.append(kind, body)
    if then_more:  # honest entries after the forged one do not move the blame
        mixed.cl.ledger.append("note", {"text": "business as usual"})
        donate(mixed.cl, "winter", "1.00")
    report = verify_log(stores.log, REGISTRY, workers=1)
    assert report.size == stores.log.size() and report.checkpoints >= entry.seq + 1
    err = _corrupted(stores, entry.seq, "the accounting rules refuse this entry", *words)
    return entry, err


def _disbursement(payload: dict, sigs: list[dict]) -> dict:
    body = {"payload": payload, "signatures": sigs}
    body["postings"] = postings_for("disbursement", body)
    return body


def test_an_overspending_disbursement_in_the_log_is_caught(mixed, monkeypatch):
    balance = mixed.cl.project("winter").balance
    assert balance == 21555 - 17000 - 1000  # raised - spent - refunded
    body = payout("winter", mixed.hope, "35.56")  # one fen more than the 35.55 left
    forged = _disbursement(body, mixed.hope.sign(body))
    _forged(mixed, monkeypatch, "disbursement", forged, "exceeds", "balance 3555", then_more=True)


def test_a_disbursement_signed_by_a_stranger_is_caught(mixed, monkeypatch):
    body = payout("winter", mixed.hope, "1.00")
    stranger = CharityKeys("hope", [Signer.generate("hope/finance-9"), Signer.generate("hope/finance-8")], 2)
    forged = _disbursement(body, stranger.sign(body))
    _forged(mixed, monkeypatch, "disbursement", forged, "not by a current key of charity hope")


def test_a_disbursement_signed_with_another_charitys_key_is_caught(mixed, monkeypatch):
    body = payout("winter", mixed.hope, "1.00")
    sigs = mixed.hope.sign(body)[:1] + mixed.river.sign(body)
    _forged(mixed, monkeypatch, "disbursement", _disbursement(body, sigs), "is by a key of charity river")


def test_a_disbursement_signed_with_rotated_out_keys_is_caught(mixed, monkeypatch):
    body = payout("winter", mixed.hope, "1.00")
    forged = _disbursement(body, mixed.old_hope.sign(body))
    _forged(mixed, monkeypatch, "disbursement", forged, "not by a current key of charity hope")


def test_a_disbursement_below_the_threshold_is_caught(mixed, monkeypatch):
    body = payout("winter", mixed.hope, "1.00")
    _forged(mixed, monkeypatch, "disbursement", _disbursement(body, mixed.hope.sign(body)[:1]), "needs 2")


def test_a_disbursement_whose_payload_changed_after_signing_is_caught(mixed, monkeypatch):
    body = payout("winter", mixed.hope, "1.00")
    sigs = mixed.hope.sign(body)
    body = dict(body, payee={"name": "Someone Else Ltd."})
    _forged(mixed, monkeypatch, "disbursement", _disbursement(body, sigs), "does not verify over the payload")


def test_a_replayed_nonce_is_caught(mixed, monkeypatch):
    first = mixed.x[1].body["payload"]  # an honest disbursement from winter, by the current keys
    body = payout("winter", mixed.hope, "2.00", nonce=first["nonce"])
    forged = _disbursement(body, mixed.hope.sign(body))
    _forged(mixed, monkeypatch, "disbursement", forged, "nonce", first["nonce"], "already used by charity hope")


def test_an_identical_disbursement_posted_twice_is_caught(mixed, monkeypatch):
    """The very same signed body again (a replay of the whole request): the nonce gives it away."""
    _forged(mixed, monkeypatch, "disbursement", mixed.x[3].body, "already used by charity river")


def test_a_disbursement_signed_long_before_its_entry_is_caught(mixed, monkeypatch):
    body = P.disbursement(
        charity="hope",
        project="winter",
        currency="CNY",
        payee="Acme",
        purpose="old paperwork",
        period=("2026-11-01", "2026-11-30"),
        lines=[("x", "1.00")],
        signed_at="2020-01-01T00:00:00.000Z",
    )
    _forged(mixed, monkeypatch, "disbursement", _disbursement(body, mixed.hope.sign(body)), "signed_at")


def test_a_refund_beyond_the_donations_unspent_is_caught(mixed, monkeypatch):
    w0 = mixed.w[0]  # fully spent by x1; the project still holds money
    body = {"donation": w0.receipt, "project": "winter", "amount": 1, "currency": "CNY", "reason": "sneaky"}
    body["postings"] = postings_for("refund", body)
    _forged(mixed, monkeypatch, "refund", body, "exceeds the donation's unspent 0", then_more=True)


def test_a_donation_to_a_closed_project_is_caught(mixed, monkeypatch):
    body = dict(mixed.t[0].body, intake_key="intake-late-000001", amount=500)
    body["postings"] = postings_for("donation", body)
    _forged(mixed, monkeypatch, "donation", body, "'tokyo' is closed")


def test_a_donation_reusing_an_intake_key_is_caught(mixed, monkeypatch):
    body = dict(mixed.w[3].body, amount=999)
    body["postings"] = postings_for("donation", body)
    _forged(mixed, monkeypatch, "donation", body, "already used")


# -- the rest of the server's index: what the server enforces the rules with ------------------
#
# The books keep, beside donations and projects, the charities' keys and thresholds, the used
# nonces and intake keys.  The server decides every future append with them, so an index edited
# there weakens the rules (a lower threshold, an extra key, a forgotten nonce or intake key)
# while every entry in the log is still fine.  The audit recomputes all of it from the entries
# and must find such an index wrong before it is used, not only after a bad entry lands.


def _index_edits(mixed):
    evil = Signer.generate("hope/finance-666")
    keys = json.dumps([*(s.verifier.to_string() for s in mixed.hope.signers), evil.verifier.to_string()])
    return {
        "threshold-lowered": [("UPDATE charities SET threshold = 1 WHERE charity = ?", ("hope",))],
        "extra-key": [
            ("UPDATE charities SET keys = ? WHERE charity = ?", (keys, "hope")),
            ("INSERT INTO charity_keys (public_key, charity) VALUES (?, ?)", (evil.verifier.public_key, "hope")),
        ],
        "nonce-forgotten": [("DELETE FROM nonces WHERE nonce = ?", (mixed.x[3].body["payload"]["nonce"],))],
        "intake-key-forgotten": [("DELETE FROM intake_keys WHERE intake_key = ?", (mixed.w[0].body["intake_key"],))],
        "phantom-donation": [
            (
                "INSERT INTO donations (receipt, seq, project, amount) VALUES (?, ?, ?, ?)",
                (b"\x11" * 32, 9999, "winter", 5000),
            )
        ],
        "phantom-project": [
            (
                "INSERT INTO projects (project, charity, currency, seq) VALUES (?, ?, ?, ?)",
                ("ghost", "hope", "CNY", 9999),
            )
        ],
    }


INDEX_EDITS = [
    "threshold-lowered",
    "extra-key",
    "nonce-forgotten",
    "intake-key-forgotten",
    "phantom-donation",
    "phantom-project",
]


@pytest.mark.parametrize("edit", INDEX_EDITS)
def test_the_audit_compares_the_whole_server_index(mixed, edit):
    tamper(mixed.stores, *_index_edits(mixed)[edit])
    verify_log(mixed.stores.log, REGISTRY, workers=1)
    with pytest.raises(LogCorrupted):
        audit_books(mixed.stores)


def test_a_lowered_threshold_lets_the_server_accept_what_the_audit_then_refuses(mixed):
    """What an edited index leads to: the server appends a 1-of-2 disbursement; the replay refuses it."""
    tamper(mixed.stores, *_index_edits(mixed)["threshold-lowered"])
    body = payout("winter", mixed.hope, "1.00")
    entry = mixed.cl.disburse(body, mixed.hope.sign(body)[:1])  # one signature where two are needed
    assert mixed.cl.trace(mixed.w[3].receipt).spent[-1] == (entry.receipt, 100)
    _corrupted(mixed.stores, entry.seq, "needs 2")


# -- the signing window the log records ---------------------------------------------------------


def _signed_ago(mixed, seconds: int) -> dict:
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)
    return P.disbursement(
        charity="hope", project="winter", currency="CNY", payee="Acme", purpose="coats",
        period=("2026-11-01", "2026-11-30"), lines=[("x", "1.00")], signed_at=format_time(when),
    )  # fmt: skip


def test_the_replay_applies_the_window_the_log_records(mixed, monkeypatch):
    """With the log's policy at 60 s, a disbursement signed 5 minutes before its entry (inside
    the default 600 s) is caught: the audit judges by the logged window, not a default."""
    mixed.cl.record_policy(60)
    body = _signed_ago(mixed, 300)
    _forged(mixed, monkeypatch, "disbursement", _disbursement(body, mixed.hope.sign(body)), "more than 60s")


def test_a_wide_logged_window_is_replayed_too(mixed):
    """An honest log whose policy allows an hour audits clean with a gift signed 30 minutes
    earlier, which the default window would refuse: nothing but the log tells the auditor."""
    mixed.cl.record_policy(3600)
    body = _signed_ago(mixed, 1800)
    mixed.cl.disburse(body, mixed.hope.sign(body))
    report = audit_books(mixed.stores)
    assert report.disbursements == len(mixed.x) + 1
