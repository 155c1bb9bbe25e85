"""The instance folder: the database and the log's signing key.

``instance/luodi.sqlite`` holds the log; ``instance/log.key`` holds the log's
Ed25519 signer key in Go's note format (``PRIVATE+KEY+...``), mode 0600.  The
key is created once and never overwritten, and its text is never logged.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import InstanceError, MalformedNote
from .log import Ledger
from .note import Signer, check_name
from .storage import SQLiteStorage

DB_NAME = "luodi.sqlite"
KEY_NAME = "log.key"
DEFAULT_ORIGIN = "localhost/luodi"


@dataclass(frozen=True)
class InitResult:
    ledger: Ledger
    created_key: bool
    migrations: list[str]


def _paths(instance: str | Path) -> tuple[Path, Path, Path]:
    root = Path(instance)
    return root, root / DB_NAME, root / KEY_NAME


def create_key(path: Path, origin: str) -> Signer:
    """Write a new signer key with mode 0600; refuse to replace an existing file."""
    signer = Signer.generate(origin)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InstanceError(f"{path} already exists; keys are never overwritten") from exc
    with os.fdopen(fd, "w") as f:
        f.write(signer.to_string() + "\n")
    return signer


def load_key(path: Path) -> Signer:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise InstanceError(f"no log key at {path}: run 'luodi init' first") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InstanceError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    try:
        return Signer.from_string(path.read_text())
    except MalformedNote as exc:
        raise InstanceError(f"{path} does not hold a valid signer key: {exc.detail}") from exc


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
        storage = SQLiteStorage(db_path, upgrade=True)
        has_log = storage.size() > 0
        storage.close()
        if has_log:
            raise InstanceError(f"{db_path} holds a log but its key {key_path} is missing: restore the key")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    signer = create_key(key_path, origin or DEFAULT_ORIGIN) if created else load_key(key_path)
    if origin is not None and signer.name != origin:
        raise InstanceError(f"this instance's log is {signer.name!r}, not {origin!r}")
    storage = SQLiteStorage(db_path, upgrade=True)
    try:
        ledger = Ledger.create(storage, signer)
    except BaseException:
        storage.close()
        raise
    return InitResult(ledger, created, storage.migrations_applied)


def open_ledger(instance: str | Path, *, with_key: bool = True) -> Ledger:
    """Open an existing instance's ledger (read-only use needs no key)."""
    root, db_path, key_path = _paths(instance)
    if not root.is_dir():
        raise InstanceError(f"no instance folder at {root}: run 'luodi init' first")
    storage = SQLiteStorage(db_path)
    signer = load_key(key_path) if with_key else None
    ledger = Ledger(storage, signer)
    ledger.check_signer()
    return ledger


def upgrade_database(instance: str | Path) -> list[str]:
    _, db_path, _ = _paths(instance)
    if not Path(instance).is_dir():
        raise InstanceError(f"no instance folder at {instance}: run 'luodi init' first")
    storage = SQLiteStorage(db_path, upgrade=True)
    storage.close()
    return storage.migrations_applied
