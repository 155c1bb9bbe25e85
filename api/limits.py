"""Rate limits (flask-limiter): each app gets its own limiter; POSTs and DELETEs to the write
blueprints are limited per client, and a refusal is a 429 problem."""

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address


def write_limit() -> str:
    return current_app.config["RATELIMIT_WRITES"]


def init_app(app: Flask, *write_blueprints) -> Limiter:
    limiter = Limiter(key_func=get_remote_address, app=app)
    for blueprint in write_blueprints:
        limiter.limit(write_limit, methods=["POST", "DELETE"])(blueprint)
    app.extensions["luodi_limiter"] = limiter
    return limiter
