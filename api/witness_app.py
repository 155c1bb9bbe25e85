"""The witness's HTTP edge (C2SP tlog-witness, https://c2sp.org/tlog-witness), served
by ``luodi witness serve`` under gunicorn with Luodi's worker (:mod:`api.worker`).

- ``POST /add-checkpoint``: the request body, as sent, goes to
  :meth:`ledger.log.witness.Witness.add_checkpoint`.  200 answers the
  cosignature line (``text/plain; charset=utf-8``), after the checkpoint is
  persisted; 409 answers the size the witness holds, ``"<size>\\n"`` as
  ``text/x.tlog.size``, as the spec requires.  The spec asks only for the
  status of its other refusals (400, 403, 404, 422): they are RFC 9457
  problem+json, like every error of Luodi's API, with a ``detail`` saying
  which check failed.  A body over :data:`MAX_BODY` bytes is a 413: the
  largest request the spec allows (63 proof lines and a checkpoint) is far
  smaller than any checkpoint a log would sign.
- ``GET /<origin hash>/checkpoint`` (tlog-witness, "Monitor Retrieval
  Mechanism"): the latest checkpoint the witness cosigned for the log whose
  origin's SHA-256 is that lowercase hex, with the log signatures it
  verified and its cosignature; 404 if it never cosigned one.  It is the
  committed state at once (no delay).

The submission and monitoring prefixes are both the server's root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ledger.errors import LuodiError, SizeMismatch, Unavailable, UnknownLog
from ledger.log.add_checkpoint import SIZE_CONTENT_TYPE, format_size
from ledger.log.cosignature import Cosigner
from ledger.log.note import Verifier
from ledger.log.witness import Witness
from ledger.stores.sqlite.witness import SQLiteWitnessStore

from .problems import LuodiFlask, log_failure, problem, request_id
from .server import Server

MAX_BODY = 64 * 1024
TEXT = "text/plain; charset=utf-8"
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")


def create_witness_app(witness: Witness) -> Flask:
    """The witness's Flask app (see the module)."""
    app = LuodiFlask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, CLIENT_TIMEOUT_SECONDS=10)
    app.extensions["witness"] = witness

    @app.post("/add-checkpoint")
    def add_checkpoint():
        return Response(witness.add_checkpoint(request.get_data(cache=False)), 200, content_type=TEXT)

    @app.get("/<origin_hash>/checkpoint")
    def checkpoint(origin_hash: str):
        if not _ORIGIN_HASH.fullmatch(origin_hash):
            raise UnknownLog("a log is named by the SHA-256 of its origin, 64 lowercase hex digits")
        return Response(witness.checkpoint(origin_hash), 200, content_type=TEXT, headers={"Cache-Control": "no-cache"})

    app.register_error_handler(SizeMismatch, _size_mismatch)
    app.register_error_handler(LuodiError, _refused)
    app.register_error_handler(HTTPException, _http_error)
    app.after_request(_tag)
    return app


def _size_mismatch(error: SizeMismatch) -> Response:
    """tlog-witness: 409, and the body is the size the witness holds and a newline."""
    return Response(format_size(error.size), 409, content_type=SIZE_CONTENT_TYPE)


def _refused(error: LuodiError) -> Response:
    if error.status >= 500:
        log_failure((type(error), error, error.__traceback__))
    resp = problem(error.status, error.slug, error.title, error.detail, **error.extra)
    if isinstance(error, Unavailable) and error.retry_after is not None:
        resp.headers["Retry-After"] = str(error.retry_after)
    return resp


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    detail = error.description or error.name
    if status == 413:
        detail = f"the request body is larger than {MAX_BODY} bytes"
    elif status == 404:
        detail = f"nothing at {request.path}: a witness serves POST /add-checkpoint and GET /<origin hash>/checkpoint"
    elif status >= 500:
        detail = f"the witness failed; its operator can find request {request_id()} in its log"
    slug = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(status, "http-error")
    resp = problem(status, slug, error.name, detail)
    if status == 405 and getattr(error, "valid_methods", None):
        resp.headers["Allow"] = ", ".join(error.valid_methods)
    return resp


def _tag(resp: Response) -> Response:
    resp.headers["X-Request-Id"] = request_id()
    return resp


@dataclass(frozen=True)
class WitnessSettings:
    """What ``luodi witness serve`` gives each worker: the witness's key, the logs
    it follows (origin -> their keys), its database and its write lock timeout."""

    cosigner: Cosigner
    logs: dict[str, tuple[Verifier, ...]]
    db: Path
    lock_timeout: float


def open_witness(settings: WitnessSettings) -> Witness:
    store = SQLiteWitnessStore(settings.db, lock_timeout=settings.lock_timeout)
    return Witness(settings.cosigner, settings.logs, store)


class WitnessServer(Server):
    """gunicorn serving the witness app: each worker opens the database after the fork."""

    def __init__(self, settings: WitnessSettings, host: str, port: int, workers: int, threads: int, *, access_log=False):
        self.settings = settings
        super().__init__(str(settings.db), host, port, workers, threads, access_log=access_log)

    def load(self):
        return create_witness_app(open_witness(self.settings))
