"""Files written atomically and durably, many at a time: what ``luodi tiles export``
writes a folder with (api/cli_tiles.py).

Each file goes to a temporary dot-file beside it, is flushed to disk (``fsync``) and
only then renamed into place, so a reader sees the whole file or none, even after a
crash.  The flushes run on a few threads at once: a journaling filesystem commits
concurrent flushes together, which a file-by-file export of thousands of tiles
would otherwise wait for one by one.  :meth:`Files.finish` returns once every
file and every rename is on disk (the folders flushed too); only then may the
export write the checkpoint that names them.
"""

from __future__ import annotations

import os
import secrets
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

FILE_MODE = 0o644  # a web server must read them
DIR_MODE = 0o755
FLUSHERS = 16
IN_FLIGHT = 64  # files written but not yet flushed and renamed, at most


def _stage(path: Path, data: bytes) -> tuple[int, Path]:
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return fd, tmp


def _commit(fd: int, tmp: Path, path: Path) -> None:
    try:
        os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    os.replace(tmp, path)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Files:
    """``with Files() as files: files.write(path, data) ...; files.finish()``."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(FLUSHERS, thread_name_prefix="flush")
        self._pending: deque[Future] = deque()
        self._folders: set[Path] = set()

    def __enter__(self) -> "Files":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._drain()
        finally:
            self._pool.shutdown(wait=True)

    def write(self, path: Path, data: bytes) -> None:
        self._folder(path.parent)
        fd, tmp = _stage(path, data)
        try:
            self._pending.append(self._pool.submit(_commit, fd, tmp, path))
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        while len(self._pending) > IN_FLIGHT:
            self._pending.popleft().result()

    def finish(self) -> None:
        """Wait until every file written, and every rename, is on disk."""
        self._drain()
        for folder in self._folders:
            fsync_dir(folder)

    def _drain(self) -> None:
        error = None
        while self._pending:
            try:
                self._pending.popleft().result()
            except BaseException as exc:  # wait for them all, then raise the first
                error = error or exc
        if error is not None:
            raise error

    def _folder(self, folder: Path) -> None:
        if folder in self._folders:
            return
        missing = []
        at = folder
        while not at.is_dir():
            missing.append(at)
            at = at.parent
        for at in reversed(missing):
            at.mkdir(exist_ok=True)
            os.chmod(at, DIR_MODE)
            self._folders.add(at.parent)  # its new entry must reach the disk too
        self._folders.add(folder)
