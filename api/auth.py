"""Bearer tokens on the wire: read ``Authorization: Bearer <token>`` (RFC 6750 §2.1)
and hand the token to the core (:mod:`ledger.charity.tokens`), which knows what it grants."""

from __future__ import annotations

from flask import abort, current_app, g, request

from ledger.charity.tokens import Grant, authenticate, require
from ledger.errors import Unauthorized

from .state import tokens

SECURITY = [{"bearerAuth": []}]  # the OpenAPI security requirement of a view that needs() a token


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization`` header; :class:`Unauthorized` if there is none."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:  # RFC 9110 §11.1: the scheme is case-insensitive
        raise Unauthorized("a bearer token is required")
    return token


def grant(header: str | None) -> Grant:
    return authenticate(tokens(), bearer_token(header))


def needs(role: str):
    """Mark a view as needing a bearer token of ``role`` (checked before the body is read)."""

    def mark(view):
        view.luodi_role = role
        return view

    return mark


def guard() -> None:
    """A blueprint's ``before_request``: the token a view needs, then a JSON body for a POST."""
    view = current_app.view_functions.get(request.endpoint)
    role = getattr(view, "luodi_role", None)
    if role is not None:
        g.grant = grant(request.headers.get("Authorization"))
        require(g.grant, role)
    if request.method == "POST" and not request.is_json:
        abort(415, "send the body as application/json")
