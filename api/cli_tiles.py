"""``luodi tiles export DIR``: the log as C2SP tlog-tiles files (https://c2sp.org/tlog-tiles),
for any static web host, or object storage behind a CDN (docs/tiles.md).

Incremental: the folder's own ``checkpoint``, verified with the log key, says
which tree size was exported last, and only the tiles and entry bundles that
the tree has gained since are written (:func:`ledger.log.tiles.tiles_between`).
Every file is written atomically (a temporary file, flushed to disk, renamed
into place), mode 0644, and the checkpoint last, once every tile it needs is
on disk: a reader never sees a checkpoint whose tiles are missing.

Then the partial tiles and bundles that a full one has superseded in this
export are deleted (tlog-tiles, *Partial Tiles*: a log MAY delete them once
the full tile is available), but for the one the previous checkpoint named,
kept for readers that still hold it; a reader of an older one reads the full
tile instead.  A partial tile whose full tile does not exist yet is never deleted.

Exit 0 when exported; 2 for a refusal: a folder holding another log's checkpoint,
or one that is not a prefix of this log (a fork, or a bigger tree), or a log
holding an entry over 65,535 bytes (which no entry bundle can carry).  One
exporter at a time per folder.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import click

from ledger.errors import InvalidInput, LuodiError, VerificationFailed
from ledger.log.checkpoint import open_checkpoint
from ledger.log.ledger import Ledger
from ledger.log.tiles import TILE_WIDTH, export_tiles, tile_width, tiles_between

from . import instance as inst

CHECKPOINT = "checkpoint"
FILE_MODE = 0o644
DIR_MODE = 0o755


class _Failed(click.ClickException):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code


@dataclass(frozen=True)
class Exported:
    old_size: int
    new_size: int
    files: int  # tiles, bundles and the checkpoint written
    bytes: int
    deleted: int  # superseded partial tiles and bundles removed


def _write(path: Path, data: bytes, made: set[Path]) -> None:
    """``data`` at ``path``, atomically and durably: a temporary file beside it, flushed, renamed."""
    folder = path.parent
    if folder not in made:
        _folders(folder, made)
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask: a web server must read it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)


def _folders(folder: Path, made: set[Path]) -> None:
    missing = []
    at = folder
    while not at.is_dir():
        missing.append(at)
        at = at.parent
    for at in reversed(missing):
        at.mkdir(exist_ok=True)
        os.chmod(at, DIR_MODE)
    made.add(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exported_size(ledger: Ledger, folder: Path) -> int:
    """The tree size of the folder's checkpoint (0 without one), after checking that it is
    this log's (its key's signature, its origin) and a prefix of this log (same root)."""
    path = folder / CHECKPOINT
    try:
        note = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} cannot be read: {exc}") from None
    try:
        cp = open_checkpoint(note, ledger.verifier, ledger.origin)
    except LuodiError as exc:
        detail = f"{path} is not a checkpoint of this log ({exc.detail}): refusing to export over it"
        raise InvalidInput(detail) from None
    size = ledger.size()
    if cp.size > size:
        raise InvalidInput(f"{path} is at tree size {cp.size}, beyond this log's {size}: not a prefix of this log")
    if not hmac.compare_digest(cp.root, ledger.root(cp.size)):
        raise InvalidInput(
            f"{path} has another root at tree size {cp.size} than this log: a fork; refusing to export over it"
        )
    return cp.size


def export_folder(ledger: Ledger, folder: Path) -> Exported:
    """Bring ``folder`` up to the log's latest checkpoint (see the module's docstring)."""
    note = ledger.checkpoint()
    new = open_checkpoint(note, ledger.verifier, ledger.origin).size
    old = exported_size(ledger, folder)
    if old > new:  # the log grew past the folder's size between the two reads: export again
        raise InvalidInput(f"the log's checkpoint ({new}) is older than the folder's ({old}); run it again")
    made: set[Path] = set()
    files = nbytes = 0
    with ledger.snapshot(streaming=True):
        for tile, data in export_tiles(old, new, ledger.store.iter_entries, ledger.store.nodes):
            _write(folder / tile.path, data, made)
            files, nbytes = files + 1, nbytes + len(data)
    for at in made:  # the renames are durable before the checkpoint that needs them
        _fsync_dir(at)
    if (folder / CHECKPOINT).is_file() and (folder / CHECKPOINT).read_bytes() == note.encode():
        return Exported(old, new, files, nbytes, 0)
    _write(folder / CHECKPOINT, note.encode(), made)
    _fsync_dir(folder)
    return Exported(old, new, files + 1, nbytes + len(note.encode()), _drop_superseded(folder, old, new))


def _drop_superseded(folder: Path, old: int, new: int) -> int:
    """Delete the partial tiles and bundles of the tiles that became full in this export,
    but for the width the previous checkpoint (``old``) named."""
    deleted = 0
    for tile in tiles_between(old, new):
        if tile.width != TILE_WIDTH:
            continue
        partials = folder / f"{tile.path}.p"
        if not partials.is_dir():
            continue
        keep = str(tile_width(tile.level, tile.index, old))
        for path in partials.iterdir():
            if path.name != keep and not path.name.startswith("."):
                path.unlink()
                deleted += 1
    return deleted


@click.group()
def tiles():
    """Serve the log as C2SP tlog-tiles from any static web host (docs/tiles.md)."""


@tiles.command("export")
@click.option(
    "--instance", envvar="LUODI_INSTANCE", default="instance", show_default=True,
    type=click.Path(file_okay=False), help="The instance folder (database and log key).",
)
@click.argument("folder", type=click.Path(file_okay=False))
def export(instance, folder):
    """Write the log's tiles, entry bundles and checkpoint to FOLDER, only what changed
    since the folder's own checkpoint; the checkpoint last."""
    try:
        cl = inst.open_instance(instance, with_key=False)
        try:
            done = export_folder(cl.ledger, Path(folder))
        finally:
            cl.stores.close()
    except VerificationFailed as exc:
        raise _Failed(exc.detail, 1) from None
    except LuodiError as exc:
        raise _Failed(exc.detail, 2) from None
    except OSError as exc:
        raise _Failed(f"{folder}: {exc.strerror or exc}", 2) from None
    click.echo(
        f"exported tree size {done.new_size} (the folder held {done.old_size}): {done.files} files, "
        f"{done.bytes:,} bytes written, {done.deleted} superseded partial tiles deleted"
    )
