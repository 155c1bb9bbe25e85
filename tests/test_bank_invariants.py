"""Random interleavings of everything a charity ledger does, checked against a naive model.

A Hypothesis state machine registers charities (each with its own keys and a
threshold of 1 or 2), opens projects in CNY and JPY, records donations, posts
signed disbursements (sometimes above the balance, sometimes badly signed),
refunds parts of donations (sometimes above their unspent money) and closes
projects.  After every step the ledger must agree with a model written here
from scratch: a per-project FIFO queue of ``[receipt, remaining]``; a
disbursement takes from the oldest first and a refund reduces only its own
donation.  Every refusal must leave the log, its checkpoint and the books
exactly as they were.

SQLite only: Hypothesis runs hundreds of examples, each on a database of its
own, outside pytest's fixtures; the rules it checks are the core's, and the
same service runs on PostgreSQL in the storage and service tests.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REGISTRY
from factories import (
    MONEY_KINDS,
    CharityKeys,
    donate,
    entries,
    open_books,
    open_project,
    payout,
    postings_balance,
    register,
    writes_nothing,
)
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ledger.charity.allocation import trace_fifo
from ledger.charity.audit import audit_books
from ledger.charity.money import format_amount
from ledger.errors import Conflict, NotFound, Overspend, SignatureError
from ledger.log.verify import verify_log

MAX_CHARITIES = 3
MAX_PROJECTS = 5
CURRENCIES = ("CNY", "JPY")


@dataclass
class ModelDonation:
    project: str
    amount: int
    spent: list[tuple[str, int]] = field(default_factory=list)
    refunded: int = 0


@dataclass
class ModelProject:
    charity: str
    currency: str
    closed: bool = False
    raised: int = 0
    spent: int = 0
    refunded: int = 0
    donations: int = 0
    queue: list[list] = field(default_factory=list)  # [receipt, remaining], donation order

    @property
    def balance(self) -> int:
        return sum(remaining for _, remaining in self.queue)


def decimal(minor: int, currency: str, short: bool) -> str:
    """Minor units as the decimal string an intake would send; sometimes without a trailing zero."""
    text = format_amount(minor, currency)
    if short and "." in text and text.endswith("0"):
        text = text[:-1]
    return text


index = st.integers(0, 1000)
# How to pick an amount against what is available: some of it, most of it (so a disbursement
# usually spans several donations), all of it, just over it, or anything at all.
how = st.sampled_from(["part", "most", "most", "all", "over", "random"])


class BankMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # pytest's tmp_path is shared by every example: each example gets its own database.
        self.tmp = tempfile.TemporaryDirectory(prefix="luodi-bank-")
        self.stores, self.cl = open_books(Path(self.tmp.name) / "bank.sqlite")
        self.charities: dict[str, CharityKeys] = {}
        self.projects: dict[str, ModelProject] = {}
        self.donations: dict[str, ModelDonation] = {}  # receipt -> model, in log order
        self.counts = {"entries": 1, "donation": 0, "disbursement": 0, "refund": 0}
        self.nonce = 0
        self.clean = True

    # -- helpers ---------------------------------------------------------------------

    def _project(self, i: int) -> tuple[str, ModelProject]:
        name = list(self.projects)[i % len(self.projects)]
        return name, self.projects[name]

    def _appended(self, entry, kind: str) -> None:
        assert entry.seq == self.counts["entries"]
        assert entry.kind == kind
        self.counts["entries"] += 1
        if kind in self.counts:
            self.counts[kind] += 1

    def _amount(self, choice: str, random_minor: int, available: int) -> int:
        if choice == "part" and available > 0:
            return 1 + random_minor % available
        if choice == "most" and available > 0:
            return available - random_minor % max(1, available // 3)
        if choice == "all":
            return max(available, 1)  # 1 when nothing is left: must be refused
        if choice == "over":
            return available + 1 + random_minor % 3
        return random_minor

    # -- the operations (plain methods; the rules below call them) --------------------------

    def do_register(self, keys: int, threshold: int) -> None:
        if len(self.charities) == MAX_CHARITIES:  # enough: try an id that is taken
            ck = list(self.charities.values())[keys % len(self.charities)]
            with writes_nothing(self.cl, Conflict, "already registered", exact=True):
                register(self.cl, ck.charity, keys=keys, threshold=min(threshold, keys))
            return
        name = f"charity-{len(self.charities)}"
        ck = register(self.cl, name, keys=keys, threshold=min(threshold, keys))
        self.counts["entries"] += 1
        self.charities[name] = ck

    def do_open(self, i: int, currency: str) -> None:
        ck = list(self.charities.values())[i % len(self.charities)]
        if len(self.projects) == MAX_PROJECTS:  # enough: try an id that is taken
            name, _ = self._project(i)
            with writes_nothing(self.cl, Conflict, "already exists", exact=True):
                open_project(self.cl, name, ck, currency)
            return
        name = f"project-{len(self.projects)}"
        self._appended(open_project(self.cl, name, ck, currency), "project.opened")
        self.projects[name] = ModelProject(ck.charity, currency)

    def do_donate(self, i: int, minor: int, short: bool) -> None:
        name, p = self._project(i)
        amount = decimal(minor, p.currency, short)
        if p.closed:
            event("donation to a closed project refused")
            with writes_nothing(self.cl, Conflict, "closed", exact=True):
                donate(self.cl, name, amount)
            return
        got = donate(self.cl, name, amount)
        assert not got.replayed
        self._appended(got.entry, "donation")
        assert got.entry.body["amount"] == minor and got.entry.body["currency"] == p.currency
        self.donations[got.entry.receipt] = ModelDonation(name, minor)
        p.queue.append([got.entry.receipt, minor])
        p.raised += minor
        p.donations += 1

    def do_disburse(self, i: int, choice: str, minor: int, signing: str) -> None:
        name, p = self._project(i)
        ck = self.charities[p.charity]
        amount = self._amount(choice, minor, p.balance)
        self.nonce += 1
        body = payout(name, ck, format_amount(amount, p.currency), p.currency, nonce=f"nonce-{self.nonce:06d}")
        sigs = ck.sign(body)
        others = [c for c in self.charities.values() if c.charity != ck.charity]
        bad_sig = False
        if signing == "too-few" and ck.threshold == 2:
            sigs, bad_sig = sigs[:1], True
        elif signing == "other-charity" and others:
            sigs, bad_sig = others[0].sign(body), True
        if p.closed:
            event("disbursement from a closed project refused")
            with writes_nothing(self.cl, Conflict, "closed", exact=True):
                self.cl.disburse(body, sigs)
            return
        if bad_sig:
            event(f"disbursement refused: signed by {signing}")
            with writes_nothing(self.cl, SignatureError):
                self.cl.disburse(body, sigs)
            return
        if amount > p.balance:
            event("overspending disbursement refused")
            with writes_nothing(self.cl, Overspend, "exceeds"):
                self.cl.disburse(body, sigs)
            return
        entry = self.cl.disburse(body, sigs)
        self._appended(entry, "disbursement")
        # The naive FIFO reference: oldest donation first, whatever is left in each.
        left, spanned = amount, 0
        for slot in p.queue:
            if left == 0:
                break
            take = min(slot[1], left)
            if take:
                slot[1] -= take
                left -= take
                spanned += 1
                self.donations[slot[0]].spent.append((entry.receipt, take))
        assert left == 0
        p.spent += amount
        event(f"disbursement accepted, spanning {min(spanned, 3)}{'+' if spanned >= 3 else ''} donation(s)")

    def do_refund(self, i: int, choice: str, minor: int) -> None:
        if not self.donations:  # nothing to refund: a receipt the log does not hold
            with writes_nothing(self.cl, NotFound, "no donation"):
                self.cl.refund(f"{i:064x}", "1", "no such gift")
            return
        receipt = list(self.donations)[i % len(self.donations)]
        d = self.donations[receipt]
        p = self.projects[d.project]
        slot = next(s for s in p.queue if s[0] == receipt)
        amount = self._amount(choice, minor, slot[1])
        text = format_amount(amount, p.currency)
        if amount > slot[1]:
            # Refused even when the project as a whole holds enough money.
            enough = " (the project had enough)" if amount <= p.balance else ""
            event(f"refund above the donation's unspent refused{enough}")
            with writes_nothing(self.cl, Overspend, "unspent"):
                self.cl.refund(receipt, text, "donor asked for the money back")
            return
        entry = self.cl.refund(receipt, text, "donor asked for the money back")  # closed projects too
        self._appended(entry, "refund")
        slot[1] -= amount
        d.refunded += amount
        p.refunded += amount
        event("refund accepted" + (" on a closed project" if p.closed else ""))

    def do_close(self, i: int, reason: str, twice: bool) -> None:
        name, p = self._project(i)
        if not p.closed:
            self._appended(self.cl.close_project(name, reason), "project.closed")
            p.closed = True
            if not twice:
                return
        with writes_nothing(self.cl, Conflict, "closed", exact=True):
            self.cl.close_project(name, reason)

    # -- the rules.  Donations and disbursements are what a ledger mostly sees, so they (and
    # -- refunds) appear several times to weigh more in Hypothesis' uniform choice of rule.
    # -- Hypothesis takes the rule with the fewest arguments, then the first by name, as the
    # -- simplest: hence "accept_donation_*" and three arguments for closing (a run of closes
    # -- would test little).

    @initialize(
        keys=st.integers(1, 3),
        threshold=st.integers(1, 2),
        currencies=st.lists(st.sampled_from(CURRENCIES), min_size=2, max_size=2),
    )
    def first_charity_and_projects(self, keys, threshold, currencies):
        self.clean = False
        self.do_register(keys, threshold)
        for currency in currencies:
            self.do_open(0, currency)

    @rule(keys=st.integers(1, 3), threshold=st.integers(1, 2))
    def register_charity(self, keys, threshold):
        self.clean = False
        self.do_register(keys, threshold)

    @rule(i=index, currency=st.sampled_from(CURRENCIES))
    def open_project(self, i, currency):
        self.clean = False
        self.do_open(i, currency)

    donation_args = {"i": index, "minor": st.integers(1, 200_000), "short": st.booleans()}

    @rule(**donation_args)
    def accept_donation_a(self, **kw):
        self.clean = False
        self.do_donate(**kw)

    @rule(**donation_args)
    def accept_donation_b(self, **kw):
        self.clean = False
        self.do_donate(**kw)

    @rule(**donation_args)
    def accept_donation_c(self, **kw):
        self.clean = False
        self.do_donate(**kw)

    disbursement_args = {
        "i": index,
        "choice": how,
        "minor": st.integers(1, 150_000),
        "signing": st.sampled_from(["ok", "ok", "ok", "ok", "too-few", "other-charity"]),
    }

    @rule(**disbursement_args)
    def disburse_a(self, **kw):
        self.clean = False
        self.do_disburse(**kw)

    @rule(**disbursement_args)
    def disburse_b(self, **kw):
        self.clean = False
        self.do_disburse(**kw)

    @rule(**disbursement_args)
    def disburse_c(self, **kw):
        self.clean = False
        self.do_disburse(**kw)

    refund_args = {"i": index, "choice": how, "minor": st.integers(1, 100_000)}

    @rule(**refund_args)
    def refund_a(self, **kw):
        self.clean = False
        self.do_refund(**kw)

    @rule(**refund_args)
    def refund_b(self, **kw):
        self.clean = False
        self.do_refund(**kw)

    @rule(i=index, reason=st.sampled_from(["campaign over", "target reached"]), twice=st.booleans())
    def close_project(self, i, reason, twice):
        self.clean = False
        self.do_close(i, reason, twice)

    # -- the invariants, after every step ------------------------------------------------

    @invariant()
    def books_agree_with_the_model(self):
        cl, stores = self.cl, self.stores
        assert stores.log.size() == self.counts["entries"]

        # Every project: totals as in the model, never a negative balance.
        projects = {p.project: p for p in cl.projects()}
        assert set(projects) == set(self.projects)
        for name, m in self.projects.items():
            got = cl.project(name)
            assert got == projects[name]
            assert got.balance >= 0
            assert (got.charity, got.currency, got.closed) == (m.charity, m.currency, m.closed)
            assert (got.raised, got.spent, got.refunded, got.donations) == (m.raised, m.spent, m.refunded, m.donations)
            assert got.balance == m.balance == m.raised - m.spent - m.refunded

        # Every donation: traced exactly as the naive FIFO reference says.
        for receipt, m in self.donations.items():
            t = cl.trace(receipt)
            assert t.spent_total + t.refunded + t.unspent == t.amount
            assert t.unspent >= 0
            assert (t.project, t.currency, t.amount) == (m.project, self.projects[m.project].currency, m.amount)
            assert t.spent == m.spent
            assert t.refunded == m.refunded
            slot = next(s for s in self.projects[m.project].queue if s[0] == receipt)
            assert t.unspent == slot[1]

        # Every money entry is balanced double entry, per currency.
        log = entries(stores)
        for e in log:
            if e.kind in MONEY_KINDS:
                assert set(postings_balance(e).values()) == {0}, e

        # The auditor's fold over the entries alone says the same.
        traces = trace_fifo(log)
        assert set(traces) == set(self.donations)
        for receipt, m in self.donations.items():
            assert (traces[receipt].spent, traces[receipt].refunded) == (m.spent, m.refunded)

        report = verify_log(stores.log, REGISTRY, workers=1)
        assert report.size == self.counts["entries"]
        self.clean = True

    def teardown(self):
        try:
            if self.clean:  # skip when a step already failed: its error is the one to see
                report = audit_books(self.stores)
                assert report.entries == self.counts["entries"]
                assert report.donations == self.counts["donation"] == len(self.donations)
                assert report.disbursements == self.counts["disbursement"]
                assert report.refunds == self.counts["refund"]
                assert report.projects == len(self.projects)
        finally:
            self.stores.close()
            self.tmp.cleanup()


BankMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestBank = BankMachine.TestCase
