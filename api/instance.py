"""The instance folder and the composition root: where the house is put together.

``instance/luodi.sqlite`` holds the log, its books and its tokens (the SQLite
driver, :mod:`ledger.stores.sqlite`); ``instance/log.key`` holds the log's
Ed25519 signer key in Go's note format (``PRIVATE+KEY+...``), mode 0600.  The
key is created once and never overwritten, and its text is never logged.
Opening an instance wires the driver's stores into a charity ledger
(:func:`ledger.charity.service.open_charity_ledger`): the generic log, the
charity registry, and the books as the log's append hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.charity.books import DEFAULT_WINDOW_SECONDS
from ledger.charity.service import CharityLedger, open_charity_ledger
from ledger.errors import InstanceError, MalformedNote
from ledger.log.keyfile import read_key_file, write_key_file
from ledger.log.ledger import Ledger
from ledger.log.note import Signer, check_name
from ledger.stores.sqlite import SQLiteStores, open_sqlite

DB_NAME = "luodi.sqlite"
KEY_NAME = "log.key"
DEFAULT_ORIGIN = "localhost/luodi"


@dataclass(frozen=True)
class InitResult:
    charity: CharityLedger
    created_key: bool
    migrations: list[str]

    @property
    def ledger(self) -> Ledger:
        return self.charity.ledger


def _paths(instance: str | Path) -> tuple[Path, Path, Path]:
    root = Path(instance)
    return root, root / DB_NAME, root / KEY_NAME


def create_key(path: Path, origin: str) -> Signer:
    """Write a new log key with mode 0600; refuse to replace an existing file."""
    signer = Signer.generate(origin)
    write_key_file(path, signer)
    return signer


def load_key(path: Path) -> Signer:
    return read_key_file(path, "log key", ": run 'luodi init' first")


def init_instance(instance: str | Path, origin: str | None = None) -> InitResult:
    """Create (or bring up to date) an instance: folder, key, migrations, genesis.

    Safe to run again: an existing key is kept, and ``origin`` must then match it.
    """
    root, db_path, key_path = _paths(instance)
    if origin is not None:
        try:
            check_name(origin)
        except MalformedNote as exc:
            raise InstanceError(f"origin {origin!r}: {exc.detail}") from exc
    created = not key_path.exists()
    if created and db_path.exists():
        stores = open_sqlite(db_path, upgrade=True)
        has_log = stores.log.size() > 0
        stores.close()
        if has_log:
            raise InstanceError(f"{db_path} holds a log but its key {key_path} is missing: restore the key")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    signer = create_key(key_path, origin or DEFAULT_ORIGIN) if created else load_key(key_path)
    if origin is not None and signer.name != origin:
        raise InstanceError(f"this instance's log is {signer.name!r}, not {origin!r}")
    stores = open_sqlite(db_path, upgrade=True)
    try:
        charity = open_charity_ledger(stores, signer, create=True)
    except BaseException:
        stores.close()
        raise
    return InitResult(charity, created, stores.migrations_applied)


def open_stores(instance: str | Path) -> SQLiteStores:
    """The stores of an existing instance (for its tokens, say)."""
    root, db_path, _ = _paths(instance)
    if not root.is_dir():
        raise InstanceError(f"no instance folder at {root}: run 'luodi init' first")
    return open_sqlite(db_path)


def open_instance(
    instance: str | Path, *, with_key: bool = True, window_seconds: int = DEFAULT_WINDOW_SECONDS
) -> CharityLedger:
    """Open an existing instance's charity ledger (read-only use needs no key)."""
    stores = open_stores(instance)
    try:
        signer = load_key(_paths(instance)[2]) if with_key else None
        return open_charity_ledger(stores, signer, window_seconds=window_seconds)
    except BaseException:
        stores.close()
        raise


def upgrade_database(instance: str | Path) -> list[str]:
    _, db_path, _ = _paths(instance)
    if not Path(instance).is_dir():
        raise InstanceError(f"no instance folder at {instance}: run 'luodi init' first")
    stores = open_sqlite(db_path, upgrade=True)
    stores.close()
    return stores.migrations_applied
