"""Rate limits (flask-limiter): each app gets its own limiter; POSTs to the write
blueprint are limited per client, and a refusal is a 429 problem."""

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


def write_limit() -> str:
    return current_app.config["RATELIMIT_WRITES"]


def init_app(app: Flask, writes_blueprint) -> Limiter:
    limiter = Limiter(key_func=get_remote_address, app=app)
    limiter.limit(write_limit, methods=["POST"])(writes_blueprint)
    app.extensions["luodi_limiter"] = limiter
    return limiter
