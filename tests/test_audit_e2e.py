"""``luodi audit`` end to end: the installed command against ``luodi serve`` (real
gunicorn) and against a copy of a real database file.

- ``--url``: a clean demo passes; as a monitor (``--state``), the state starts,
  then advances with a consistency proof after the log grew.
- ``--db``: the copy is audited read-only (its bytes are unchanged); a byte
  changed inside the SQLite file (triggers dropped) fails, naming the seq and
  the receipt; the wrong key fails.
- Exit 2 for an unreachable server and a malformed key string.

SQLite only: --db audits a copy of a SQLite file, and the remote audit reads the server
over HTTP only (the storage, service, API and end-to-end tests run on every backend).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
from contextlib import closing

import pytest
from test_e2e_gunicorn import LiveServer, luodi

from api.instance import init_instance
from ledger.charity.demo import seed_demo
from ledger.log.note import Signer

TRIGGERS = ["entries_no_update", "entries_no_delete", "checkpoints_no_update", "checkpoints_no_delete"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit-e2e") / "instance"
    cl = init_instance(path).charity
    try:
        seed_demo(cl, donations=120, keys_dir=path / "demo-keys")
        key = cl.ledger.verifier
        size = cl.ledger.size()
    finally:
        cl.stores.close()
    return path, key, size


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_remote_audit_of_the_demo_under_gunicorn_and_as_a_monitor(demo, tmp_path):
    path, key, size = demo
    state = tmp_path / "monitor.json"
    with LiveServer(path, key) as server:
        first = luodi("audit", "--url", server.url, "--log-key", key.to_string(), "--state", state)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"ok: {size} entries verified" in first.stdout
        assert "120 donations" in first.stdout and "100 receipts" in first.stdout
        assert f"state: started at tree size {size}" in first.stdout
        closed = luodi("project", "close", "farm-livestream", "--reason", "done", "--instance", path)
        assert closed.returncode == 0, closed.stderr
        second = luodi("audit", "--url", server.url, "--log-key", key.to_string(), "--state", state, "--json",
                       "--receipts", "all")
        assert second.returncode == 0, second.stdout + second.stderr
        report = json.loads(second.stdout)
        assert report["entries"] == size + 1 and report["receipts_checked"] == 120
        assert report["state"] == {"file": str(state), "from": size, "to": size + 1, "advanced": True}
        assert "followed" in second.stderr  # not a terminal: plain progress lines
        assert json.loads(state.read_text())["tree_size"] == size + 1


def test_db_audit_of_a_copy_is_read_only(demo, tmp_path):
    path, key, size = demo
    copy = tmp_path / "copy.sqlite"
    shutil.copy2(path / "luodi.sqlite", copy)
    before = _sha(copy)
    result = luodi("audit", "--db", copy, "--log-key", key.to_string())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "entries verified" in result.stdout
    assert _sha(copy) == before

    wrong = Signer.generate(key.name).verifier.to_string()
    result = luodi("audit", "--db", copy, "--log-key", wrong)
    assert result.returncode == 1 and "seq 0" in result.stderr and "pinned" in result.stderr
    assert _sha(copy) == before


def test_db_audit_names_the_seq_and_receipt_of_a_changed_byte(demo, tmp_path):
    path, key, _ = demo
    copy = tmp_path / "tampered.sqlite"
    shutil.copy2(path / "luodi.sqlite", copy)
    with closing(sqlite3.connect(copy, isolation_level=None)) as conn:
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        data = conn.execute("SELECT canonical FROM entries WHERE seq = 20").fetchone()[0]
        changed = data.replace(b'"amount":', b'"amount":1', 1)
        assert changed != data
        conn.execute("UPDATE entries SET canonical = ? WHERE seq = 20", (changed,))
    result = luodi("audit", "--db", copy, "--log-key", key.to_string())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "audit FAILED: seq 20" in result.stderr


def test_unreachable_server_and_malformed_key_exit_2(demo):
    _, key, _ = demo
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = luodi("audit", "--url", f"http://127.0.0.1:{port}", "--log-key", key.to_string())
    assert result.returncode == 2 and "cannot reach" in result.stderr
    result = luodi("audit", "--url", f"http://127.0.0.1:{port}", "--log-key", "localhost/luodi+zz+notbase64")
    assert result.returncode == 2 and "--log-key is not a verifier key" in result.stderr
