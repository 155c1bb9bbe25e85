"""``luodi verify-receipt --tiles``: a receipt proven from C2SP tlog-tiles, and the witness policy of
the donor's check.

The receipt is the real app's JSON for a demo gift that paid for disbursements; the tiles are the
log's own (written by :func:`ledger.log.tiles.export_tiles`, as ``luodi tiles export`` does).
Failures: a tile served wrong, the tiles' checkpoint by another key, a gift that is not in the
tiles' tree, a receipt from a fork, a checkpoint without the witness quorum; and tiles behind the
receipt (exit 2: they cannot prove it, which says nothing against it).
tests/test_verify_receipt_tiles_served.py does it over HTTP from real gunicorn.

SQLite only: the check reads a receipt and tiles, whichever database the log is kept in.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from tile_helpers import cosign, export_folder

from api import create_app
from api.cli import main
from api.instance import init_instance, open_instance
from ledger.charity.demo import seed_demo
from ledger.log.cosignature import Cosigner
from ledger.log.note import Signer, parse_note

W = [Cosigner.generate(f"witness.example/w{i}") for i in (1, 2, 3)]
WITNESSES = [a for w in W for a in ("--witness", w.verifier.to_string())]


def verify(*args):
    return CliRunner().invoke(main, ["verify-receipt", *map(str, args)], catch_exceptions=False)


def receipt_of(instance, leaf: str) -> dict:
    client = create_app({"TESTING": True, "INSTANCE": str(instance)}).test_client()
    resp = client.get(f"/v1/receipts/{leaf}")
    assert resp.status_code == 200, resp.data
    return resp.get_json()


def _copy_instance(src, dst):
    dst.mkdir(mode=0o700)
    for f in ("luodi.sqlite", "log.key"):
        shutil.copy2(src / f, dst / f)
    return dst


def _notes(instance, text: str, n: int) -> None:
    cl = open_instance(instance)
    try:
        cl.ledger.append_batch([("note", {"text": f"{text} {i}"}) for i in range(n)])
    finally:
        cl.stores.close()


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """The demo (265 entries) with its tiles; a spent gift's receipt file; the log grown to 270
    (tiles too); and a fork of it: 265 entries, then a gift only the fork has, then notes (270)."""
    root = tmp_path_factory.mktemp("receipt-tiles")
    inst = root / "inst"
    cl = init_instance(inst).charity
    try:
        seed_demo(cl, donations=250, keys_dir=inst / "demo-keys")
        key = cl.ledger.verifier.to_string()
        first = next(e for e in cl.ledger.export() if b'"kind":"donation"' in e)
    finally:
        cl.stores.close()
    from ledger.log.merkle import leaf_hash

    doc = receipt_of(inst, leaf_hash(first).hex())
    assert len(doc["allocation"]) >= 1 and doc["tree_size"] == 265
    (root / "gift.json").write_text(json.dumps(doc))
    export_folder(inst, root / "tiles")
    grown = _copy_instance(inst, root / "grown")
    _notes(grown, "grown", 5)
    export_folder(grown, root / "grown-tiles")
    fork = _copy_instance(inst, root / "fork")
    cl = open_instance(fork)
    try:
        project = doc["entry"]["entry"]["body"]["project"]
        gift = cl.record_donation(project, "1.00", "cash", payment_ref="FORK-1", donor_ref="fork-donor",
                                  value_date="2026-11-28", intake_key="fork-only").entry.receipt
    finally:
        cl.stores.close()
    _notes(fork, "forked", 4)
    (root / "fork-gift.json").write_text(json.dumps(receipt_of(fork, gift)))
    (root / "fork-old-gift.json").write_text(json.dumps(receipt_of(fork, doc["entry"]["leaf_hash"])))
    return root, key, doc


@pytest.fixture
def tiles(log, tmp_path):
    root, key, doc = log
    shutil.copytree(root / "tiles", tmp_path / "tiles")
    return tmp_path / "tiles"


def _failed(result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_the_gift_and_what_it_paid_for_are_proven_from_tiles(log):
    root, key, doc = log
    done = verify(root / "gift.json", "--log-key", key, "--tiles", root / "tiles", "--json")
    assert done.exit_code == 0, done.output
    r = json.loads(done.stdout)
    seqs = [doc["leaf_index"]] + [a["leaf_index"] for a in doc["allocation"]]
    assert r["tiles"]["entries_proven"] == seqs and r["tiles"]["tree_size"] == 265
    assert r["tiles"]["consistent_from"] == 265
    assert r["tiles"]["requests"] == 4  # the checkpoint, two level-0 tiles and the level-1 tile
    words = verify(root / "gift.json", "--log-key", key, "--tiles", root / "tiles")
    assert words.exit_code == 0, words.output
    assert (f"from tiles at {root / 'tiles'}: the checkpoint there (tree size 265, root {r['tiles']['root']}) is signed "
            f"by the pinned key, proves seq {', '.join(map(str, seqs))} included") in words.stdout
    # a log that grew since the receipt: proven consistent with the receipt's checkpoint
    grown = json.loads(verify(root / "gift.json", "--log-key", key, "--tiles", root / "grown-tiles", "--json").stdout)
    assert grown["tiles"]["tree_size"] == 270 and grown["tiles"]["consistent_from"] == 265


def test_a_tile_served_wrong_fails(log, tiles):
    root, key, _ = log
    data = bytearray((tiles / "tile/1/000.p/1").read_bytes())
    data[7] ^= 0x10
    (tiles / "tile/1/000.p/1").write_bytes(bytes(data))
    _failed(verify(root / "gift.json", "--log-key", key, "--tiles", tiles), 1, "receipt invalid: ", "tile/1/000.p/1",
            "do not fold to the root")


def test_the_tiles_checkpoint_by_another_key_fails(log, tiles):
    root, key, doc = log
    note = (tiles / "checkpoint").read_text()
    text = parse_note(note).text
    (tiles / "checkpoint").write_text(text + "\n" + Signer.generate(text.split("\n")[0]).signature_line(text))
    _failed(verify(root / "gift.json", "--log-key", key, "--tiles", tiles), 1,
            "tiles.checkpoint: the checkpoint of the tiles does not verify with the pinned key")


def test_a_gift_not_in_the_tiles_tree_and_a_receipt_from_a_fork_fail(log):
    root, key, _ = log
    _failed(verify(root / "fork-gift.json", "--log-key", key, "--tiles", root / "grown-tiles"), 1,
            "tiles.inclusion: seq 265", "is not in the tiles' tree of size 270")
    _failed(verify(root / "fork-old-gift.json", "--log-key", key, "--tiles", root / "grown-tiles"), 1,
            "tiles.consistency: the receipt's checkpoint (tree size 270) is not in the history")
    # both receipts check out offline: only the tiles show the fork
    assert verify(root / "fork-gift.json", "--log-key", key).exit_code == 0


def test_tiles_behind_the_receipt_cannot_prove_it(log):
    root, key, _ = log
    _failed(verify(root / "fork-gift.json", "--log-key", key, "--tiles", root / "tiles"), 2,
            "the tiles' checkpoint is at tree size 265, behind the receipt's 270")
    _failed(verify(root / "gift.json", "--log-key", key, "--tiles", root / "nowhere"), 2, "neither an http")


def test_the_witness_quorum_on_the_tiles_checkpoint_and_offline(log, tiles):
    root, key, _ = log
    note = (tiles / "checkpoint").read_text()
    (tiles / "checkpoint").write_text(cosign(note, W[0], W[1]))
    done = verify(root / "gift.json", "--log-key", key, "--tiles", tiles, *WITNESSES, "--quorum", "2")
    assert done.exit_code == 0, done.output
    assert ("witnesses: cosigned by witness.example/w1, witness.example/w2; the policy needs 2 of "
            "(witness.example/w1, witness.example/w2, witness.example/w3)") in done.stdout
    (tiles / "checkpoint").write_text(cosign(note, W[2]))
    _failed(verify(root / "gift.json", "--log-key", key, "--tiles", tiles, *WITNESSES, "--quorum", "2"), 1,
            "receipt invalid: checkpoint of size 265 is cosigned by 1 of the policy's witnesses (witness.example/w3); "
            "the policy needs 2 of")
    # offline, the receipt's own checkpoint must meet it: the log alone signed this one
    r = verify(root / "gift.json", "--log-key", key, *WITNESSES, "--quorum", "1", "--json")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["part"] == "witnesses"
    assert "cosigned by 0 of the policy's witnesses (none)" in json.loads(r.stdout)["detail"]
    # a receipt whose checkpoint carries the quorum passes offline
    doc = json.loads((root / "gift.json").read_text())
    doc["checkpoint"] = cosign(doc["checkpoint"], W[0], W[1], W[2])
    (tiles.parent / "cosigned.json").write_text(json.dumps(doc))
    assert verify(tiles.parent / "cosigned.json", "--log-key", key, *WITNESSES).exit_code == 0
    _failed(verify(root / "gift.json", "--log-key", key, "--quorum", "1"), 2, "--quorum needs the --witness keys")
