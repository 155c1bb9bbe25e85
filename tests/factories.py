"""Factories for the charity tests: charities with their own signing keys, projects,
donations and disbursements, a ledger set up with all of them, and the check that
a refusal wrote nothing.

Everything here talks to the ledger through its public calls
(:class:`ledger.charity.service.CharityLedger`, :mod:`ledger.charity.payload`)
except :func:`books_rows`, which reads the books' tables with a connection of
its own (sqlite3, or psycopg on PostgreSQL), so that a refusal can be shown to
leave every one of them untouched.
The fixtures built on these (``make_books``, ``make_setup``) are in ``conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from backends import open_target, target_of
from conftest import REGISTRY, FixedClock
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlite_utils.migrations import Migrations

from ledger.charity import payload as P
from ledger.charity.service import CharityLedger, DonationReceipt, open_charity_ledger
from ledger.charity.store import Stores
from ledger.log.clock import format_time
from ledger.log.entry import Entry, parse_entry
from ledger.log.ledger import Ledger
from ledger.log.note import Signer, Verifier
from ledger.stores.sqlite.books import BOOKS_TABLES  # every table a refusal must leave alone
from migrations import sqlite as sqlite_migrations

_ALL_MIGRATIONS = sqlite_migrations.load  # taken before any test patches it

LOG_ORIGIN = "accounting.luodi.example/log"
START_MS = 1_790_000_000_000  # FixedClock's default start
CHARITY = "hope-foundation"
PROJECT = "winter-relief"
OTHER_CHARITY = "river-trust"
OTHER_PROJECT = "river-clean"
PERIOD = ("2026-09-01", "2026-09-30")
PAYOUT_PERIOD = ("2026-11-01", "2026-11-30")
VALUE_DATE = "2026-11-29"
MONEY_KINDS = ("donation", "disbursement", "refund")


# -- time and keys -------------------------------------------------------------------------------


def time_at(ms: int) -> str:
    """The RFC 3339 entry time of ``ms`` milliseconds since the epoch (what FixedClock(ms) says first)."""
    return format_time(dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc))


def shifted(ms: int, seconds: float) -> str:
    return time_at(ms + round(seconds * 1000))


class FrozenClock:
    """A clock that always says ``self.ms`` (settable): every entry gets exactly that time."""

    def __init__(self, ms: int = START_MS):
        self.ms = ms

    def __call__(self) -> str:
        return time_at(self.ms)


def fixed_signer(name: str) -> Signer:
    """A signer whose key is derived from its name: the same in every process (so pytest-xdist
    workers collect the same parametrised ids) and distinct for distinct names."""
    seed = hashlib.sha256(b"luodi test key\n" + name.encode("utf-8")).digest()
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def charity_signers(charity: str, n: int, first: int = 1) -> list[Signer]:
    """Keys ``<charity>/finance-<first>`` … ``<charity>/finance-<first + n - 1>``."""
    return [fixed_signer(f"{charity}/finance-{i}") for i in range(first, first + n)]


def vkeys(signers) -> list[str]:
    return [s.verifier.to_string() for s in signers]


def alias_key(signer: Signer, name: str) -> str:
    """The same Ed25519 public key as ``signer``, written under another key name."""
    return Verifier(name, signer.verifier.public_key).to_string()


def sign_all(payload: dict, *signers: Signer) -> list[dict]:
    return [P.sign(payload, s) for s in signers]


# -- a ledger and what goes into it ----------------------------------------------------------------


def open_books(target: str | Path, signer: Signer | None = None, **kwargs) -> tuple[Stores, CharityLedger]:
    """A fresh (or existing) database at ``target`` (a SQLite path or a PostgreSQL URL):
    its stores and a CharityLedger over them."""
    stores = open_target(target, upgrade=True)
    try:
        cl = open_charity_ledger(stores, signer or Signer.generate(LOG_ORIGIN), create=True, **kwargs)
    except BaseException:
        stores.close()
        raise
    return stores, cl


@dataclass
class CharityKeys:
    """A registered charity with its own signing keys."""

    charity: str
    signers: list[Signer]
    threshold: int

    @property
    def vkeys(self) -> list[str]:
        return vkeys(self.signers)

    def sign(self, payload: dict, signers: list[Signer] | None = None) -> list[dict]:
        """Signatures by ``signers`` (default: the first ``threshold`` keys)."""
        return sign_all(payload, *(self.signers[: self.threshold] if signers is None else signers))


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
    args = {"channel": "wechat", "payment_ref": f"pay-{key}", "donor_ref": f"donor-{key}", "value_date": VALUE_DATE}
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
        period=PAYOUT_PERIOD,
        lines=[("supplies", amount)],
        evidence=[(hashlib.sha256(f"{project}-{amount}".encode()).hexdigest(), "invoice (PDF)")],
        nonce=nonce,
    )


def disburse(cl: CharityLedger, project: str, ck: CharityKeys, amount: str, currency: str = "CNY", **kw) -> Entry:
    body = payout(project, ck, amount, currency, **kw)
    return cl.disburse(body, ck.sign(body))


def entries(stores: Stores) -> list[Entry]:
    return [parse_entry(row[3], REGISTRY) for row in stores.log.iter_entries()]


# -- a charity with a project and donations ------------------------------------------------------


@dataclass
class CharitySetup:
    ledger: Ledger
    charity: CharityLedger
    keys: list[Signer]  # the charity's registered keys (3, threshold 2)
    clock: object
    start_ms: int
    charity_id: str = CHARITY
    project: str = PROJECT
    currency: str = "CNY"
    donations: list[DonationReceipt] = field(default_factory=list)

    def now(self) -> str:
        """About the time the next entry will get (FixedClock ticks 1 ms per append)."""
        return time_at(self.start_ms)

    def disbursement(self, lines=(("200 winter coats", "10.00"),), *, charity=None, project=None, **kw) -> dict:
        """A valid disbursement payload for this charity's project, signed_at the clock's time."""
        kw.setdefault("signed_at", self.now())
        kw.setdefault("payee", "Lanzhou Warm Textiles Co., Ltd.")
        kw.setdefault("purpose", "Winter coats for families in Dingxi")
        kw.setdefault("period", PERIOD)
        return P.disbursement(
            charity=charity or self.charity_id,
            project=project or self.project,
            currency=kw.pop("currency", self.currency),
            lines=list(lines),
            **kw,
        )

    def rotation(self, new_keys, threshold: int = 2, *, charity=None, **kw) -> dict:
        kw.setdefault("signed_at", self.now())
        return P.rotation(charity=charity or self.charity_id, keys=vkeys(new_keys), threshold=threshold, **kw)

    def register_other(self, charity: str = OTHER_CHARITY, project: str | None = OTHER_PROJECT, n: int = 3):
        """Register a second charity (n keys, threshold 2) and, optionally, a CNY project of its own."""
        signers = charity_signers(charity, n)
        self.charity.register_charity(charity, "River Trust", vkeys(signers), min(2, n))
        if project is not None:
            self.charity.open_project(project, charity, "Clean the river", "Clean the river banks", "CNY")
        return signers

    def donate(self, amount: str = "100.00", n: int | None = None, **kw) -> DonationReceipt:
        n = len(self.donations) if n is None else n
        kw.setdefault("channel", "wechat")
        kw.setdefault("payment_ref", f"WX-PAY-{n:08d}")
        kw.setdefault("donor_ref", f"donor-{n:04d}")
        kw.setdefault("value_date", "2026-09-21")
        kw.setdefault("intake_key", f"intake-{n:08d}")
        receipt = self.charity.record_donation(kw.pop("project", self.project), amount, **kw)
        self.donations.append(receipt)
        return receipt


def make_charity_ledger(
    make_charity,
    *,
    name: str = "charity",
    clock=None,
    donations=("100.00", "50.00", "25.00"),
    currency: str = "CNY",
    **kwargs,
) -> CharitySetup:
    """A fresh ledger (from the ``make_charity`` fixture) holding charity CHARITY (3 keys,
    threshold 2), its project PROJECT in ``currency`` and ``donations`` (decimal strings).
    The clock defaults to FixedClock(START_MS)."""
    clock = FixedClock(START_MS) if clock is None else clock
    charity = make_charity(name, clock=clock, **kwargs)
    keys = charity_signers(CHARITY, 3)
    charity.register_charity(CHARITY, "Hope Foundation", vkeys(keys), 2)
    charity.open_project(PROJECT, CHARITY, "Winter relief", "Coats and quilts for families in Gansu", currency)
    setup = CharitySetup(charity.ledger, charity, keys, clock, START_MS, currency=currency)
    for amount in donations:
        setup.donate(amount)
    return setup


# -- an older schema ------------------------------------------------------------------------------


def migrations_up_to(n: int):
    """A stand-in for ``migrations.sqlite.load``: the first ``n`` migrations only, as the
    code of that schema had them (patch it in with monkeypatch)."""

    def load() -> Migrations:
        m = Migrations("luodi")
        for migration in _ALL_MIGRATIONS()._migrations[:n]:
            m(name=migration.name)(migration.fn)
        return m

    return load


@contextmanager
def intake_keys_before_0005(monkeypatch):
    """Inside the block the SQLite books keep intake keys as the driver did before
    migration 0005: one key space for the whole instance (``intake_key, receipt``),
    and have no policy table (before migration 0006: the default window governs),
    so that today's code can fill a database whose schema predates them."""
    from ledger.stores.sqlite.books import SQLiteBooks

    def intake(self, charity, intake_key):
        row = self.conn.execute("SELECT receipt FROM intake_keys WHERE intake_key = ?", (intake_key,)).fetchone()
        return None if row is None else row[0]

    def add_intake_key(self, charity, intake_key, receipt):
        return self._insert_new("INSERT INTO intake_keys (intake_key, receipt) VALUES (?, ?)", (intake_key, receipt))

    with monkeypatch.context() as m, charity_entries_before_0007(monkeypatch):
        m.setattr(SQLiteBooks, "policy", lambda self: None)
        m.setattr(SQLiteBooks, "intake", intake)
        m.setattr(SQLiteBooks, "add_intake_key", add_intake_key)
        yield


@contextmanager
def charity_entries_before_0007(monkeypatch):
    """Inside the block the SQLite books keep no ``charity_entries`` index, as the driver
    did before migration 0007 (which back-fills it from the log)."""
    from ledger.stores.sqlite.books import SQLiteBooks

    with monkeypatch.context() as m:
        m.setattr(SQLiteBooks, "add_charity_entry", lambda self, charity, seq: None)
        yield


# -- what a refusal must leave alone -------------------------------------------------------------


def _log_store(target):
    """The log store of a Ledger, a CharityLedger or a Stores."""
    return target.log if isinstance(target, Stores) else getattr(target, "ledger", target).store


def books_rows(target) -> dict[str, list[tuple]]:
    """Every committed row of every books table, sorted (the whole derived index plus
    donor_private), read with a connection of its own."""
    where = target_of(target)
    if isinstance(where, str):
        return _postgres_books_rows(where)
    with closing(sqlite3.connect(where)) as conn:
        # (a database at an older migration lacks the later tables)
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in BOOKS_TABLES if t in present}  # noqa: S608


def _postgres_books_rows(url: str) -> dict[str, list[tuple]]:
    import psycopg

    try:  # the driver's own list, if it keeps one
        from ledger.stores.postgres.books import BOOKS_TABLES as tables
    except ImportError:
        tables = BOOKS_TABLES
    with closing(psycopg.connect(url, autocommit=True)) as conn:
        present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        rows = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables if t in present}  # noqa: S608
    # A check of nothing would pass whatever a refusal wrote.
    assert {"books_state", "donations", "projects", "donor_private"} <= rows.keys(), (url, sorted(present))
    return rows


@dataclass(frozen=True)
class State:
    size: int
    checkpoint: tuple[int, str] | None
    projects: tuple | None  # every project's totals, as a CharityLedger answers them
    books: dict


def state(target) -> State:
    """The log size, the latest checkpoint, the projects and every books row of a Ledger or CharityLedger."""
    store = _log_store(target)
    projects = tuple(target.projects()) if isinstance(target, CharityLedger) else None
    return State(store.size(), store.checkpoint(), projects, books_rows(target))


@contextmanager
def writes_nothing(target, error: type[BaseException] | None = None, match: str | None = None, exact: bool = False):
    """The block leaves the log size, the latest checkpoint and every books table of
    ``target`` (a Ledger or CharityLedger) as they were.

    With ``error``, the block must also raise it (exactly that class if ``exact``),
    and the context yields pytest's ``ExceptionInfo``; without, use it beside
    ``pytest.raises``: ``with writes_nothing(ledger), pytest.raises(...):``."""
    before = state(target)
    if error is None:
        yield None
    else:
        with pytest.raises(error, match=match) as info:
            yield info
        if exact:
            assert type(info.value) is error, f"expected exactly {error.__name__}, got {type(info.value).__name__}"
    after = state(target)
    assert after.size == before.size, "a refusal changed the log size"
    assert after.checkpoint == before.checkpoint, "a refusal wrote a checkpoint"
    assert after.projects == before.projects, "a refusal changed a project's totals"
    assert after.books == before.books, "a refusal changed the books"


def postings_balance(entry: Entry) -> dict[str, int]:
    totals: dict[str, int] = {}
    for p in entry.body["postings"]:
        totals[p["currency"]] = totals.get(p["currency"], 0) + p["amount"]
    return totals
