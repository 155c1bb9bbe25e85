"""What the cosigning tests put in front of the log: witnesses and the network between.

- :class:`StandIn`: an honest tlog-witness in a thread, over real HTTP, built from
  the shared modules (``ledger.log.add_checkpoint``, ``cosignature``, ``merkle``):
  it checks the log's signature, the old size (409 with its size), the proof
  (422) and keeps its state.  The unit tests of the gatherer use it; the end-to-end
  tests use real ``luodi witness serve`` processes.
- :class:`Relay`: a counting HTTP relay in front of a witness, which can also turn
  into a black hole (takes the request, never answers) or refuse connections:
  the requests are counted on the wire, where the witness sees them.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ledger.errors import MalformedNote, ProofError, SignatureError
from ledger.log.add_checkpoint import SIZE_CONTENT_TYPE, format_size, parse_add_checkpoint
from ledger.log.checkpoint import open_checkpoint
from ledger.log.cosignature import Cosigner
from ledger.log.merkle import root, verify_consistency
from ledger.log.note import Verifier, parse_note

HOST = "127.0.0.1"


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # the tests count requests; no need to print them
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server:
    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer((HOST, 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StandIn(_Server):
    """An honest witness of one log (tlog-witness §add-checkpoint)."""

    def __init__(self, name: str, log_key: Verifier, cosigner: Cosigner | None = None):
        self.cosigner = cosigner or Cosigner.generate(name)
        self.log_key = log_key
        self.size, self.root = 0, root([])
        self.lock = threading.Lock()
        self.requests = 0
        witness = self

        class Handler(_Quiet):
            def do_POST(self):
                status, ctype, body = witness.answer(self.path, self._body())
                self._send(status, ctype, body)

        super().__init__(Handler)

    @property
    def vkey(self) -> str:
        return self.cosigner.verifier.to_string()

    def answer(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        with self.lock:
            self.requests += 1
            if path != "/add-checkpoint":
                return 404, "text/plain", b"not found\n"
            try:
                req = parse_add_checkpoint(body)
            except MalformedNote as exc:
                return 400, "text/plain", exc.detail.encode()
            if parse_note(req.checkpoint).text.split("\n", 1)[0] != self.log_key.name:
                return 404, "text/plain", b"unknown log\n"
            try:
                cp = open_checkpoint(req.checkpoint, self.log_key)
            except (SignatureError, MalformedNote):
                return 403, "text/plain", b"not signed by the log\n"
            if req.old_size > cp.size:
                return 400, "text/plain", b"old size beyond the checkpoint\n"
            if req.old_size != self.size:
                return 409, SIZE_CONTENT_TYPE, format_size(self.size)
            try:
                if req.old_size == 0:
                    if req.proof:
                        raise ProofError("a proof from size 0")
                elif req.old_size == cp.size:
                    if req.proof or cp.root != self.root:
                        raise ProofError("another root at the same size")
                else:
                    verify_consistency(req.old_size, cp.size, self.root, cp.root, list(req.proof))
            except ProofError:
                return 422, "text/plain", b"inconsistent\n"
            self.size, self.root = cp.size, cp.root
            text = parse_note(req.checkpoint).text
            return 200, "text/plain; charset=utf-8", self.cosigner.cosign(text).encode()


class Relay(_Server):
    """Forwards POSTs to ``target`` and counts them; ``mode`` 'pass', 'hole' (never answers)
    or 'refuse' (closes the connection at once)."""

    def __init__(self, target: str):
        self.target = urllib.parse.urlsplit(target)
        self.mode = "pass"
        self.requests = 0
        self.holding = 0  # requests taken in 'hole' mode and not answered
        self.bodies: list[bytes] = []
        self.released = threading.Event()
        relay = self

        class Handler(_Quiet):
            def do_POST(self):
                body = self._body()
                with relay_lock:
                    relay.requests += 1
                    relay.bodies.append(body)
                if relay.mode == "hole":
                    with relay_lock:
                        relay.holding += 1
                    relay.released.wait(60)  # holds the request, answers nothing
                    self.close_connection = True
                    return
                if relay.mode == "refuse":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                conn = http.client.HTTPConnection(relay.target.hostname, relay.target.port, timeout=30)
                try:
                    conn.request("POST", self.path, body, {"Content-Type": self.headers.get("Content-Type", "")})
                    resp = conn.getresponse()
                    self._send(resp.status, resp.getheader("Content-Type", ""), resp.read())
                finally:
                    conn.close()

        relay_lock = threading.Lock()
        super().__init__(Handler)

    def close(self) -> None:
        self.released.set()
        super().close()


def wait_for(predicate, timeout: float = 20.0, step: float = 0.05):
    """Poll ``predicate`` until it returns something true; its value (AssertionError at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {predicate}")
        time.sleep(step)


def policy_text(witnesses: list[tuple[str, str, str]], quorum: int, log_key: str | None = None) -> str:
    """A 'quorum of n' tlog-policy file: witnesses as (name, vkey, url)."""
    lines = [f"log {log_key}"] if log_key else []
    lines += [f"witness {name} {vkey} {url}" for name, vkey, url in witnesses]
    lines += [f"group all-witnesses {quorum} " + " ".join(name for name, _, _ in witnesses), "quorum all-witnesses"]
    return "\n".join(lines) + "\n"
