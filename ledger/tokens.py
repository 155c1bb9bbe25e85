"""Bearer tokens for the write side of the API: printed once, stored only as SHA-256 hashes.

An ``admin`` token registers charities and opens projects.  An ``intake``
token (the payment platform) records donations and refunds; scoped to a
charity, it may only touch that charity's projects.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .clock import utc_now
from .errors import Forbidden, InvalidInput, Unauthorized

ROLES = ("admin", "intake")
PREFIX = "luodi_"


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
