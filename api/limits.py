"""Rate limits (flask-limiter): write endpoints are limited per client; a refusal is a 429 problem."""

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address)


def write_limit() -> str:
    return current_app.config["RATELIMIT_WRITES"]
