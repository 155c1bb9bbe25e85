"""The ledger of this process, opened on first use (after gunicorn forks its workers)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import Flask, current_app

from ledger.charity import CharityLedger
from ledger.instance import DB_NAME, KEY_NAME, load_key
from ledger.log import Ledger
from ledger.storage import SQLiteStorage


def init_app(app: Flask) -> None:
    app.extensions["luodi"] = {"lock": threading.Lock()}


def charity_ledger() -> CharityLedger:
    slot = current_app.extensions["luodi"]
    pid = os.getpid()
    if slot.get("pid") == pid:
        return slot["books"]
    with slot["lock"]:  # the threads of a worker share one ledger, and so its group commits
        if slot.get("pid") != pid:
            _open(slot, pid)
    return slot["books"]


def _open(slot: dict, pid: int) -> None:
    instance = Path(current_app.config["INSTANCE"])
    storage = SQLiteStorage(instance / DB_NAME)
    ledger = Ledger(
        storage, load_key(instance / KEY_NAME), window_seconds=int(current_app.config["SIGNATURE_WINDOW_SECONDS"])
    )
    ledger.check_signer()
    slot.update(books=CharityLedger(ledger), pid=pid)


def ledger() -> Ledger:
    return charity_ledger().ledger
