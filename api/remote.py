"""The HTTP source of a remote audit: a Luodi server's public API, over urllib.

:class:`HttpSource` implements :class:`ledger.charity.remote_audit.Source`.
The export is streamed line by line (never held whole); every request has a
timeout.  It raises :class:`ledger.errors.RemoteError` for what is not the
log's fault: a server that cannot be reached or times out, an HTTP error
answer, and an answer that is not JSON where JSON was asked for.  Everything
else it hands to the audit undecoded beyond JSON, which judges it.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from ledger.errors import InvalidInput, RemoteError

DEFAULT_TIMEOUT = 30.0
MAX_ANSWER = 64 * 1024 * 1024  # a JSON answer larger than this is refused (a receipt is a few kB)
MAX_LINE = 1024 * 1024  # an entry is at most 64 KiB of body; a longer export line is refused


def check_url(url: str) -> str:
    """An http(s) URL with a host, without a trailing slash; :class:`InvalidInput` otherwise."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"--url must be an http:// or https:// URL with a host, not {url!r}")
    return url.rstrip("/")


class HttpSource:
    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        self.base = check_url(url)
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback audits skip proxies
        self.requests = 0

    def _open(self, path: str, accept: str):
        url = self.base + path
        req = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "luodi-audit"})
        self.requests += 1
        try:
            return self.opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise RemoteError(f"GET {path} was answered {exc.code}: {_problem(exc)}") from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach {self.base} (GET {path}): {reason}") from None

    def _read(self, path: str, accept: str) -> bytes:
        resp = self._open(path, accept)
        try:
            with resp:
                data = resp.read(MAX_ANSWER + 1)
        except (OSError, socket.timeout, ValueError, http.client.HTTPException) as exc:
            raise RemoteError(f"the answer to GET {path} broke off: {exc}") from None
        if len(data) > MAX_ANSWER:
            raise RemoteError(f"the answer to GET {path} is larger than {MAX_ANSWER} bytes")
        return data

    def _json(self, path: str) -> dict:
        data = self._read(path, "application/json")
        try:
            return json.loads(data)
        except ValueError:
            raise RemoteError(f"the answer to GET {path} is not JSON") from None

    # -- the Source protocol ---------------------------------------------------------------

    def checkpoint(self) -> str | bytes:
        data = self._read("/v1/checkpoint", "text/plain")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data  # not text: the audit says the checkpoint is not a note

    def export(self, start: int, end: int) -> Iterator[bytes]:
        path = f"/v1/export?start={start}&tree_size={end}"
        resp = self._open(path, "application/x-ndjson")
        with resp:
            try:
                while True:
                    line = resp.readline(MAX_LINE + 1)
                    if not line:
                        return
                    if len(line) > MAX_LINE and not line.endswith(b"\n"):
                        raise RemoteError(f"GET {path}: an export line is longer than {MAX_LINE} bytes")
                    yield line[:-1] if line.endswith(b"\n") else line
            except (OSError, socket.timeout, ValueError, http.client.HTTPException) as exc:
                raise RemoteError(f"the export broke off (GET {path}): {exc}") from None

    def consistency(self, first: int, second: int) -> dict:
        return self._json(f"/v1/proofs/consistency?first={first}&second={second}")

    def inclusion(self, leaf_hash: str, tree_size: int) -> dict:
        return self._json(f"/v1/proofs/inclusion?leaf_hash={leaf_hash}&tree_size={tree_size}")

    def projects(self) -> dict:
        return self._json("/v1/projects")

    def receipt(self, leaf_hash: str) -> dict:
        return self._json(f"/v1/receipts/{leaf_hash}")


def _problem(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(65536))
        return f"{body.get('title')}: {body.get('detail')}"
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)
