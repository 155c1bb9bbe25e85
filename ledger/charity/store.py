"""The charity personality's storage protocols: the books store and the token store.

The books are an index derived from the log (charities and their keys,
projects and their totals, donations and what spent them, used nonces and
intake keys (both per charity), each project's entries, each charity's
registration and key rotations), plus one table that is not derived:
``donor_private``, what the intake sent about a donor and the receipt salt,
which can be erased without touching the chain.

- :class:`BooksView` is what the rules (:mod:`ledger.charity.books`) and the
  service read and write.  A driver hands one out bound to the log's append
  transaction (:meth:`BooksStore.in_transaction`), so an entry and its index
  rows commit or roll back together, and one for reads
  (:meth:`BooksStore.view`), which inside the log store's ``snapshot()`` sees
  the same state as the log.
- :class:`TokenStore` keeps bearer-token hashes, in transactions of its own.

Receipts and keys are ``bytes`` here (a leaf hash, a raw Ed25519 public key).
:data:`DERIVED` names the rows of every derived table, as
:meth:`BooksView.derived` returns them; an auditor compares them with its own
replay (:mod:`ledger.charity.audit`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from ..log.store import LogStore, LogTxn

# Every derived table, with the fields of its rows, key fields first.
DERIVED: dict[str, tuple[str, ...]] = {
    "charities": ("charity", "name", "keys", "threshold", "seq"),
    "charity_keys": ("public_key", "charity"),
    "projects": ("project", "charity", "currency", "seq", "closed_seq", "raised", "spent", "refunded", "donations"),
    "donations": ("receipt", "seq", "project", "amount", "spent", "refunded"),
    "allocations": ("donation", "disbursement", "amount", "seq"),
    "nonces": ("charity", "nonce"),
    "intake_keys": ("charity", "intake_key", "receipt"),
    "project_entries": ("project", "seq"),
    "policy": ("signing_window_seconds", "seq"),
    "charity_entries": ("charity", "seq"),
}

# The key columns of each derived table, in the order :meth:`BooksView.derived` sorts by.
DERIVED_ORDER: dict[str, str] = {
    "charities": "charity",
    "charity_keys": "public_key",
    "projects": "project",
    "donations": "receipt",
    "allocations": "donation, disbursement",
    "nonces": "charity, nonce",
    "intake_keys": "charity, intake_key",
    "project_entries": "project, seq",
    "policy": "seq",
    "charity_entries": "charity, seq",
}


@dataclass(frozen=True)
class Charity:
    charity: str
    name: str
    keys: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class Project:
    project: str
    charity: str
    currency: str
    seq: int
    closed: bool
    raised: int
    spent: int
    refunded: int
    donations: int

    @property
    def balance(self) -> int:
        return self.raised - self.spent - self.refunded


@dataclass(frozen=True)
class Policy:
    """The log's policy parameters, as its ``policy.recorded`` entry (at ``seq``) set them."""

    signing_window_seconds: int
    seq: int


@dataclass(frozen=True)
class Donation:
    receipt: str
    seq: int
    project: str
    amount: int
    spent: int
    refunded: int
    currency: str

    @property
    def unspent(self) -> int:
        return self.amount - self.spent - self.refunded


class BooksView(ABC):
    # -- how far the books follow the log -------------------------------------------

    @abstractmethod
    def applied(self) -> int:
        """The last seq the books have applied (-1 for none)."""

    @abstractmethod
    def mark_applied(self, seq: int) -> None: ...

    # -- reads -------------------------------------------------------------------------

    @abstractmethod
    def charity(self, charity: str) -> Charity | None: ...

    @abstractmethod
    def owner_of(self, public_key: bytes) -> str | None:
        """The charity a key is registered to (keys stay claimed after a rotation)."""

    @abstractmethod
    def project(self, project: str) -> Project | None: ...

    @abstractmethod
    def projects(self) -> list[Project]:
        """Every project, in the order they were opened."""

    @abstractmethod
    def donation(self, receipt: bytes) -> Donation | None: ...

    @abstractmethod
    def allocations_of(self, receipt: bytes) -> list[tuple[str, int]]:
        """(disbursement receipt, amount) that spent this donation, in log order."""

    @abstractmethod
    def project_seqs(self, project: str, start: int, limit: int) -> list[int]: ...

    @abstractmethod
    def charity_seqs(self, charity: str) -> list[int]:
        """The seqs of a charity's registration and key rotations, ascending: the
        entries that say which keys may sign for it (a receipt carries them)."""

    @abstractmethod
    def intake(self, charity: str, intake_key: str) -> bytes | None:
        """The receipt of the donation recorded with this intake key for a project of
        ``charity`` (intake keys are scoped per charity)."""

    @abstractmethod
    def unspent(self, project: str) -> Iterator[tuple[bytes, int]]:
        """(receipt, unspent) of the project's donations that hold money, oldest first."""

    @abstractmethod
    def private(self, receipt: bytes) -> tuple[bytes, bytes, str | None] | None:
        """(salt, request fingerprint, personal data as JSON text) of a donation."""

    @abstractmethod
    def privates(self) -> Iterator[tuple[bytes, bytes, bytes, str | None]]:
        """Every donation's private row, as (receipt, salt, fingerprint, personal), by receipt
        (to move an instance to another database: these rows are not derived from the log)."""

    @abstractmethod
    def policy(self) -> Policy | None:
        """The policy the log recorded, or None before its ``policy.recorded`` entry."""

    @abstractmethod
    def derived(self, table: str) -> list[tuple]:
        """Every row of a derived table (:data:`DERIVED`), sorted."""

    # -- writes (inside an append) -------------------------------------------------------

    @abstractmethod
    def add_charity(self, charity: str, name: str, keys: list[str], threshold: int, seq: int) -> None: ...

    @abstractmethod
    def set_keys(self, charity: str, keys: list[str], threshold: int) -> None: ...

    @abstractmethod
    def claim_key(self, public_key: bytes, charity: str) -> None:
        """Register a key to a charity (a key already its own is left as it is)."""

    @abstractmethod
    def use_nonce(self, charity: str, nonce: str) -> bool:
        """Record a nonce; False if the charity has used it before."""

    @abstractmethod
    def add_project(self, project: str, charity: str, currency: str, seq: int) -> None: ...

    @abstractmethod
    def close_project(self, project: str, seq: int) -> None: ...

    @abstractmethod
    def add_intake_key(self, charity: str, intake_key: str, receipt: bytes) -> bool:
        """Record an intake key of ``charity``; False if the charity used it before."""

    @abstractmethod
    def add_donation(self, receipt: bytes, seq: int, project: str, amount: int) -> None:
        """Record a donation and add it to its project's raised total and count."""

    @abstractmethod
    def spend(self, donation: bytes, disbursement: bytes, amount: int, seq: int) -> None:
        """Allocate ``amount`` of a donation to a disbursement."""

    @abstractmethod
    def add_spent(self, project: str, amount: int) -> None: ...

    @abstractmethod
    def refund(self, donation: bytes, project: str, amount: int) -> None: ...

    @abstractmethod
    def add_project_entry(self, project: str, seq: int) -> None: ...

    @abstractmethod
    def set_policy(self, signing_window_seconds: int, seq: int) -> None: ...

    @abstractmethod
    def add_charity_entry(self, charity: str, seq: int) -> None: ...

    @abstractmethod
    def put_private(self, receipt: bytes, salt: bytes, fingerprint: bytes, personal: str | None) -> None: ...

    # -- many at once (a batch intake): a driver may override each with fewer statements --

    def intakes(self, charity: str, intake_keys: list[str]) -> dict[str, bytes]:
        """:meth:`intake` of many keys of ``charity``: the receipt of each key it has used."""
        found = {}
        for key in intake_keys:
            receipt = self.intake(charity, key)
            if receipt is not None:
                found[key] = receipt
        return found

    def add_donations(self, rows: list[tuple[str, str, bytes, int, str, int]]) -> None:
        """:meth:`add_intake_key` and :meth:`add_donation` of many donations, as
        ``(charity, intake key, receipt, seq, project, amount)``.  The caller has
        checked that every key is new (:meth:`intakes`) and appears once."""
        for charity, intake_key, receipt, seq, project, amount in rows:
            if not self.add_intake_key(charity, intake_key, receipt):
                raise ValueError(f"intake key {intake_key!r} of charity {charity} is taken: check intakes() first")
            self.add_donation(receipt, seq, project, amount)

    def add_project_entries(self, rows: list[tuple[str, int]]) -> None:
        """:meth:`add_project_entry` of many ``(project, seq)``."""
        for project, seq in rows:
            self.add_project_entry(project, seq)

    def put_privates(self, rows: list[tuple[bytes, bytes, bytes, str | None]]) -> None:
        """:meth:`put_private` of many ``(receipt, salt, fingerprint, personal)``."""
        for row in rows:
            self.put_private(*row)


class BooksStore(ABC):
    @abstractmethod
    def view(self) -> BooksView:
        """The committed books, for reads (consistent with the log inside its snapshot)."""

    @abstractmethod
    def in_transaction(self, txn: LogTxn) -> BooksView:
        """The books inside the log's open append transaction ``txn`` (of the same driver)."""

    @abstractmethod
    def erase_private(self, receipt: bytes) -> bool:
        """Delete a donation's private row, in a transaction of its own, and make
        it unrecoverable from the files; False if there was none."""


class TokenStore(ABC):
    """Bearer tokens, kept only as hashes."""

    @abstractmethod
    def add(self, token_hash: bytes, role: str, charity: str | None, created: str, rate: str | None = None) -> None: ...

    @abstractmethod
    def get(self, token_hash: bytes) -> tuple[bytes, str, str | None, str | None] | None:
        """(hash, role, charity, rate) of a token, looked up by its hash."""

    @abstractmethod
    def all(self) -> list[tuple[bytes, str, str | None, str, str | None]]:
        """Every token as (hash, role, charity, created, rate), oldest first."""

    @abstractmethod
    def remove(self, token_hash: bytes) -> bool:
        """Delete a token (revocation); False if there was none."""


@dataclass
class Stores:
    """One driver's stores for a charity ledger."""

    log: LogStore
    books: BooksStore
    tokens: TokenStore

    def close(self) -> None:
        self.log.close()
