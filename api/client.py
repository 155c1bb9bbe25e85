"""A small HTTP client for the charity tooling (standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from ledger.errors import RemoteError


class Client:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30):
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _send(self, req: urllib.request.Request) -> dict:
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read())
                detail = f"{problem.get('status')} {problem.get('title')}: {problem.get('detail')}"
            except ValueError:
                detail = f"{exc.code} {exc.reason}"
            raise RemoteError(detail) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"cannot reach {self.base}: {exc}") from exc

    def get_json(self, path: str) -> dict:
        return self._send(urllib.request.Request(self.base + path))

    def post_json(self, path: str, body: dict, headers: dict | None = None) -> dict:
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        return self._send(req)
