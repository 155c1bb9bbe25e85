"""The HTTP side of submitting checkpoints to a witness (C2SP tlog-witness §"add-checkpoint").

One :class:`HttpWitness` per witness, used by that witness's courier thread
only (:mod:`ledger.log.cosigning`): it keeps one connection open between
requests, as tlog-witness §"HTTP Interface" recommends ("Clients SHOULD use
... HTTP keep-alive").  ``timeout`` bounds the connect and each read and
write on the socket.  A kept connection that the witness closed while it was
idle fails at once; the request is then sent once more on a new connection.
"""

from __future__ import annotations

import http.client
import urllib.parse

from ledger.log.policy import Witness

MAX_ANSWER = 64 * 1024  # signature lines, or a size: far below this
USER_AGENT = "luodi-log (+https://c2sp.org/tlog-witness)"
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest)


class HttpWitness:
    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.path = parts.path.rstrip("/") + "/add-checkpoint"
        self._conn: http.client.HTTPConnection | None = None

    @classmethod
    def of(cls, witness: Witness) -> "HttpWitness":
        return cls(witness.url)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return kind(self.host, self.port, timeout=timeout)

    def add_checkpoint(self, body: bytes, timeout: float) -> tuple[int, str, bytes]:
        reused = self._conn is not None
        try:
            return self._post(body, timeout)
        except _STALE as exc:
            self.close()
            if not reused:
                raise OSError(str(exc) or type(exc).__name__) from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise OSError(str(exc) or type(exc).__name__) from None
        try:  # the witness closed the idle connection: once more, on a new one
            return self._post(body, timeout)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise OSError(str(exc) or type(exc).__name__) from None

    def _post(self, body: bytes, timeout: float) -> tuple[int, str, bytes]:
        if self._conn is None:
            self._conn = self._connect(timeout)
        conn = self._conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        conn.request("POST", self.path, body, {"Content-Type": "text/plain; charset=utf-8", "User-Agent": USER_AGENT})
        resp = conn.getresponse()
        data = resp.read(MAX_ANSWER)
        if resp.will_close or len(data) == MAX_ANSWER:
            self.close()
        return resp.status, resp.getheader("Content-Type", ""), data

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
