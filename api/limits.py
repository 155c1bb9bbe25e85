"""Rate limits (flask-limiter): each app gets its own limiter; POSTs and DELETEs to the write
blueprints are limited, per route, and a refusal is a 429 problem with ``Retry-After``.

- A write with a valid bearer token is counted under the token's id (the first hex
  digits of its hash, never the token), wherever it comes from: two tokens behind one
  address have a budget each, and one token spread over many addresses has one.  Its
  limit is the token's own rate (``luodi token create --rate``), else RATELIMIT_INTAKE
  for an intake token (a giving day's intake should not meet it), else RATELIMIT_WRITES.
- Any other write (signed disbursements and key rotations, or a token that is not
  valid, which the guard then refuses) is counted per client address under
  RATELIMIT_WRITES.
- A limit means the same whatever the number of workers.  With a shared backend
  (RATELIMIT_STORAGE_URI such as ``redis://...``) the workers count together; with
  the default ``memory://`` each worker counts alone, so each enforces its share,
  limit // WORKERS (at least 1), WORKERS being set by ``luodi serve``.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many

from ledger.charity.tokens import Grant
from ledger.errors import LuodiError

from . import auth


def _grant() -> Grant | None:
    """The grant of this request's bearer token, if it has a valid one (looked up once)."""
    if "limit_grant" not in g:
        header = request.headers.get("Authorization")
        try:
            g.limit_grant = auth.grant(header) if header else None
        except LuodiError:  # no valid token (or storage trouble): counted per address; the guard answers
            g.limit_grant = None
    return g.limit_grant


def write_key() -> str:
    grant = _grant()
    return f"token:{grant.id}" if grant is not None else f"address:{get_remote_address()}"


def shared_out(limit: str, workers: int) -> str:
    """Each worker's share of ``limit`` when each counts in its own memory."""
    if workers <= 1:
        return limit
    return ";".join(
        f"{max(1, item.amount // workers)} per {item.multiples} {item.GRANULARITY.name}" for item in parse_many(limit)
    )


def write_limit() -> str:
    config = current_app.config
    grant = _grant()
    if grant is not None and grant.rate:
        limit = grant.rate
    elif grant is not None and grant.role == "intake":
        limit = config["RATELIMIT_INTAKE"]
    else:
        limit = config["RATELIMIT_WRITES"]
    if str(config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        return shared_out(limit, int(config["WORKERS"]))
    return limit


def init_app(app: Flask, *write_blueprints) -> Limiter:
    limiter = Limiter(key_func=get_remote_address, app=app)
    for blueprint in write_blueprints:
        limiter.limit(write_limit, key_func=write_key, methods=["POST", "DELETE"])(blueprint)
    app.extensions["luodi_limiter"] = limiter
    return limiter
