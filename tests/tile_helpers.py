"""Tiles for the verifiers' tests: a folder of C2SP tlog-tiles written from an instance's store,
as ``luodi tiles export`` writes it (the same :func:`ledger.log.tiles.export_tiles`), and the
checkpoint cosigned by test witnesses, as a log that gathered cosignatures serves it.
"""

from __future__ import annotations

from pathlib import Path

from api.instance import open_instance
from ledger.log.cosignature import Cosigner, merge_signatures
from ledger.log.note import parse_note
from ledger.log.tiles import export_tiles


def export_folder(instance: Path, folder: Path) -> tuple[int, str]:
    """Write every tile and bundle of the instance's latest checkpoint, and the checkpoint,
    into ``folder``; returns the tree size and the checkpoint note."""
    cl = open_instance(instance, with_key=False)
    try:
        store = cl.stores.log
        with store.snapshot():
            size, note = store.checkpoint()
            for tile, data in export_tiles(0, size, store.iter_entries, store.nodes):
                target = folder / tile.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    finally:
        cl.stores.close()
    (folder / "checkpoint").write_text(note, encoding="utf-8")
    return size, note


def cosign(note: str, *witnesses: Cosigner, timestamp: int = 1764633600) -> str:
    """``note`` with a ``cosignature/v1`` line by each witness added."""
    text = parse_note(note).text
    return merge_signatures(note, "".join(w.cosign(text, timestamp + i) for i, w in enumerate(witnesses)))
