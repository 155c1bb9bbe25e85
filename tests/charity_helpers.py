"""Shared factories for the charity tests: a ledger with a registered charity,
a project and donations, charity signing keys, and a "writes nothing" check.

Import from test files with ``from charity_helpers import ...`` (``tests/`` is
on ``sys.path`` the same way ``conftest`` is).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field

from conftest import FixedClock
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger
from ledger import payload as payload_mod
from ledger.books import BOOKS_TABLES  # every table a refusal must leave alone
from ledger.charity import CharityLedger, DonationReceipt
from ledger.entry import format_time
from ledger.note import Signer, Verifier

START_MS = 1_790_000_000_000  # FixedClock's default start
CHARITY = "hope-foundation"
PROJECT = "winter-relief"
OTHER_CHARITY = "river-trust"
OTHER_PROJECT = "river-clean"
PERIOD = ("2026-09-01", "2026-09-30")


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
    return [payload_mod.sign(payload, s) for s in signers]


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
        return payload_mod.disbursement(
            charity=charity or self.charity_id,
            project=project or self.project,
            currency=kw.pop("currency", self.currency),
            lines=list(lines),
            **kw,
        )

    def rotation(self, new_keys, threshold: int = 2, *, charity=None, **kw) -> dict:
        kw.setdefault("signed_at", self.now())
        return payload_mod.rotation(charity=charity or self.charity_id, keys=vkeys(new_keys), threshold=threshold, **kw)

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
    make_ledger,
    *,
    name: str = "charity",
    clock=None,
    donations=("100.00", "50.00", "25.00"),
    currency: str = "CNY",
) -> CharitySetup:
    """A fresh ledger holding charity CHARITY (3 keys, threshold 2), its project PROJECT in
    ``currency`` and ``donations`` (decimal strings).  The clock defaults to FixedClock(START_MS)."""
    clock = FixedClock(START_MS) if clock is None else clock
    ledger = make_ledger(name, clock=clock)
    charity = CharityLedger(ledger)
    keys = charity_signers(CHARITY, 3)
    charity.register_charity(CHARITY, "Hope Foundation", vkeys(keys), 2)
    charity.open_project(PROJECT, CHARITY, "Winter relief", "Coats and quilts for families in Gansu", currency)
    setup = CharitySetup(ledger, charity, keys, clock, START_MS, currency=currency)
    for amount in donations:
        setup.donate(amount)
    return setup


def books_rows(ledger: Ledger) -> dict[str, list[tuple]]:
    conn = ledger.storage.conn
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in BOOKS_TABLES}  # noqa: S608


def state(ledger: Ledger) -> tuple:
    """What a refusal must leave unchanged: the size, the latest checkpoint and every books row."""
    return ledger.size(), ledger.checkpoint(), books_rows(ledger)


@contextmanager
def writes_nothing(ledger: Ledger):
    """``with writes_nothing(ledger), pytest.raises(...):`` asserts the refusal wrote nothing."""
    before = state(ledger)
    yield
    after = state(ledger)
    assert after[0] == before[0], "a refusal changed the log size"
    assert after[1] == before[1], "a refusal wrote a checkpoint"
    assert after[2] == before[2], "a refusal changed the books"
