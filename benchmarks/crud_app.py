"""The baseline of issue 12's donation POST target: the CRUD app a charity
would otherwise write (benchmark only, never shipped).

A plain Flask endpoint that parses the same JSON body as Luodi's donation
POST, checks that the fields are there, and inserts it as one row into SQLite
with the same durability as Luodi (WAL, ``synchronous=FULL``), one transaction
per request, before it answers 201.  No proof, no signature, no chain: just
the row.  ``benchmarks/http.py`` runs it under gunicorn with 2 threaded
workers of 8 threads (``-k gthread``), each thread with its own connection::

    CRUD_DB=/tmp/crud.sqlite gunicorn -w 2 -k gthread --threads 8 \\
        --chdir benchmarks 'crud_app:create_app()'
"""

from __future__ import annotations

import os
import sqlite3
import threading
from decimal import Decimal, InvalidOperation

from flask import Flask, abort, jsonify, request

FIELDS = ("amount", "channel", "payment_ref", "donor_ref", "value_date")
SCHEMA = """
CREATE TABLE IF NOT EXISTS donations (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    channel TEXT NOT NULL,
    payment_ref TEXT NOT NULL,
    donor_ref TEXT NOT NULL,
    value_date TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


def create_app() -> Flask:
    path = os.environ["CRUD_DB"]
    local = threading.local()

    def db() -> sqlite3.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # durable at COMMIT, as Luodi's appends
            conn.execute(SCHEMA)
            local.conn = conn
        return conn

    app = Flask(__name__)

    @app.post("/projects/<project>/donations")
    def donate(project: str):
        body = request.get_json()
        key = request.headers.get("Idempotency-Key")
        if not isinstance(body, dict) or not key or any(not isinstance(body.get(f), str) for f in FIELDS):
            abort(422)
        try:
            minor = int(Decimal(body["amount"]) * 100)
        except InvalidOperation:
            abort(422)
        conn = db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT INTO donations (idempotency_key, project, amount_minor, channel, payment_ref, donor_ref,"
                " value_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, project, minor, body["channel"], body["payment_ref"], body["donor_ref"], body["value_date"]),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return jsonify(id=cur.lastrowid, project=project, **{f: body[f] for f in FIELDS}), 201

    @app.get("/ping")
    def ping():
        return jsonify(ok=True)

    return app
