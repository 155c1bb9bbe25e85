"""The 65,535-byte entry limit (C2SP tlog-tiles: an entry bundle carries each entry's
length as a uint16): refused at append, single or batch, with nothing written, on every
backend; an older entry over it (written into the database directly, as a log from
before the limit holds it) is a warning of ``luodi verify``, and ``luodi tiles export``
refuses such a log naming the seq."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from api_helpers import assert_problem, close_app
from click.testing import CliRunner
from conftest import REGISTRY, FixedClock
from factories import PERIOD

from api import create_app
from api.cli import main
from api.instance import DB_NAME, KEY_NAME, init_instance, open_instance
from ledger.charity import payload as P
from ledger.charity.kinds import DISBURSEMENT, postings_for
from ledger.errors import EntryTooLarge
from ledger.log.checkpoint import Checkpoint
from ledger.log.clock import utc_now
from ledger.log.entry import body_bytes, seal
from ledger.log.keyfile import read_key_file
from ledger.log.kinds import Registry
from ledger.log.ledger import Ledger
from ledger.log.merkle import Frontier, pack_nodes
from ledger.log.note import Signer
from ledger.log.tiles import MAX_ENTRY_BYTES

TIME = "2026-12-02T00:00:00.000Z"  # any time: RFC 3339 with milliseconds is fixed-width


def sized_disbursement(signers, want: int, seq: int, prev: str, charity: str, project: str, **kw) -> dict:
    """A signed disbursement body (payload and signatures) whose entry at ``seq`` after
    ``prev`` is exactly ``want`` bytes of canonical JSON (with its postings)."""
    evidence = [(hashlib.sha256(b"%d" % i).hexdigest(), "scan of receipt " + "e" * 480) for i in range(100)]
    lines, purpose = 3, 1000
    kw.setdefault("payee", "Lanzhou Warm Textiles Co., Ltd.")
    for _ in range(20):
        payload = P.disbursement(
            charity=charity, project=project, currency="CNY", purpose="p" * purpose, period=PERIOD,
            lines=[(f"line {i} " + "l" * 480, "0.01") for i in range(lines)], evidence=evidence, **kw,
        )
        body = {"payload": payload, "signatures": [P.sign(payload, s) for s in signers]}
        full = dict(body, postings=postings_for(DISBURSEMENT, body))
        size = len(seal(seq, prev, TIME, DISBURSEMENT, full, body_bytes(DISBURSEMENT, full, REGISTRY)).canonical)
        if size == want:
            return body
        if 1 <= purpose + want - size <= 2000:
            purpose += want - size
        else:
            lines += (want - size) // 500
    raise AssertionError("no disbursement of that size")


# -- at append, in the log core, on every backend -------------------------------------------------

BLOBS = Registry({"blob": lambda body: None})  # a personality whose entries may be as large as a body may


@pytest.fixture
def blob_log(backend):
    stores = backend.open("blobs", upgrade=True)
    try:
        yield Ledger.create(stores.log, BLOBS, Signer.generate("blobs.example/log"), clock=FixedClock())
    finally:
        stores.close()


def blob(ledger: Ledger, entry_bytes: int) -> dict:
    """A blob body whose entry, appended next, is ``entry_bytes`` long."""
    seq, prev = ledger.size(), ledger.entry(ledger.size() - 1).receipt
    overhead = len(seal(seq, prev, TIME, "blob", {"text": ""}, b'{"text":""}').canonical)
    return {"text": "x" * (entry_bytes - overhead)}


def test_the_log_refuses_an_entry_over_the_limit_and_writes_nothing(blob_log):
    ledger = blob_log
    before = (ledger.size(), ledger.checkpoint())
    with pytest.raises(EntryTooLarge, match="would be 65,536 bytes of canonical JSON, over the 65,535-byte limit"):
        ledger.append("blob", blob(ledger, MAX_ENTRY_BYTES + 1))
    with pytest.raises(EntryTooLarge):  # a batch: all or nothing
        ledger.append_batch([("blob", {"text": "small"}), ("blob", blob(ledger, MAX_ENTRY_BYTES + 100))])
    with pytest.raises(EntryTooLarge), ledger.writer() as w:  # the batch path of the intake
        w.append_many_checked([("blob", body, body_bytes("blob", body, BLOBS))
                               for body in ({"text": "small"}, blob(ledger, MAX_ENTRY_BYTES + 1))])
    assert (ledger.size(), ledger.checkpoint()) == before
    entry = ledger.append("blob", blob(ledger, MAX_ENTRY_BYTES))  # the limit itself is fine
    assert len(entry.canonical) == MAX_ENTRY_BYTES and ledger.size() == before[0] + 1
    assert EntryTooLarge.status == 422 and EntryTooLarge("x").type == "/problems/entry-too-large"


# -- an older entry over the limit: luodi verify warns, luodi tiles export refuses ---------------


def test_verify_warns_of_an_older_entry_over_the_limit_and_export_refuses_the_log(tmp_path):
    instance = tmp_path / "instance"
    init_instance(instance)
    db_path, key_path = instance / DB_NAME, instance / KEY_NAME
    cl = open_instance(instance, with_key=False)
    try:
        rows = list(cl.ledger.store.iter_entries())
        origin = cl.ledger.origin
    finally:
        cl.stores.close()
    seq, prev = len(rows), rows[-1][1].hex()
    charity = Signer.generate("hope/finance-1")
    body = sized_disbursement([charity], MAX_ENTRY_BYTES + 100, seq, prev, "hope", "winter-coats")
    body["postings"] = postings_for(DISBURSEMENT, body)
    entry = seal(seq, prev, utc_now(), DISBURSEMENT, body, body_bytes(DISBURSEMENT, body, REGISTRY))
    assert len(entry.canonical) == MAX_ENTRY_BYTES + 100
    frontier = Frontier()
    for row in rows:
        frontier.append(row[1])
    made = frontier.append(entry.leaf_hash)
    note = Checkpoint(origin, seq + 1, frontier.root()).sign(read_key_file(key_path))
    with sqlite3.connect(db_path) as db:  # past the API and the log core: the triggers allow appends
        db.execute("INSERT INTO entries (seq, leaf_hash, tree, canonical) VALUES (?, ?, ?, ?)",
                   (seq, entry.leaf_hash, pack_nodes(made), entry.canonical))
        db.execute("INSERT INTO checkpoints (tree_size, note) VALUES (?, ?)", (seq + 1, note))
    db.close()
    done = CliRunner().invoke(main, ["verify", "--instance", str(instance)])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"ok: {seq + 1} entries")
    assert done.stderr == f"warning: seq {seq} is 65,635 bytes, over the 65,535-byte entry limit of tiles\n"
    done = CliRunner().invoke(main, ["tiles", "export", "--instance", str(instance), str(tmp_path / "www")])
    assert done.exit_code == 2
    assert done.output == (f"Error: seq {seq} is 65,635 bytes, over the 65,535-byte limit of an entry bundle "
                           "(C2SP tlog-tiles): this log cannot be served as tiles\n")
    assert not (tmp_path / "www" / "checkpoint").exists()
    app = create_app({"TESTING": True, "INSTANCE": str(instance), "RATELIMIT_ENABLED": False})
    try:
        bundle = app.test_client().get(f"/tile/entries/000.p/{seq + 1}")
        assert_problem(bundle, 422, "entry-too-large")
        assert app.test_client().get(f"/tile/0/000.p/{seq + 1}").status_code == 200  # its leaf hash is served
    finally:
        close_app(app)
