"""Where the verifiers read C2SP tlog-tiles from: a URL prefix over HTTP(S), or a local folder.

:func:`tile_fetcher` gives the ``fetch(path)`` that :class:`ledger.log.tile_reader.TileReader`
and the tile audit take: the bytes of ``<prefix>/<path>`` (``checkpoint``,
``tile/<L>/<N>[.p/<W>]``, ``tile/entries/<N>[.p/<W>]``), or None when the host has no
such resource (an HTTP 404, a missing file); anything else raises
:class:`ledger.errors.RemoteError` (exit 2 in the command line).  It judges nothing of
what it reads: the reader and the audit do.

Over HTTP it asks for ``Accept-Encoding: gzip, identity`` and undoes a gzip
``Content-Encoding`` (tlog-tiles, *Log entries*: bundles SHOULD be compressed), skips
proxies for loopback audits like :class:`api.remote.HttpSource`, and bounds every answer:
a full entry bundle of 256 entries of 65,535 bytes each, with their length prefixes.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from ledger.errors import InvalidInput, RemoteError
from ledger.log.tiles import MAX_ENTRY_BYTES, TILE_WIDTH

MAX_RESOURCE = TILE_WIDTH * (MAX_ENTRY_BYTES + 2)  # the largest entry bundle


class HttpTiles:
    """``fetch(path)`` over HTTP(S) under a URL prefix."""

    def __init__(self, url: str, timeout: float):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"--tiles must be an http(s):// URL with a host, or a folder, not {url!r}")
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.requests = 0

    def __call__(self, path: str) -> bytes | None:
        url = f"{self.base}/{path}"
        req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, identity", "User-Agent": "luodi-verify"})
        self.requests += 1
        try:
            resp = self.opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 404:
                    return None
                raise RemoteError(f"GET {url} was answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            raise RemoteError(f"cannot reach {self.base} (GET /{path}): {getattr(exc, 'reason', exc)}") from None
        try:
            with resp:
                data = resp.read(MAX_RESOURCE + 1)
                encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
        except (OSError, socket.timeout, ValueError, http.client.HTTPException) as exc:
            raise RemoteError(f"the answer to GET {url} broke off: {exc}") from None
        if encoding == "gzip":
            try:
                data = _gunzip(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise RemoteError(f"the answer to GET {url} is not the gzip it says: {exc}") from None
        elif encoding != "identity":
            raise RemoteError(f"the answer to GET {url} has a Content-Encoding {encoding!r} that was not asked for")
        if len(data) > MAX_RESOURCE:
            raise RemoteError(f"the answer to GET {url} is larger than any tile or entry bundle")
        return data


def _gunzip(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        return f.read(MAX_RESOURCE + 1)


class FolderTiles:
    """``fetch(path)`` from a folder that ``luodi tiles export`` wrote (or a copy of it)."""

    def __init__(self, folder: str):
        root = Path(folder)
        if not root.is_dir():
            raise InvalidInput(f"--tiles {folder}: neither an http(s):// URL nor a folder")
        self.root = root.resolve()
        self.base = str(self.root)
        self.requests = 0

    def __call__(self, path: str) -> bytes | None:
        target = self.root / path  # the paths come from the tile arithmetic: no "..", no leading "/"
        self.requests += 1
        try:
            with open(target, "rb") as f:
                data = f.read(MAX_RESOURCE + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise RemoteError(f"cannot read {target}: {exc.strerror or exc}") from None
        if len(data) > MAX_RESOURCE:
            raise RemoteError(f"{target} is larger than any tile or entry bundle")
        return data


def tile_fetcher(location: str, timeout: float) -> HttpTiles | FolderTiles:
    """The fetch for ``--tiles``: an ``http(s)://`` URL prefix, else a folder (``file://`` too)."""
    if not location:
        raise InvalidInput("--tiles needs a URL prefix or a folder")
    if location.startswith(("http://", "https://")):
        return HttpTiles(location, timeout)
    if location.startswith("file://"):
        location = urllib.parse.unquote(urllib.parse.urlsplit(location).path)
    return FolderTiles(os.path.expanduser(location))
