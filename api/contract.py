"""The OpenAPI contract says what the server accepts, and what it may answer.

Path parameters are matched by URL converters built from the core's own rules
(:data:`ledger.charity.kinds.ID_PATTERN` for project and charity ids,
:data:`ledger.log.fields.HEX64` for receipt hashes), so that routing and the
contract's ``pattern`` cannot drift apart: a URL whose id breaks the rule
matches no route and is answered 404 problem+json, as is an id that matches
but names nothing.

:class:`ProblemsPlugin` documents, on each operation, the problem answers it
can give: 404 where the path names something; 400, 413, 415 and 422 where a
body is read; 401 and 403 where a token is needed; 409 on appends; 429 and 503 on writes.
"""

from __future__ import annotations

import http

from apispec import BasePlugin
from flask import Flask
from werkzeug.routing import BaseConverter

from ledger.charity.kinds import ID_PATTERN
from ledger.log.canonical import INT_MAX
from ledger.log.fields import HEX64


class IdConverter(BaseConverter):
    """A project or charity id: 1-64 lowercase letters, digits and inner hyphens."""

    regex = ID_PATTERN.pattern


class HashConverter(BaseConverter):
    """A receipt (leaf) hash: 64 lowercase hex digits."""

    regex = HEX64.pattern


def _pattern_schema(description: str):
    def schema(converter: BaseConverter) -> dict:
        return {"type": "string", "pattern": f"^{converter.regex}$", "description": f"{description} (else 404)"}

    return schema


PATH_RULES = "project and charity ids are 1-64 lowercase letters, digits and inner hyphens, receipts 64 lowercase hex digits"
CONVERTERS = {
    "id": (IdConverter, _pattern_schema("1-64 lowercase letters, digits and inner hyphens")),
    "hash": (HashConverter, _pattern_schema("64 lowercase hex digits")),
}
SEQ = f"int(max={INT_MAX})"  # an entry's seq, as ``<SEQ:seq>``: 0 to 2^53-1


class ProblemsPlugin(BasePlugin):
    """Document the problem answers of each operation (all problem+json, see ``api.problems``)."""

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for method, op in (operations or {}).items():
            responses = op.setdefault("responses", {})
            add = []
            if "{" in (path or ""):
                add.append(404)
            if "requestBody" in op:
                add += [400, 413, 415]
            if "requestBody" in op or op.get("parameters"):
                add.append(422)
            if op.get("security"):
                add += [401, 403]
            if method == "post":
                add.append(409)
            if method in ("post", "delete"):
                add += [429, 503]
            for status in add:
                responses.setdefault(str(status), http.HTTPStatus(status).name)
            op["responses"] = dict(sorted(responses.items(), key=lambda kv: (str(kv[0]) == "default", str(kv[0]))))


def init_app(app: Flask, api) -> None:
    """Register the path converters with Flask's routing and the contract (before any blueprint)."""
    for name, (converter, schema) in CONVERTERS.items():
        app.url_map.converters[name] = converter
        api.register_converter(converter, schema)
