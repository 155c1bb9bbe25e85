"""Helpers for the accounting tests (bank invariants, idempotency, fund tracing, audit).

Everything here talks to the ledger through its public calls
(:class:`ledger.charity.CharityLedger`, :mod:`ledger.payload`) except
:func:`books_dump`, which reads the books' tables directly so that a refusal
can be shown to leave every one of them untouched.
"""

from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger import Ledger
from ledger import payload as P
from ledger.books import BOOKS_TABLES  # every table a refusal must leave alone
from ledger.charity import CharityLedger, DonationReceipt
from ledger.entry import Entry, parse_entry
from ledger.note import Signer
from ledger.storage import SQLiteStorage

LOG_ORIGIN = "accounting.luodi.example/log"
PERIOD = ("2026-11-01", "2026-11-30")
VALUE_DATE = "2026-11-29"
MONEY_KINDS = ("donation", "disbursement", "refund")


def open_books(path: str | Path, signer: Signer | None = None, **kwargs) -> tuple[SQLiteStorage, CharityLedger]:
    """A fresh (or existing) database at ``path``: its storage and a CharityLedger over it."""
    storage = SQLiteStorage(path, upgrade=True)
    try:
        ledger = Ledger.create(storage, signer or Signer.generate(LOG_ORIGIN), **kwargs)
    except BaseException:
        storage.close()
        raise
    return storage, CharityLedger(ledger)


@dataclass
class CharityKeys:
    """A registered charity with its own signing keys."""

    charity: str
    signers: list[Signer]
    threshold: int

    @property
    def vkeys(self) -> list[str]:
        return [s.verifier.to_string() for s in self.signers]

    def sign(self, payload: dict, signers: list[Signer] | None = None) -> list[dict]:
        """Signatures by ``signers`` (default: the first ``threshold`` keys)."""
        chosen = self.signers[: self.threshold] if signers is None else signers
        return [P.sign(payload, s) for s in chosen]


def register(cl: CharityLedger, charity: str, keys: int = 2, threshold: int = 1) -> CharityKeys:
    ck = CharityKeys(charity, [Signer.generate(f"{charity}/finance-{i}") for i in range(1, keys + 1)], threshold)
    cl.register_charity(charity, f"{charity} foundation", ck.vkeys, threshold)
    return ck


def open_project(cl: CharityLedger, project: str, ck: CharityKeys, currency: str = "CNY") -> Entry:
    return cl.open_project(project, ck.charity, f"Project {project}", f"Purpose of {project}", currency)


_intake = itertools.count()


def donate(cl: CharityLedger, project: str, amount: str, intake_key: str | None = None, **kw) -> DonationReceipt:
    """Record a donation with fresh (or given) intake key; returns the receipt object."""
    key = intake_key or f"intake-{next(_intake):08d}"
    args = {
        "channel": "wechat",
        "payment_ref": f"pay-{key}",
        "donor_ref": f"donor-{key}",
        "value_date": VALUE_DATE,
    }
    args.update(kw)
    return cl.record_donation(project, amount, intake_key=key, **args)


def payout(
    project: str,
    ck: CharityKeys,
    amount: str,
    currency: str = "CNY",
    nonce: str | None = None,
    charity: str | None = None,
) -> dict:
    """A disbursement payload of one line of ``amount`` (a decimal string)."""
    return P.disbursement(
        charity=charity or ck.charity,
        project=project,
        currency=currency,
        payee="Acme Supplies Ltd.",
        purpose=f"Supplies for {project}",
        period=PERIOD,
        lines=[("supplies", amount)],
        evidence=[(hashlib.sha256(f"{project}-{amount}".encode()).hexdigest(), "invoice (PDF)")],
        nonce=nonce,
    )


def disburse(cl: CharityLedger, project: str, ck: CharityKeys, amount: str, currency: str = "CNY", **kw) -> Entry:
    body = payout(project, ck, amount, currency, **kw)
    return cl.disburse(body, ck.sign(body))


def entries(storage) -> list[Entry]:
    return [parse_entry(row[3]) for row in storage.iter_entries()]


def books_dump(storage) -> dict[str, list[tuple]]:
    """Every row of every books table, sorted: the whole derived index plus donor_private."""
    with storage.snapshot():
        return {t: sorted(storage.conn.execute(f"SELECT * FROM {t}").fetchall()) for t in BOOKS_TABLES}


@dataclass(frozen=True)
class State:
    size: int
    checkpoint: tuple[int, str] | None
    projects: tuple
    books: dict


def state(cl: CharityLedger) -> State:
    storage = cl.ledger.storage
    return State(storage.size(), storage.checkpoint(), tuple(cl.projects()), books_dump(storage))


@contextmanager
def writes_nothing(cl: CharityLedger, error: type[BaseException], match: str | None = None, exact: bool = False):
    """The block must raise ``error`` (exactly that class if ``exact``) and leave the
    log size, the latest checkpoint, every project's totals and every books table as they were."""
    before = state(cl)
    with pytest.raises(error, match=match) as info:
        yield info
    if exact:
        assert type(info.value) is error, f"expected exactly {error.__name__}, got {type(info.value).__name__}"
    after = state(cl)
    assert after.size == before.size
    assert after.checkpoint == before.checkpoint
    assert after.projects == before.projects
    assert after.books == before.books


def postings_balance(entry: Entry) -> dict[str, int]:
    totals: dict[str, int] = {}
    for p in entry.body["postings"]:
        totals[p["currency"]] = totals.get(p["currency"], 0) + p["amount"]
    return totals

