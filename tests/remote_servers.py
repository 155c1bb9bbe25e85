"""A real HTTP server for remote-audit tests: the real Flask app of a real instance,
served by werkzeug in a thread, behind a WSGI layer that can tamper with answers.

``Served.tamper(path, fn)`` rewrites the body of every answer to ``path`` (a
prefix) with ``fn(body, query) -> bytes``; the server, its storage and the
client are all real.
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import WSGIRequestHandler, make_server

from api.cli import main
from api.instance import open_instance
from api_helpers import PROJECT, ApiFactory
from factories import CHARITY, PERIOD
from ledger.charity import payload as P
from ledger.log.keyfile import read_key_file

HOST = "127.0.0.1"


class _Quiet(WSGIRequestHandler):
    def log(self, *args, **kwargs) -> None:  # an audit makes hundreds of requests
        pass


class Tamper:
    """WSGI middleware: the app's answers, rewritten by the rules whose path prefix matches."""

    def __init__(self, app):
        self.app = app
        self.rules: list[tuple[str, object]] = []

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        rules = [fn for prefix, fn in self.rules if path.startswith(prefix)]
        if not rules:
            return self.app(environ, start_response)
        seen = {}

        def capture(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, headers
            return lambda data: None

        answer = self.app(environ, capture)
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        for fn in rules:
            body = fn(body, query)
        headers = [(k, v) for k, v in seen["headers"] if k.lower() not in ("content-length", "etag")]
        start_response(seen["status"], headers + [("Content-Length", str(len(body)))])
        return [body]


@dataclass
class Served:
    path: Path
    app: object
    url: str
    log_key: str
    known: dict = field(default_factory=dict)
    tamperer: Tamper | None = None

    def tamper(self, prefix: str, fn) -> None:
        self.tamperer.rules.append((prefix, fn))

    def tamper_json(self, prefix: str, fn) -> None:
        """Rewrite a JSON answer: ``fn(doc, query)`` changes ``doc`` in place."""

        def rewrite(body: bytes, query: dict) -> bytes:
            doc = json.loads(body)
            fn(doc, query)
            return json.dumps(doc).encode()

        self.tamper(prefix, rewrite)

    def signer(self):
        return read_key_file(self.path / "log.key")

    def append_notes(self, n: int, text: str = "note") -> None:
        cl = open_instance(self.path)
        try:
            cl.ledger.append_batch([("note", {"text": f"{text} {i}"}) for i in range(n)])
        finally:
            cl.stores.close()


class Servers:
    def __init__(self, factory):
        self.factory = factory
        self.running: list = []

    def instance(self, name: str = "inst", demo: int = 40) -> tuple[Path, dict]:
        """An API test instance, plus a 2-of-3 signed disbursement that spends the
        first two seed gifts of PROJECT and part of the third (FIFO)."""
        path, known = self.factory.instance(name, demo=demo)
        cl = open_instance(path)
        try:
            payload = P.disbursement(
                charity=CHARITY, project=PROJECT, currency="CNY", payee="Gansu Quilt Works", purpose="Quilts",
                period=PERIOD, lines=[("quilts", "160.00")], amount="160.00",
            )
            cl.disburse(payload, [P.sign(payload, s) for s in known["keys"][:2]])
        finally:
            cl.stores.close()
        return path, known

    def copy(self, src: Path, name: str) -> Path:
        dst = self.factory.tmp_path / name
        dst.mkdir(mode=0o700)
        for f in ("luodi.sqlite", "log.key"):
            shutil.copy2(src / f, dst / f)
        return dst

    def serve(self, path: Path, known: dict | None = None) -> Served:
        app = self.factory.app({}, path=path)
        wrapped = Tamper(app)
        server = make_server(HOST, 0, wrapped, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.running.append((server, thread))
        key = read_key_file(path / "log.key").verifier.to_string()
        return Served(path, app, f"http://{HOST}:{server.server_port}", key, known or {}, wrapped)

    def __call__(self, name: str = "inst", demo: int = 40) -> Served:
        path, known = self.instance(name, demo)
        return self.serve(path, known)

    def close(self) -> None:
        for server, thread in self.running:
            server.shutdown()
            server.server_close()
            thread.join(5)


@pytest.fixture
def servers(tmp_path):
    factory = ApiFactory(tmp_path)
    s = Servers(factory)
    yield s
    s.close()
    factory.close()


def run_audit(*args: str):
    """``luodi audit ARGS`` through click (the real command, in this process)."""
    return CliRunner().invoke(main, ["audit", *args], catch_exceptions=False)
