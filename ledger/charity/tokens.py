"""Bearer tokens for the write side of the API: printed once, stored only as SHA-256 hashes.

An ``admin`` token registers charities and opens projects.  An ``intake``
token (the payment platform) records donations and refunds; scoped to a
charity, it may only touch that charity's projects.  A token is named by its
id, the first 12 hex digits of its hash (which says nothing of the token),
and revoking it deletes its row: the next request with it is a 401.
Reading the token from a request (``Authorization: Bearer``) is the edge's
job (``api/auth.py``); tokens are kept by a :class:`~ledger.charity.store.TokenStore`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from ..log.clock import utc_now
from .store import BooksView, TokenStore

ROLES = ("admin", "intake")
PREFIX = "luodi_"
ID_HEX = 12  # a token's id: the first hex digits of its hash
# A token's own write limit, in the words of the server's limits ("N per minute").
RATE = re.compile(r"([1-9][0-9]{0,8}) per (second|minute|hour|day)")


@dataclass(frozen=True)
class Grant:
    role: str
    charity: str | None
    id: str = ""  # the token's id (never the token): what its rate limit is counted under
    rate: str | None = None  # its own write limit; None for the server's default for its role


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def create_token(
    tokens: TokenStore,
    role: str,
    charity: str | None = None,
    books: BooksView | None = None,
    rate: str | None = None,
) -> str:
    """Store a new token's hash; return the token (the only time it exists in clear).

    A token scoped to ``charity`` is made only for a charity registered in ``books``
    (:class:`NotFound` otherwise), so a typo cannot make a token that grants nothing."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if rate is not None and (not isinstance(rate, str) or not RATE.fullmatch(rate)):
        raise InvalidInput(f"a rate is 'N per second|minute|hour|day', such as '5000 per minute', not {rate!r}")
    if charity is not None and role != "intake":
        raise InvalidInput("only intake tokens are scoped to a charity")
    if charity is not None:
        if books is None:
            raise TypeError("a token scoped to a charity needs the books, to check that the charity exists")
        if not isinstance(charity, str) or books.charity(charity) is None:
            raise NotFound(f"no charity {charity!r}: register it before making a token for it")
    token = PREFIX + secrets.token_urlsafe(32)
    tokens.add(token_hash(token), role, charity, utc_now(), rate)
    return token


@dataclass(frozen=True)
class TokenInfo:
    id: str
    role: str
    charity: str | None
    created: str
    rate: str | None = None


def list_tokens(tokens: TokenStore) -> list[TokenInfo]:
    return [TokenInfo(h.hex()[:ID_HEX], *rest) for h, *rest in tokens.all()]


def revoke_token(tokens: TokenStore, token_id: str) -> TokenInfo:
    """Delete the token whose id is ``token_id`` (its id, or a longer prefix of its hash)."""
    if not isinstance(token_id, str) or len(token_id) < ID_HEX or token_id.strip("0123456789abcdef"):
        raise InvalidInput(f"a token id is at least {ID_HEX} lowercase hex digits (see 'luodi token list')")
    found = [row for row in tokens.all() if row[0].hex().startswith(token_id)]
    if len(found) > 1:
        raise Conflict(f"{len(found)} tokens have ids starting {token_id}: give more digits")
    if not found or not tokens.remove(found[0][0]):  # gone already, perhaps revoked at the same moment
        raise NotFound(f"no token with id {token_id}")
    h, *rest = found[0]
    return TokenInfo(h.hex()[:ID_HEX], *rest)


def authenticate(tokens: TokenStore, token: str | None) -> Grant:
    """The grant of a bearer token, or :class:`Unauthorized`."""
    if not token:
        raise Unauthorized("a bearer token is required")
    digest = token_hash(token)
    row = tokens.get(digest)
    # The lookup is by hash, so timing reveals nothing of the token; compare anyway.
    if row is None or not hmac.compare_digest(row[0], digest):
        raise Unauthorized("the bearer token is not valid")
    return Grant(row[1], row[2], digest.hex()[:ID_HEX], row[3])


def require(grant: Grant, role: str, charity: str | None = None) -> None:
    if grant.role != role and grant.role != "admin":
        raise Forbidden(f"this needs an {role} token")
    if grant.charity is not None and charity is not None and grant.charity != charity:
        raise Forbidden(f"this token may not act for charity {charity}")
