"""The database's files are private: they hold the donors' personal data and
the token hashes.  They are created with mode 0600 (the database, its WAL and
shared-memory files and the append lock) and refused when others may read them,
as key files are (:mod:`ledger.log.keyfile`)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import InstanceError

_UMASK = threading.Lock()


@contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside the block get no group or other bits.  The umask
    belongs to the process, so the threads that open files here take turns."""
    with _UMASK:
        old = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(old)


def database_files(path: Path) -> list[Path]:
    """The database and the files SQLite and Luodi keep beside it."""
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", ".lock"))]


def refuse_loose_modes(path: Path) -> None:
    """Raise :class:`InstanceError` if a file of the database at ``path`` is open to others."""
    loose = []
    for f in database_files(path):
        try:
            mode = f.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            loose.append(f"{f} (mode {stat.S_IMODE(mode):o})")
    if loose:
        raise InstanceError(
            f"others may read {', '.join(loose)}, which hold private data: chmod 600 {path}*"
        )
