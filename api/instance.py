"""The instance folder and the composition root: where the house is put together.

``instance/luodi.sqlite`` holds the log, its books and its tokens (the SQLite
driver, :mod:`ledger.stores.sqlite`), unless the instance names a PostgreSQL
database (``instance/database.url``, or ``LUODI_DATABASE_URL``; see
:mod:`api.database_url`): then that database holds them (the PostgreSQL
driver, :mod:`ledger.stores.postgres`).  ``instance/log.key`` holds the log's
Ed25519 signer key in Go's note format (``PRIVATE+KEY+...``), mode 0600.  The
key is created once and never overwritten, and its text is never logged.
``instance/witness-policy``, if the operator writes one, names the log's
witnesses and the quorum of their cosignatures it gathers (docs/witnessing.md).
Opening an instance wires the driver's stores into a charity ledger
(:func:`ledger.charity.service.open_charity_ledger`): the generic log, the
charity registry, and the books as the log's append hook.

The folder is private (mode 0700), as its files are (0600, see
:mod:`ledger.stores.sqlite.files`): ``init`` creates it so, or tightens an
existing folder it is asked to make an instance of; opening an instance whose
folder others may enter is refused, as a key file others may read is.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ledger.charity.books import DEFAULT_WINDOW_SECONDS
from ledger.charity.service import CharityLedger, open_charity_ledger
from ledger.charity.store import Stores
from ledger.errors import InstanceError, MalformedNote, Unavailable
from ledger.log.cosigning import log_policy
from ledger.log.keyfile import read_key_file, write_key_file
from ledger.log.ledger import Ledger
from ledger.log.note import Signer, Verifier, check_name
from ledger.log.policy import Policy
from ledger.stores.sqlite import DEFAULT_LOCK_TIMEOUT, SQLiteStores, open_sqlite, open_sqlite_copy
from ledger.stores.sqlite.files import refuse_loose_modes

from .database_url import check_url, database_url, env_url, recorded_url, redact, url_file

DB_NAME = "luodi.sqlite"
KEY_NAME = "log.key"
POLICY_NAME = "witness-policy"
DEFAULT_ORIGIN = "localhost/luodi"


@dataclass(frozen=True)
class InitResult:
    charity: CharityLedger
    created_key: bool
    migrations: list[str]
    tightened: int | None = None  # the looser mode the existing folder had, now 0700

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


def _loose(mode: int) -> bool:
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def make_private_folder(root: Path) -> int | None:
    """Create ``root`` with mode 0700, or tighten an existing folder to 0700;
    return the mode it had if that was looser."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(root.stat().st_mode)
    if not _loose(mode):
        return None
    try:
        os.chmod(root, 0o700)
    except OSError as exc:
        raise InstanceError(f"cannot make the instance folder {root} private (chmod 700): {exc.strerror}") from exc
    return mode


def refuse_loose_folder(root: Path) -> None:
    mode = stat.S_IMODE(root.stat().st_mode)
    if _loose(mode):
        raise InstanceError(f"the instance folder {root} is open to others (mode {mode:o}): chmod 700 {root}")


def load_key(path: Path) -> Signer:
    return read_key_file(path, "log key", ": run 'luodi init' first")


def init_instance(
    instance: str | Path,
    origin: str | None = None,
    signing_window: int = DEFAULT_WINDOW_SECONDS,
    database: str | None = None,
) -> InitResult:
    """Create (or bring up to date) an instance: folder, key, migrations, genesis,
    and the log's policy entry (``signing_window``, in seconds) in a new log.

    ``database``: a PostgreSQL URL to keep the log in, recorded in the folder
    (``database.url``, mode 0600); without it, ``LUODI_DATABASE_URL`` (not
    recorded), else the URL recorded before, else ``luodi.sqlite`` in the folder.

    Safe to run again: an existing key is kept, and ``origin`` must then match it.
    A log that already holds more than its genesis entry keeps its policy as it
    is (``luodi policy record`` records one in a log that has none).
    """
    root, db_path, key_path = _paths(instance)
    if origin is not None:
        try:
            check_name(origin)
        except MalformedNote as exc:
            raise InstanceError(f"origin {origin!r}: {exc.detail}") from exc
    if database is not None:
        database = check_url(database, "--database")
    recorded = recorded_url(root)
    if database is not None and recorded is not None and database != recorded:
        raise InstanceError(
            f"this instance's database is {redact(recorded)}, recorded in {url_file(root)}: "
            "an instance keeps one database (use another instance folder)"
        )
    url = database or env_url() or recorded
    if url is not None and db_path.exists():
        raise InstanceError(
            f"this instance's database is {db_path}: it cannot move to {redact(url)} (use another instance folder)"
        )
    if url is None and db_path.exists():
        refuse_loose_modes(db_path)
    created = not key_path.exists()
    if created and (url is not None or db_path.exists()):
        stores = _open(db_path, url, upgrade=True)
        has_log = stores.log.size() > 0
        stores.close()
        if has_log:
            raise InstanceError(f"{_name(db_path, url)} holds a log but its key {key_path} is missing: restore the key")
    tightened = make_private_folder(root)
    signer = create_key(key_path, origin or DEFAULT_ORIGIN) if created else load_key(key_path)
    if origin is not None and signer.name != origin:
        raise InstanceError(f"this instance's log is {signer.name!r}, not {origin!r}")
    stores = _open(db_path, url, upgrade=True)
    try:
        if database is not None and recorded is None:
            write_private_file(url_file(root), database + "\n")
        charity = open_charity_ledger(stores, signer, create=True)
        if charity.ledger.size() == 1:  # a new log (or one whose init stopped after its genesis)
            charity.record_policy(signing_window)
    except BaseException:
        stores.close()
        raise
    return InitResult(charity, created, stores.migrations_applied, tightened)


def _open(db_path: Path, url: str | None, **kwargs) -> Stores:
    """The stores of the PostgreSQL database at ``url``, else of the SQLite file ``db_path``."""
    if url is None:
        return open_sqlite(db_path, **kwargs)
    from ledger.stores.postgres import open_postgres  # only an instance that names a server needs psycopg

    return open_postgres(url, **kwargs)


def _name(db_path: Path, url: str | None) -> str:
    """The database, as messages name it: its file, or its URL without the password."""
    return str(db_path) if url is None else redact(url)


def database_name(instance: str | Path) -> str:
    """The database of the instance at ``instance``, as messages name it."""
    root, db_path, _ = _paths(instance)
    return _name(db_path, database_url(root))


def _opened(instance: str | Path, **kwargs) -> Stores:
    """The stores of an existing instance folder: its PostgreSQL database if it names
    one, else its SQLite file (whose files, like the folder, must be private)."""
    root, db_path, _ = _paths(instance)
    if not root.is_dir():
        raise InstanceError(f"no instance folder at {root}: run 'luodi init' first")
    url = database_url(root)
    if url is not None:
        refuse_loose_folder(root)
    elif db_path.exists():  # else the driver says there is no database
        refuse_loose_folder(root)
        refuse_loose_modes(db_path)
    return _open(db_path, url, **kwargs)


def open_stores(
    instance: str | Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, read_only: bool = False
) -> Stores:
    """The stores of an existing instance (for its tokens, say); see :func:`open_sqlite`."""
    return _opened(instance, lock_timeout=lock_timeout, read_only=read_only)


def open_instance(
    instance: str | Path,
    *,
    with_key: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    read_only: bool = False,
) -> CharityLedger:
    """Open an existing instance's charity ledger (read-only use needs no key).

    A write waits at most ``lock_timeout`` seconds for the write lock; with
    ``read_only`` every write is refused (:class:`ledger.errors.Unavailable`)."""
    stores = open_stores(instance, lock_timeout=lock_timeout, read_only=read_only)
    try:
        signer = load_key(_paths(instance)[2]) if with_key else None
        return open_charity_ledger(stores, signer)
    except BaseException:
        stores.close()
        raise


def open_database_copy(path: str | Path) -> SQLiteStores:
    """The stores of a database file to audit (a copy of an instance's), opened
    read-only: nothing is written to it, no migration is applied, and no key is needed."""
    return open_sqlite_copy(path)


def check_serving(instance: str | Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, read_only: bool = False) -> None:
    """Refuse, with :class:`InstanceError`, an instance that cannot be served:
    not usable, or (unless ``read_only``) not writable now."""
    try:
        cl = open_instance(instance, with_key=not read_only, lock_timeout=lock_timeout, read_only=read_only)
    except Unavailable as exc:
        raise _unservable(instance, exc, read_only) from exc
    try:
        if not read_only:
            cl.stores.db.check_writable()
    except Unavailable as exc:
        raise _unservable(instance, exc, read_only) from exc
    finally:
        cl.stores.close()


def _unservable(instance: str | Path, exc: Unavailable, read_only: bool) -> InstanceError:
    cause = exc.__cause__ or exc
    verb, advice = ("read", "fix that") if read_only else ("write", "fix that, or serve it with --read-only")
    return InstanceError(f"cannot {verb} {_described(instance)} ({cause}): {advice}")


def witness_policy(instance: str | Path, log_key: Verifier | None = None) -> Policy | None:
    """The log's witness policy, ``instance/witness-policy`` (a C2SP tlog-policy file; see
    docs/witnessing.md), or None without one; checked against ``log_key`` when given."""
    path = Path(instance) / POLICY_NAME
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstanceError(f"the witness policy {path} cannot be read: {exc.strerror}") from exc
    try:
        return log_policy(text, log_key)
    except InstanceError as exc:
        raise InstanceError(f"the witness policy {path}: {exc.detail}") from None


def witness_policy_error(instance: str | Path) -> str | None:
    """Why the instance's witness policy cannot be served (checked against its log's key), or None."""
    try:
        cl = open_instance(instance, with_key=False)
        try:
            witness_policy(instance, cl.ledger.verifier)
        finally:
            cl.stores.close()
    except InstanceError as exc:
        return exc.detail
    return None


def _described(instance: str | Path) -> str:
    return f"the database {database_name(instance)}"


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (replacing an earlier file of that name)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def upgrade_database(instance: str | Path) -> list[str]:
    """Apply the pending migrations of an existing instance's database; return their names."""
    stores = _opened(instance, upgrade=True)
    stores.close()
    return stores.migrations_applied
