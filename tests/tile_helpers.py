"""Tiles for the verifiers' tests: a folder written by ``luodi tiles export`` (the real command,
in this process), and a checkpoint cosigned by test witnesses, as a log that gathered
cosignatures serves it.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from api.cli import main
from ledger.log.cosignature import Cosigner, merge_signatures
from ledger.log.note import parse_note


def export_folder(instance: Path, folder: Path) -> tuple[int, str]:
    """``luodi tiles export FOLDER --instance INSTANCE``; returns the tree size and the checkpoint."""
    done = CliRunner().invoke(main, ["tiles", "export", str(folder), "--instance", str(instance)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    note = (folder / "checkpoint").read_text(encoding="utf-8")
    return int(note.split("\n")[1]), note


def cosign(note: str, *witnesses: Cosigner, timestamp: int = 1764633600) -> str:
    """``note`` with a ``cosignature/v1`` line by each witness added."""
    text = parse_note(note).text
    return merge_signatures(note, "".join(w.cosign(text, timestamp + i) for i, w in enumerate(witnesses)))
