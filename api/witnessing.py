"""The log's witnesses at the edge: its policy, the one gatherer of an instance, what is served, the status.

- The policy is ``instance/witness-policy`` (:func:`api.instance.witness_policy`),
  read when the app is made; without it nothing here changes anything.
- One gatherer per instance folder (:class:`ledger.log.cosigning.Gatherer`).
  Every gunicorn worker calls :func:`start_gathering`; each starts a thread
  that waits for an exclusive ``flock`` on ``instance/witness.lock``, and the
  one that gets it gathers for as long as its process lives.  When that worker
  exits (a restart, a crash), the kernel releases the lock and a waiting worker
  takes over at once.  So the witnesses get one submission per interval from
  a server, not one per worker.  Several servers on one PostgreSQL database
  (each with its instance folder) run one gatherer each: tlog-witness's 409
  keeps them correct, the store keeps the first cosigned checkpoint of each
  size, and a gatherer that finds the latest checkpoint already cosigned in
  the database submits nothing.
- The gatherer writes its state to ``instance/witness-status.json``
  (atomically: a new file renamed over the old), which every worker reads for
  ``GET /v1/status``; the sizes and the delay there come from the database.
- ``WITNESS_INTERVAL`` (seconds, default 1) and ``WITNESS_TIMEOUT`` (seconds,
  default 5) are settings (``LUODI_WITNESS_INTERVAL``, or the instance's
  ``config.py``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path

from flask import Flask, current_app

from ledger.charity.receipts import Receipt
from ledger.errors import InstanceError
from ledger.log.clock import format_time, parse_time
from ledger.log.cosigning import Gatherer
from ledger.log.policy import Policy

from .instance import witness_policy as read_policy
from .state import charity_ledger, ledger
from .witness_client import HttpWitness

STATUS_NAME = "witness-status.json"
LOCK_NAME = "witness.lock"
POLICY = "luodi_witness_policy"
GATHERER = "luodi_gatherer"
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    app.extensions[POLICY] = read_policy(app.config["INSTANCE"])
    for key in ("WITNESS_INTERVAL", "WITNESS_TIMEOUT"):
        value = float(app.config[key])
        if not 0.05 <= value <= 3600:
            raise InstanceError(f"{key} must be 0.05 to 3600 seconds, not {value}")


def witness_policy() -> Policy | None:
    return current_app.extensions.get(POLICY)


def served_checkpoint() -> str:
    """What ``GET /v1/checkpoint`` serves: with witnesses, the latest cosigned checkpoint
    (the latest log-signed one until the first is cosigned); without, the latest log-signed one."""
    led = ledger()
    if witness_policy() is not None:
        found = led.store.cosigned_checkpoint()
        if found is not None:
            return found[1]
    return led.checkpoint()


def served_receipt(leaf_hash: str) -> Receipt:
    """A gift's receipt, against the latest cosigned checkpoint that covers it when the log has witnesses."""
    return charity_ledger().receipt(leaf_hash, cosigned=witness_policy() is not None)


# -- the gatherer ---------------------------------------------------------------------------


def start_gathering(app: Flask) -> threading.Thread | None:
    """In each server process: a thread that gathers once it holds the instance's
    gatherer lock (see the module's doc).  Nothing without witnesses or when read-only."""
    if app.extensions.get(POLICY) is None or app.config["READ_ONLY"]:
        return None
    t = threading.Thread(target=_gather_when_locked, args=(app,), name="witness-lock", daemon=True)
    t.start()
    return t


def _gather_when_locked(app: Flask) -> None:
    instance = Path(app.config["INSTANCE"])
    try:
        fd = os.open(instance / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process gathers; held until this one ends
    except OSError as exc:
        log.error("witness gathering is off: %s cannot be locked: %s", instance / LOCK_NAME, exc)
        return
    interval = float(app.config["WITNESS_INTERVAL"])
    while True:
        try:
            with app.app_context():
                led = charity_ledger().ledger
            policy = read_policy(instance, led.verifier)
            break
        except Exception:  # noqa: BLE001 - the database may be away for a moment: try again
            log.exception("witness gathering cannot start yet")
            time.sleep(max(interval, 1.0))
    gatherer = Gatherer(
        led, policy, HttpWitness.of, interval=interval, timeout=float(app.config["WITNESS_TIMEOUT"]),
        report=lambda status: write_status(instance / STATUS_NAME, status),
    )
    app.extensions[GATHERER] = (gatherer, fd)
    gatherer.start()


def write_status(path: Path, status: dict) -> None:
    """Replace the status file at once (mode 0600): a reader sees the old one or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**status, "pid": os.getpid()}, f)
    os.replace(tmp, path)


# -- GET /v1/status -----------------------------------------------------------------------------


def _when(unix: float | None) -> str | None:
    return None if unix is None else format_time(dt.datetime.fromtimestamp(unix, dt.timezone.utc))


def status_body() -> dict:
    """The log's size and, with witnesses, how far cosigning lags behind and why."""
    led = ledger()
    policy = witness_policy()
    with led.snapshot():
        size = led.latest_checkpoint().size
        if policy is None:
            return {"tree_size": size, "witnessing": None}
        found = led.store.cosigned_checkpoint()
        cosigned = found[0] if found else None
        oldest = led.entry(cosigned or 0) if (cosigned or 0) < size else None
    now = time.time()
    behind_seconds = max(0.0, now - parse_time(oldest.time).timestamp()) if oldest else 0.0
    gatherer = _read_status(Path(current_app.config["INSTANCE"]) / STATUS_NAME)
    known = {w["name"]: w for w in (gatherer or {}).get("witnesses", [])}
    return {
        "tree_size": size,
        "witnessing": {
            "quorum": policy.describe(),
            "policy": policy.to_text(),
            "interval_seconds": float(current_app.config["WITNESS_INTERVAL"]),
            "timeout_seconds": float(current_app.config["WITNESS_TIMEOUT"]),
            "cosigned_tree_size": cosigned,
            "behind_entries": size - (cosigned or 0),
            "behind_seconds": round(behind_seconds, 3),
            "gatherer": None if gatherer is None else {
                "pid": gatherer.get("pid"),
                "updated_at": _when(gatherer.get("updated_at")),
                "age_seconds": round(max(0.0, now - gatherer.get("updated_at", now)), 3),
                "witnessing_size": gatherer.get("witnessing_size"),
                "cosigned_by": gatherer.get("cosigned_by", []),
                "last_stored_size": gatherer.get("last_stored_size"),
                "last_stored_at": _when(gatherer.get("last_stored_at")),
                "error": gatherer.get("error"),
                "error_at": _when(gatherer.get("error_at")),
            },
            "witnesses": [_witness(w, known.get(w.name)) for w in policy.witnesses.values()],
        },
    }


def _witness(w, seen: dict | None) -> dict:
    seen = seen if seen is not None and seen.get("key") == w.verifier.to_string() else {}
    return {
        "name": w.name,
        "key": w.verifier.to_string(),
        "url": w.url,
        "size": seen.get("size"),
        "requests": seen.get("requests"),
        "last_success_at": _when(seen.get("last_success_at")),
        "last_success_size": seen.get("last_success_size"),
        "last_error": seen.get("last_error"),
        "last_error_at": _when(seen.get("last_error_at")),
    }


def _read_status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
