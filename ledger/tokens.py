"""Bearer tokens for the write side of the API: printed once, stored only as SHA-256 hashes.

An ``admin`` token registers charities and opens projects.  An ``intake``
token (the payment platform) records donations and refunds; scoped to a
charity, it may only touch that charity's projects.  A token is named by its
id, the first 12 hex digits of its hash (which says nothing of the token),
and revoking it deletes its row: the next request with it is a 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .clock import utc_now
from .errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized

ROLES = ("admin", "intake")
PREFIX = "luodi_"
ID_HEX = 12  # a token's id: the first hex digits of its hash


@dataclass(frozen=True)
class Grant:
    role: str
    charity: str | None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def create_token(storage, role: str, charity: str | None = None) -> str:
    """Store a new token's hash; return the token (the only time it exists in clear)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if charity is not None and role != "intake":
        raise InvalidInput("only intake tokens are scoped to a charity")
    token = PREFIX + secrets.token_urlsafe(32)
    with storage.append_transaction() as txn:
        txn.add_token(token_hash(token), role, charity, utc_now())
    return token


@dataclass(frozen=True)
class TokenInfo:
    id: str
    role: str
    charity: str | None
    created: str


def list_tokens(storage) -> list[TokenInfo]:
    return [TokenInfo(h.hex()[:ID_HEX], role, charity, created) for h, role, charity, created in storage.tokens()]


def revoke_token(storage, token_id: str) -> TokenInfo:
    """Delete the token whose id is ``token_id`` (its id, or a longer prefix of its hash)."""
    if not isinstance(token_id, str) or len(token_id) < ID_HEX or token_id.strip("0123456789abcdef"):
        raise InvalidInput(f"a token id is at least {ID_HEX} lowercase hex digits (see 'luodi token list')")
    with storage.append_transaction() as txn:
        found = [row for row in txn.tokens() if row[0].hex().startswith(token_id)]
        if not found:
            raise NotFound(f"no token with id {token_id}")
        if len(found) > 1:
            raise Conflict(f"{len(found)} tokens have ids starting {token_id}: give more digits")
        txn.remove_token(found[0][0])
    h, role, charity, created = found[0]
    return TokenInfo(h.hex()[:ID_HEX], role, charity, created)


def authenticate(storage, header: str | None) -> Grant:
    """The grant of an ``Authorization: Bearer`` header, or :class:`Unauthorized`."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:  # RFC 9110 §11.1: the scheme is case-insensitive
        raise Unauthorized("a bearer token is required")
    digest = token_hash(token)
    row = storage.token(digest)
    # The lookup is by hash, so timing reveals nothing of the token; compare anyway.
    if row is None or not hmac.compare_digest(row[0], digest):
        raise Unauthorized("the bearer token is not valid")
    return Grant(row[1], row[2])


def require(grant: Grant, role: str, charity: str | None = None) -> None:
    if grant.role != role and grant.role != "admin":
        raise Forbidden(f"this needs an {role} token")
    if grant.charity is not None and charity is not None and grant.charity != charity:
        raise Forbidden(f"this token may not act for charity {charity}")
