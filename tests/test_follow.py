"""The log follower (ledger/log/follow.py): a streamed log checked against the pinned key only.

It is what a remote audit and a monitor run over a server's export: every
entry's canonical bytes, leaf hash, ``prev`` link, time and kind rules; a
genesis entry that names the pinned key; a checkpoint that the pinned key
signed, for exactly the entries followed; and catching up to a larger tree.
The core audit (``ledger/charity/remote_audit.py``) runs, with the follower and
the monitor state, in an interpreter where no server stack can be imported.

SQLite only (the default database): the audit reads the server over HTTP only, so which
database serves it does not matter here; the storage, service, API and end-to-end tests
run on every backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REGISTRY, FixedClock, notes

from ledger.errors import LogCorrupted, Misreported
from ledger.log.entry import body_bytes, seal
from ledger.log.follow import Follower
from ledger.log.note import Signer

ROOT = Path(__file__).resolve().parent.parent
BATCHES = [20, 13, 30]  # checkpoints at 1, 21, 34, 64


@pytest.fixture
def log(make_ledger):
    ledger = make_ledger(clock=FixedClock())
    for n, size in enumerate(BATCHES):
        ledger.append_batch(notes(size, f"b{n}"))
    return ledger


def lines(ledger) -> list[bytes]:
    return list(ledger.export())


def follow(ledger, data=None, chunk: int = 7) -> Follower:
    f = Follower(REGISTRY, ledger.verifier, chunk=chunk)
    for _ in f.feed(lines(ledger) if data is None else data):
        pass
    return f


def test_a_clean_log_is_followed_and_its_checkpoint_verified(log):
    f = follow(log)
    assert f.size == log.size() == 64
    assert f.root() == log.root()
    assert f.last_receipt == log.entry(63).receipt
    cp = f.check_checkpoint(log.checkpoint())
    assert (cp.size, cp.root) == (64, log.root())


def test_it_yields_every_entry_in_order(log):
    f = Follower(REGISTRY, log.verifier.to_string(), chunk=5)
    assert [e.seq for e in f.feed(lines(log))] == list(range(64))


def test_catching_up_to_a_later_checkpoint(log):
    data = lines(log)
    f = Follower(REGISTRY, log.verifier, chunk=4)
    list(f.feed(data[:21]))
    assert f.check_checkpoint(log.checkpoint(21)).size == 21
    list(f.feed(data[21:34]))
    assert f.check_checkpoint(log.checkpoint(34)).size == 34
    with pytest.raises(LogCorrupted, match="says tree size 64, but 34 entries were followed"):
        f.check_checkpoint(log.checkpoint(64))
    list(f.feed(data[34:]))
    assert f.check_checkpoint(log.checkpoint()).size == 64


def test_the_genesis_must_name_the_pinned_key(log):
    other = Signer.generate(log.origin).verifier
    f = Follower(REGISTRY, other)
    with pytest.raises(LogCorrupted) as caught:
        list(f.feed(lines(log)))
    assert caught.value.seq == 0 and "different log key than the pinned one" in caught.value.detail
    assert caught.value.receipt == log.entry(0).receipt


def test_a_checkpoint_by_another_key_is_refused(log):
    f = follow(log)
    other = Signer.generate(log.origin)
    forged = log.latest_checkpoint().sign(other)
    with pytest.raises(Misreported, match="does not verify with the pinned log key"):
        f.check_checkpoint(forged)
    with pytest.raises(Misreported, match="not a signed note"):
        f.check_checkpoint(None)
    with pytest.raises(Misreported, match="does not verify"):
        f.check_checkpoint("hello\n")


def test_a_checkpoint_with_another_root_is_refused(log, signer):
    from ledger.log.checkpoint import Checkpoint

    f = follow(log)
    cp = log.latest_checkpoint()
    wrong = Checkpoint(cp.origin, cp.size, bytes(32)).sign(signer)
    with pytest.raises(LogCorrupted, match="root that does not match") as caught:
        f.check_checkpoint(wrong)
    assert caught.value.seq == 63 and caught.value.receipt == log.entry(63).receipt


@pytest.mark.parametrize("chunk", [1, 5, 2048])
def test_a_changed_byte_names_its_seq_and_receipt(log, chunk):
    data = lines(log)
    data[30] = data[30].replace(b'"text":"', b'"text":"changed ', 1)
    with pytest.raises(LogCorrupted) as caught:
        follow(log, data, chunk)
    from ledger.log.merkle import leaf_hash

    # the changed entry is still valid on its own; the next one's prev no longer matches it
    assert caught.value.seq == 31 and "prev is" in caught.value.detail
    assert caught.value.receipt == leaf_hash(data[31]).hex()


def test_non_canonical_bytes_name_their_seq(log):
    data = lines(log)
    data[9] = data[9].replace(b'"kind":', b'"kind": ')
    with pytest.raises(LogCorrupted, match="canonical") as caught:
        follow(log, data)
    assert caught.value.seq == 9 and f"seq 9 (receipt {caught.value.receipt})" in str(caught.value)


def test_deleted_and_swapped_entries(log):
    data = lines(log)
    with pytest.raises(LogCorrupted, match="says seq 13") as caught:
        follow(log, data[:12] + data[13:])
    assert caught.value.seq == 12
    with pytest.raises(LogCorrupted, match="says seq 13") as caught:
        follow(log, data[:12] + [data[13], data[12]] + data[14:])
    assert caught.value.seq == 12


def test_time_never_goes_back(log):
    data = lines(log)
    last = log.entry(63)
    body = {"text": "from the past"}
    early = seal(64, last.receipt, "2020-01-01T00:00:00.000Z", "note", body, body_bytes("note", body, REGISTRY))
    with pytest.raises(LogCorrupted, match="before the previous entry's") as caught:
        follow(log, data + [early.canonical], chunk=64)  # the bad entry opens a new chunk: the link between chunks
    assert caught.value.seq == 64 and caught.value.receipt == early.receipt
    with pytest.raises(LogCorrupted, match="before the previous entry's") as caught:
        follow(log, data + [early.canonical], chunk=10)  # inside a chunk
    assert caught.value.seq == 64


def test_an_unknown_kind_is_refused(log):
    data = lines(log)
    last = log.entry(63)
    forged = seal(64, last.receipt, last.time, "gift", {"x": 1}, b'{"x":1}')
    with pytest.raises(LogCorrupted, match="unknown entry kind") as caught:
        follow(log, data + [forged.canonical])
    assert caught.value.seq == 64


STANDALONE = textwrap.dedent(
    r"""
    import importlib.abc, json, random, sys

    BLOCKED = {"flask", "click", "sqlite3", "sqlite_utils", "gunicorn", "marshmallow", "urllib", "http"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed here")
            return None

    sys.meta_path.insert(0, Blocker())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]

    from ledger.charity.remote_audit import audit_remote
    from ledger.errors import Misreported
    from ledger.log.follow import Follower
    from ledger.log.monitor import MonitorState

    data = json.loads(open(sys.argv[1]).read())

    class Source:
        def __init__(self, tamper=False):
            self.tamper = tamper
        def checkpoint(self):
            return data["checkpoint"]
        def export(self, start, end):
            return (line.encode() for line in data["lines"][start:end])
        def consistency(self, first, second):
            raise AssertionError("no state given")
        def inclusion(self, leaf_hash, tree_size):
            return data["inclusion"][leaf_hash]
        def projects(self):
            doc = json.loads(json.dumps(data["projects"]))
            if self.tamper:
                doc["projects"][0]["raised"] = "0.01"
            return doc
        def receipt(self, leaf_hash):
            return data["receipts"][leaf_hash]

    report = audit_remote(Source(), data["log_key"], receipts=None, rng=random.Random(3))
    assert report.entries == len(data["lines"]) and report.receipts_checked == report.donations > 0, report
    try:
        audit_remote(Source(tamper=True), data["log_key"])
    except Misreported as exc:
        assert "raised" in exc.detail
    else:
        raise SystemExit("a misreported total passed")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("standalone ok", report.entries)
    """
)


def test_the_remote_audit_core_runs_without_the_server_stack_or_an_http_client(tmp_path):
    """A whole remote audit over an in-memory source, in an interpreter where the
    server stack, SQLite and the HTTP clients cannot be imported."""
    from api_helpers import ApiFactory
    from remote_servers import Servers

    factory = ApiFactory(tmp_path)
    try:
        path, _ = Servers(factory).instance("inst", demo=10)
        client = factory.app({}, path=path).test_client()
        log = client.get("/v1/export").get_data().decode().splitlines()
        note = client.get("/v1/checkpoint").get_data().decode()
        size = len(log)
        leaves = [json.loads(client.get(f"/v1/entries/{s}").get_data())["leaf_hash"] for s in range(size)]
        data = {
            "lines": log, "checkpoint": note, "log_key": client.get("/v1/log/key").get_data().decode().strip(),
            "projects": client.get("/v1/projects").get_json(),
            "inclusion": {h: client.get(f"/v1/proofs/inclusion?leaf_hash={h}&tree_size={size}").get_json()
                          for h in leaves},
            "receipts": {h: client.get(f"/v1/receipts/{h}").get_json() for h in leaves if '"kind":"donation"' in
                         log[leaves.index(h)]},
        }
    finally:
        factory.close()
    (tmp_path / "log.json").write_text(json.dumps(data))
    (tmp_path / "check.py").write_text(STANDALONE)
    run = subprocess.run(
        [sys.executable, str(tmp_path / "check.py"), str(tmp_path / "log.json")],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == f"standalone ok {size}"
