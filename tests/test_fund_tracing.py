"""Fund tracing by hand: FIFO allocations written out for small, fixed scenarios.

Every expected allocation below is computed by hand from the rule in
docs/entries.md: a disbursement spends the oldest unspent donations of its
own project first; a refund takes only its own donation's unspent money.
"""

from __future__ import annotations

import pytest
from conftest import REGISTRY
from factories import (
    disburse,
    donate,
    entries,
    open_project,
    payout,
    register,
    writes_nothing,
)

from ledger.charity.allocation import DonationTrace, allocate_fifo, pro_rata, trace_fifo
from ledger.charity.audit import audit_books
from ledger.charity.kinds import postings_for
from ledger.errors import Conflict, InvalidInput, NotFound, Overspend, SignatureError
from ledger.log.verify import verify_log


@pytest.fixture
def books(make_books):
    stores, cl = make_books("tracing")
    yield cl
    # Every scenario leaves a log that verifies and books that an auditor agrees with.
    verify_log(stores.log, REGISTRY, workers=1)
    audit_books(stores)


@pytest.fixture
def hope(books):
    """Charity "hope" (2-of-2 keys) with CNY project "winter"."""
    ck = register(books, "hope", keys=2, threshold=2)
    open_project(books, "winter", ck, "CNY")
    return ck


def spent(books, receipt) -> list[tuple[str, int]]:
    return books.trace(receipt).spent


def test_fifo_across_several_donations_and_disbursements(books, hope):
    d1 = donate(books, "winter", "100.00").entry.receipt
    d2 = donate(books, "winter", "50.00").entry.receipt
    d3 = donate(books, "winter", "30.00").entry.receipt

    x1 = disburse(books, "winter", hope, "120.00").receipt  # all of d1, 20 of d2
    assert spent(books, d1) == [(x1, 10000)]
    assert spent(books, d2) == [(x1, 2000)]
    assert spent(books, d3) == []

    x2 = disburse(books, "winter", hope, "40.00").receipt  # the other 30 of d2, 10 of d3
    x3 = disburse(books, "winter", hope, "5.50").receipt  # 5.50 more of d3
    assert spent(books, d1) == [(x1, 10000)]
    assert spent(books, d2) == [(x1, 2000), (x2, 3000)]
    assert spent(books, d3) == [(x2, 1000), (x3, 550)]

    t1, t2, t3 = (books.trace(r) for r in (d1, d2, d3))
    assert (t1.spent_total, t1.refunded, t1.unspent) == (10000, 0, 0)
    assert (t2.spent_total, t2.refunded, t2.unspent) == (5000, 0, 0)
    assert (t3.spent_total, t3.refunded, t3.unspent) == (1550, 0, 1450)
    assert (t3.project, t3.currency, t3.amount, t3.receipt) == ("winter", "CNY", 3000, d3)

    # The auditor's fold over the entries alone gives the same answer.
    folded = trace_fifo(entries(books.stores))
    assert {r: folded[r].spent for r in (d1, d2, d3)} == {r: spent(books, r) for r in (d1, d2, d3)}


def test_one_disbursement_spanning_three_donations(books, hope):
    ds = [donate(books, "winter", a).entry.receipt for a in ("10.00", "20.00", "30.00", "40.00")]
    x = disburse(books, "winter", hope, "55.00").receipt
    assert [spent(books, d) for d in ds] == [[(x, 1000)], [(x, 2000)], [(x, 2500)], []]
    assert [books.trace(d).unspent for d in ds] == [0, 0, 500, 4000]
    p = books.project("winter")
    assert (p.raised, p.spent, p.refunded, p.balance, p.donations) == (10000, 5500, 0, 4500, 4)


def test_a_disbursement_of_exactly_the_balance_and_not_one_fen_more(books, hope):
    d1 = donate(books, "winter", "10.00").entry.receipt
    d2 = donate(books, "winter", "0.01").entry.receipt
    with writes_nothing(books, Overspend, "exceeds"):
        disburse(books, "winter", hope, "10.02")
    x = disburse(books, "winter", hope, "10.01").receipt
    assert spent(books, d1) == [(x, 1000)] and spent(books, d2) == [(x, 1)]
    assert books.project("winter").balance == 0
    with writes_nothing(books, Overspend, "exceeds"):
        disburse(books, "winter", hope, "0.01")


def test_refund_takes_only_its_own_donations_unspent_money(books, hope):
    d1 = donate(books, "winter", "100.00").entry.receipt
    d2 = donate(books, "winter", "50.00").entry.receipt
    assert books.project("winter").balance == 15000
    # The project holds 150.00, but d2 holds only 50.00.
    with writes_nothing(books, Overspend, "unspent 5000"):
        books.refund(d2, "50.01", "too much")
    r = books.refund(d2, "20.00", "partial refund")
    assert r.body["amount"] == 2000 and r.body["donation"] == d2 and r.body["project"] == "winter"
    assert r.body["postings"] == postings_for("refund", r.body)
    assert (books.trace(d2).refunded, books.trace(d2).unspent) == (2000, 3000)
    assert (books.trace(d1).refunded, books.trace(d1).unspent) == (0, 10000)
    with writes_nothing(books, Overspend, "unspent 3000"):
        books.refund(d2, "30.01", "again too much")
    books.refund(d2, "30.00", "the rest")
    assert books.trace(d2).unspent == 0
    with writes_nothing(books, Overspend):
        books.refund(d2, "0.01", "nothing is left")
    p = books.project("winter")
    assert (p.raised, p.spent, p.refunded, p.balance) == (15000, 0, 5000, 10000)


def test_refund_of_a_fully_spent_donation_is_refused(books, hope):
    d1 = donate(books, "winter", "100.00").entry.receipt
    d2 = donate(books, "winter", "100.00").entry.receipt
    x = disburse(books, "winter", hope, "100.00").receipt
    assert spent(books, d1) == [(x, 10000)] and books.trace(d1).unspent == 0
    assert books.project("winter").balance == 10000  # d2's money is still there
    with writes_nothing(books, Overspend, "unspent 0"):
        books.refund(d1, "0.01", "the money was already spent")
    # A partly spent donation can give back only what is left of it.
    x2 = disburse(books, "winter", hope, "60.00").receipt
    with writes_nothing(books, Overspend, "unspent 4000"):
        books.refund(d2, "40.01", "too much")
    books.refund(d2, "40.00", "what is left")
    assert books.trace(d2).spent == [(x2, 6000)]
    assert books.project("winter").balance == 0


def test_a_disbursement_above_the_balance_is_refused(books, hope):
    with writes_nothing(books, Overspend, "balance 0"):
        disburse(books, "winter", hope, "0.01")  # an empty project
    donate(books, "winter", "30.00")
    donate(books, "winter", "20.00")
    with writes_nothing(books, Overspend, "exceeds project 'winter' balance 5000"):
        disburse(books, "winter", hope, "50.01")
    d3 = donate(books, "winter", "0.01").entry.receipt
    x = disburse(books, "winter", hope, "50.01").receipt
    assert spent(books, d3) == [(x, 1)]


def test_after_a_refund_the_next_disbursement_skips_the_refunded_money(books, hope):
    d1 = donate(books, "winter", "100.00").entry.receipt
    d2 = donate(books, "winter", "50.00").entry.receipt
    d3 = donate(books, "winter", "50.00").entry.receipt
    books.refund(d1, "100.00", "refund in full")  # d1 holds nothing now
    x1 = disburse(books, "winter", hope, "70.00").receipt
    assert spent(books, d1) == []
    assert spent(books, d2) == [(x1, 5000)]
    assert spent(books, d3) == [(x1, 2000)]
    books.refund(d3, "10.00", "partial refund")  # d3: 50 - 20 spent - 10 refunded = 20 left
    with writes_nothing(books, Overspend):
        disburse(books, "winter", hope, "20.01")
    x2 = disburse(books, "winter", hope, "20.00").receipt
    assert spent(books, d3) == [(x1, 2000), (x2, 2000)]
    assert [books.trace(d).unspent for d in (d1, d2, d3)] == [0, 0, 0]


def test_a_partial_refund_leaves_the_rest_of_the_oldest_donation_first_in_line(books, hope):
    d1 = donate(books, "winter", "100.00").entry.receipt
    d2 = donate(books, "winter", "100.00").entry.receipt
    books.refund(d1, "30.00", "partial refund")
    x = disburse(books, "winter", hope, "80.00").receipt
    assert spent(books, d1) == [(x, 7000)]
    assert spent(books, d2) == [(x, 1000)]
    t1 = books.trace(d1)
    assert (t1.spent_total, t1.refunded, t1.unspent) == (7000, 3000, 0)


def test_donations_never_fund_another_projects_disbursement(books, hope):
    open_project(books, "spring", hope, "CNY")
    river = register(books, "river", keys=1, threshold=1)
    open_project(books, "river-clean", river, "CNY")
    w = donate(books, "winter", "100.00").entry.receipt
    s = donate(books, "spring", "10.00").entry.receipt
    r = donate(books, "river-clean", "500.00").entry.receipt
    # winter and river-clean hold plenty, but spring holds 10.00.
    with writes_nothing(books, Overspend, "exceeds project 'spring' balance 1000"):
        disburse(books, "spring", hope, "20.00")
    x = disburse(books, "spring", hope, "10.00").receipt
    assert spent(books, s) == [(x, 1000)]
    assert spent(books, w) == [] and spent(books, r) == []
    y = disburse(books, "river-clean", river, "500.00").receipt
    assert spent(books, r) == [(y, 50000)] and spent(books, w) == []
    totals = {p.project: (p.raised, p.spent, p.balance) for p in books.projects()}
    assert totals == {"winter": (10000, 0, 10000), "spring": (1000, 1000, 0), "river-clean": (50000, 50000, 0)}


def test_jpy_amounts_have_no_minor_unit(books, hope):
    open_project(books, "tokyo", hope, "JPY")
    d1 = donate(books, "tokyo", "500")
    d2 = donate(books, "tokyo", "1200")
    assert (d1.entry.body["amount"], d1.entry.body["currency"]) == (500, "JPY")
    assert d1.entry.body["postings"] == [
        {"account": "donors", "currency": "JPY", "amount": -500},
        {"account": "project:tokyo", "currency": "JPY", "amount": 500},
    ]
    with writes_nothing(books, InvalidInput, "decimal places"):
        donate(books, "tokyo", "1.5")
    x = disburse(books, "tokyo", hope, "1500", currency="JPY")
    assert x.body["payload"]["amount"] == 1500
    assert spent(books, d1.entry.receipt) == [(x.receipt, 500)]
    assert spent(books, d2.entry.receipt) == [(x.receipt, 1000)]
    with writes_nothing(books, InvalidInput, "decimal places"):
        books.refund(d2.entry.receipt, "100.5", "fractional yen")
    books.refund(d2.entry.receipt, "200", "the rest")
    p = books.project("tokyo")
    assert (p.currency, p.raised, p.spent, p.refunded, p.balance, p.donations) == ("JPY", 1700, 1500, 200, 0, 2)


def test_a_closed_project_refuses_donations_and_disbursements_but_allows_refunds(books, hope):
    d1 = donate(books, "winter", "100.00").entry.receipt
    x = disburse(books, "winter", hope, "40.00").receipt
    closed = books.close_project("winter", "campaign over")
    assert closed.kind == "project.closed" and books.project("winter").closed
    with writes_nothing(books, Conflict, "closed", exact=True):
        donate(books, "winter", "1.00")
    with writes_nothing(books, Conflict, "closed", exact=True):
        disburse(books, "winter", hope, "1.00")
    with writes_nothing(books, Conflict, "closed", exact=True):
        books.close_project("winter", "closing twice")
    r = books.refund(d1, "60.00", "the campaign ended; returning what was not spent")
    assert r.kind == "refund"
    t = books.trace(d1)
    assert (t.spent, t.refunded, t.unspent) == ([(x, 4000)], 6000, 0)
    p = books.project("winter")
    assert (p.closed, p.raised, p.spent, p.refunded, p.balance, p.donations) == (True, 10000, 4000, 6000, 0, 1)


def test_unknown_project_charity_or_donation_is_not_found(books, hope):
    with writes_nothing(books, NotFound, "no project 'nowhere'"):
        donate(books, "nowhere", "1.00")
    with writes_nothing(books, NotFound, "no charity 'ghost'"):
        books.open_project("haunted", "ghost", "Haunted", "A charity nobody registered", "CNY")
    with writes_nothing(books, NotFound, "no project 'nowhere'"):
        disburse(books, "nowhere", hope, "1.00")
    with writes_nothing(books, NotFound, "no project 'nowhere'"):
        books.close_project("nowhere", "never opened")
    with writes_nothing(books, NotFound, "no donation"):
        books.refund("ab" * 32, "1.00", "no such gift")
    # A receipt of an entry that is not a donation is no donation either.
    opened = books.ledger.entry(2)
    assert opened.kind == "project.opened"
    with writes_nothing(books, NotFound, "no donation"):
        books.refund(opened.receipt, "1.00", "not a gift")
    with pytest.raises(NotFound):
        books.trace("cd" * 32)
    with pytest.raises(NotFound):
        books.trace(opened.receipt)
    with pytest.raises(NotFound):
        books.project("nowhere")
    # A disbursement payload naming a charity that was never registered (for a real project).
    body = payout("winter", hope, "1.00", charity="ghost")
    with writes_nothing(books, SignatureError, "belongs to charity hope, not ghost"):
        books.disburse(body, hope.sign(body))


def test_currency_mismatch_is_refused(books, hope):
    d = donate(books, "winter", "100.00").entry
    # A JPY disbursement from a CNY project, signed properly.
    with writes_nothing(books, InvalidInput, "takes CNY, not JPY"):
        disburse(books, "winter", hope, "10", currency="JPY")
    # Entries written without the facade: a donation and a refund in the wrong currency.
    body = dict(d.body, intake_key="intake-usd-0001", amount=1000, currency="USD")
    body["postings"] = postings_for("donation", body)
    with writes_nothing(books, InvalidInput, "takes CNY, not USD"):
        books.ledger.append("donation", body)
    refund = {"donation": d.receipt, "project": "winter", "amount": 100, "currency": "JPY", "reason": "yen"}
    refund["postings"] = postings_for("refund", refund)
    with writes_nothing(books, InvalidInput, "takes CNY, not JPY"):
        books.ledger.append("refund", refund)
    assert books.trace(d.receipt).unspent == 10000


def test_pro_rata_shares_are_proportional_and_sum_to_what_each_project_spent(books, hope):
    open_project(books, "spring", hope, "CNY")
    a = donate(books, "winter", "100.00").entry.receipt
    b = donate(books, "winter", "50.00").entry.receipt
    c = donate(books, "winter", "50.00").entry.receipt
    # Spring: minor amounts 10, 20, 30 (raised 60); it spends 25.
    s1 = donate(books, "spring", "0.10").entry.receipt
    s2 = donate(books, "spring", "0.20").entry.receipt
    s3 = donate(books, "spring", "0.30").entry.receipt
    disburse(books, "winter", hope, "100.00")  # FIFO: all of a
    disburse(books, "spring", hope, "0.25")  # FIFO: 10 of s1, 15 of s2
    traces = [books.trace(r) for r in (a, b, c, s1, s2, s3)]
    assert [t.spent_total for t in traces] == [10000, 0, 0, 10, 15, 0]

    shares = pro_rata(traces)
    # Winter spent 10000 of 20000 raised: each gift's share is exactly half of it.
    assert {r: shares[r] for r in (a, b, c)} == {a: 5000, b: 2500, c: 2500}
    # Spring spent 25 of 60: exact shares 10*25/60 = 4.17, 20*25/60 = 8.33, 30*25/60 = 12.5;
    # floors 4 + 8 + 12 = 24, and the one left over goes to the largest remainder (s3's).
    assert {r: shares[r] for r in (s1, s2, s3)} == {s1: 4, s2: 8, s3: 13}
    assert sum(shares[r] for r in (a, b, c)) == books.project("winter").spent
    assert sum(shares[r] for r in (s1, s2, s3)) == books.project("spring").spent


def test_pro_rata_breaks_equal_remainders_by_receipt():
    traces = [DonationTrace(r, "p", "CNY", 1) for r in ("c" * 64, "a" * 64, "b" * 64)]
    traces[0].spent.append(("f" * 64, 1))
    traces[1].spent.append(("f" * 64, 1))
    # Spent 2 of 3 equal gifts: floors are 0, and the two units go to the smallest receipts.
    assert pro_rata(traces) == {"a" * 64: 1, "b" * 64: 1, "c" * 64: 0}


def test_allocate_fifo_is_the_one_rule():
    assert allocate_fifo([("a", 5), ("b", 0), ("c", 7), ("d", 9)], 10) == [("a", 5), ("c", 5)]
    assert allocate_fifo([("a", 5)], 5) == [("a", 5)]
    with pytest.raises(Overspend):
        allocate_fifo([("a", 5), ("b", 4)], 10)


def test_project_totals(books, hope):
    p = books.project("winter")
    assert (p.project, p.charity, p.currency, p.closed) == ("winter", "hope", "CNY", False)
    assert (p.raised, p.spent, p.refunded, p.balance, p.donations) == (0, 0, 0, 0, 0)
    d1 = donate(books, "winter", "12.34").entry.receipt
    donate(books, "winter", "0.66")
    disburse(books, "winter", hope, "5.00")
    books.refund(d1, "1.00", "partial")
    p = books.project("winter")
    assert (p.raised, p.spent, p.refunded, p.balance, p.donations) == (1300, 500, 100, 700, 2)
    assert books.projects() == [p]
    assert p.seq == 2  # genesis, charity.registered, project.opened
