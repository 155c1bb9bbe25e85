"""Luodi's edges: the Flask HTTP API (``create_app``) and the ``luodi`` CLI (``api.cli``)."""

from __future__ import annotations

import os
from pathlib import Path


def create_app(test_config: dict | None = None):
    """The app factory: defaults, then ``<instance>/config.py``, then ``LUODI_*``
    environment variables, then ``test_config``."""
    from ledger.stores.sqlite import DEFAULT_LOCK_TIMEOUT

    from . import admin, docs, limits, pages, problems, public, state, tiles, witnessing, writes

    instance = Path(
        (test_config or {}).get("INSTANCE") or os.environ.get("LUODI_INSTANCE") or "instance"
    ).resolve()
    app = problems.LuodiFlask(__name__, instance_path=str(instance), instance_relative_config=True)
    app.config.from_mapping(
        INSTANCE=str(instance),
        WRITE_LOCK_TIMEOUT=DEFAULT_LOCK_TIMEOUT,  # seconds a write waits for the write lock, then 503
        READ_ONLY=False,
        APPEND_QUEUE=4096,  # appends waiting for a group commit at once; beyond it a write is 503 at once
        APPEND_WAIT=10.0,  # seconds a write waits for a group commit to take it, then 503 (nothing written)
        GROUP_WAIT_MS=2.0,  # a group commit closes when full (256), when no announced write is on its way, or after this
        MAX_CONTENT_LENGTH=64 * 1024,
        BATCH_MAX_CONTENT_LENGTH=2 * 1024 * 1024,  # POST .../donations/batch only
        CLIENT_TIMEOUT_SECONDS=10,  # under `luodi serve`: to send a whole request, or to take each write of an answer
        PAGE_LIMIT=1000,
        WITNESS_INTERVAL=1.0,  # with witnesses (docs/witnessing.md): seconds between two submissions of checkpoints
        WITNESS_TIMEOUT=5.0,  # seconds a witness has to connect, and for each read and write of a submission
        RATELIMIT_DEFAULT="",
        RATELIMIT_WRITES="600 per minute",  # per route, per address (or per admin token)
        RATELIMIT_INTAKE="100000 per minute",  # per route, per intake token without a rate of its own
        WORKERS=1,  # worker processes (set by `luodi serve`): each enforces its share of a memory:// limit
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        API_TITLE="Luodi donation-transparency ledger",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs-assets/",
        JSON_SORT_KEYS=False,
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("LUODI")
    else:
        app.config.from_prefixed_env("LUODI")
        app.config.update(test_config)
    app.json.sort_keys = False
    app.json.ensure_ascii = False

    api = problems.init_app(app)
    limits.init_app(app, writes.blp, admin.blp)
    state.init_app(app)
    witnessing.init_app(app)
    docs.init_app(app)
    pages.init_app(app)
    tiles.init_app(app)  # /checkpoint and /tile/...: C2SP tlog-tiles at the service root
    api.register_blueprint(public.blp)
    api.register_blueprint(writes.blp)
    for name in ("BatchReceipt", "BatchProblem"):  # the batch results' oneOf (api/schemas.py)
        api.spec.components.schema(name, schema=getattr(writes.s, name))
    api.register_blueprint(admin.blp)
    return app
