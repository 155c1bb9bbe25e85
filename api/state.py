"""The charity ledger of this process, opened on first use (after gunicorn forks its workers).

``WRITE_LOCK_TIMEOUT`` (seconds) bounds how long a write waits for the write
lock; with ``READ_ONLY`` the instance is opened without its key and every
write request is answered 503 before anything else is done."""

from __future__ import annotations

import os
import threading

from flask import Flask, current_app, g, request

from ledger.charity.service import CharityLedger
from ledger.charity.store import TokenStore
from ledger.errors import Unavailable
from ledger.log.ledger import Ledger

from .instance import open_instance

READS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    app.extensions["luodi"] = {"lock": threading.Lock()}
    app.before_request(_refuse_writes_when_read_only)


def _refuse_writes_when_read_only() -> None:
    if current_app.config["READ_ONLY"] and request.method not in READS:
        raise Unavailable("this server serves reads only (luodi serve --read-only); nothing was written")


def charity_ledger() -> CharityLedger:
    slot = current_app.extensions["luodi"]
    pid = os.getpid()
    if slot.get("pid") == pid:
        return slot["books"]
    with slot["lock"]:  # the threads of a worker share one ledger, and so its group commits
        if slot.get("pid") != pid:
            config = current_app.config
            read_only = bool(config["READ_ONLY"])
            books = open_instance(
                config["INSTANCE"],
                with_key=not read_only,
                lock_timeout=float(config["WRITE_LOCK_TIMEOUT"]),
                read_only=read_only,
            )
            if not read_only:
                books.ledger.bound_group_commit(
                    max_queue=int(config["APPEND_QUEUE"]),
                    max_wait=float(config["APPEND_WAIT"]),
                    group_wait=float(config["GROUP_WAIT_MS"]) / 1000,
                )
            slot.update(books=books, pid=pid)
    return slot["books"]


def announce_append() -> None:
    """A write blueprint's ``before_request``: this request will append, so a group
    commit being formed waits for it (up to ``GROUP_WAIT_MS``) instead of for a full
    group; :func:`append_done` (its ``teardown_request``) withdraws it."""
    if current_app.config["READ_ONLY"]:
        return
    coming = charity_ledger().ledger.coming()
    coming.__enter__()
    g.luodi_coming = coming


def append_done(_exc: BaseException | None = None) -> None:
    coming = g.pop("luodi_coming", None)
    if coming is not None:
        coming.__exit__(None, None, None)


def ledger() -> Ledger:
    return charity_ledger().ledger


def tokens() -> TokenStore:
    return charity_ledger().stores.tokens
