"""The charity ledger of this process, opened on first use (after gunicorn forks its workers)."""

from __future__ import annotations

import os
import threading

from flask import Flask, current_app

from ledger.charity.service import CharityLedger
from ledger.charity.store import TokenStore
from ledger.log.ledger import Ledger

from .instance import open_instance


def init_app(app: Flask) -> None:
    app.extensions["luodi"] = {"lock": threading.Lock()}


def charity_ledger() -> CharityLedger:
    slot = current_app.extensions["luodi"]
    pid = os.getpid()
    if slot.get("pid") == pid:
        return slot["books"]
    with slot["lock"]:  # the threads of a worker share one ledger, and so its group commits
        if slot.get("pid") != pid:
            window = int(current_app.config["SIGNATURE_WINDOW_SECONDS"])
            slot.update(books=open_instance(current_app.config["INSTANCE"], window_seconds=window), pid=pid)
    return slot["books"]


def ledger() -> Ledger:
    return charity_ledger().ledger


def tokens() -> TokenStore:
    return charity_ledger().stores.tokens
