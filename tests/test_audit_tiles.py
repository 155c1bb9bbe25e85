"""``luodi audit --tiles``: the audit from C2SP tlog-tiles alone, and the witness policy of the audits.

A real demo log of 265 entries (a full level-0 tile and bundle, a partial one of 9, a partial
level-1 tile) is written out as tiles with the exporter's own function
(:func:`ledger.log.tiles.export_tiles`, what ``luodi tiles export`` writes) and audited from
the folder; then every kind of tile served wrong, a checkpoint by another key, a log that
shrank or forked under ``--state``, and checkpoints with and without a witness quorum.
tests/test_audit_tiles_served.py audits the same way over HTTP from real gunicorn.

SQLite only: the audit reads tiles, whichever database the log they came from is kept in.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from tile_helpers import cosign, export_folder

from api.cli import main
from api.instance import init_instance, open_instance
from ledger.charity.demo import seed_demo
from ledger.log.cosignature import Cosigner
from ledger.log.note import Signer, parse_note

W = [Cosigner.generate(f"witness.example/w{i}") for i in (1, 2, 3)]
WKEYS = [w.verifier.to_string() for w in W]


def audit(*args):
    return CliRunner().invoke(main, ["audit", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """The demo instance (kept at 265 entries), its tiles folder and its pinned key."""
    root = tmp_path_factory.mktemp("audit-tiles")
    cl = init_instance(root / "inst").charity
    try:
        seed_demo(cl, donations=250, keys_dir=root / "inst" / "demo-keys")
        key = cl.ledger.verifier.to_string()
    finally:
        cl.stores.close()
    size, note = export_folder(root / "inst", root / "tiles")
    assert size == 265
    return root, key, note


@pytest.fixture
def tiles(log, tmp_path):
    """A copy of the tiles folder that a test may damage."""
    root, key, note = log
    shutil.copytree(root / "tiles", tmp_path / "tiles")
    return tmp_path / "tiles", key, note


def _failed(result, code: int, *needles: str) -> str:
    """Exit ``code``, nothing on stdout, and one line on stderr (beside the progress lines) saying why."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = [x for x in result.stderr.splitlines() if not x.startswith("followed ")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_a_clean_log_audits_from_its_tiles_alone(log):
    root, key, note = log
    done = audit("--tiles", root / "tiles", "--log-key", key, "--json")
    assert done.exit_code == 0, done.output
    r = json.loads(done.stdout)
    assert r["ok"] and r["mode"] == "tiles" and r["entries"] == 265 and r["checkpoint"]["note"] == note
    assert (r["projects"], r["donations"], r["disbursements"], r["refunds"]) == (4, 250, 4, 1)
    assert r["inclusion_proofs_checked"] == 100 and r["receipts_checked"] == 0
    # the checkpoint, two bundles, two level-0 tiles and the level-1 tile: each read once
    assert r["requests"] == 6
    # the same books as the audit of the database file itself
    db = json.loads(audit("--db", root / "inst" / "luodi.sqlite", "--log-key", key, "--json").stdout)
    assert (db["entries"], db["donations"], db["checkpoint"]["root"]) == (265, 250, r["checkpoint"]["root"])
    words = audit("--tiles", root / "tiles", "--log-key", key)
    assert "ok: 265 entries verified" in words.output
    assert "tiles equal the log: every entry bundle against its level-0 tile" in words.output


def _flip(path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, code, needles", [
    (lambda d: _flip(d / "tile/0/000", 100 * 32 + 5), 1,
     ["tile/0/000 (seq 0 to 255)", "does not hash to hash 0 of its tile at level 1"]),
    (lambda d: _flip(d / "tile/0/001.p/9", 3), 1, ["tile/0/001.p/9", "do not fold to the root"]),
    (lambda d: _flip(d / "tile/1/000.p/1", 0), 1, ["tile/1/000.p/1", "do not fold to the root"]),
    (lambda d: (d / "tile/0/000").write_bytes((d / "tile/0/000").read_bytes()[:-32]), 1,
     ["tile/0/000 (seq 0 to 255)", "is 8160 bytes"]),
    (lambda d: _flip(d / "tile/entries/001.p/9", 40), 1, ["seq 256", "does not hash to its leaf hash"]),
    (lambda d: (d / "tile/entries/000").write_bytes((d / "tile/entries/000").read_bytes() + b"\x00"),
     1, ["tile/entries/000 (seq 0 to 255)", "a length prefix is cut off"]),
    (lambda d: (d / "tile/entries/001.p/9").unlink(), 2, ["tile/entries/001.p/9: the log does not serve it"]),
    (lambda d: (d / "checkpoint").unlink(), 2, ["no checkpoint is served"]),
], ids=["level-0 tile", "partial level-0 tile", "level-1 tile", "short tile", "entry bytes", "bundle trailing bytes",
        "bundle missing", "no checkpoint"])
def test_every_tile_and_bundle_served_wrong_fails(tiles, damage, code, needles):
    folder, key, _ = tiles
    damage(folder)
    line = _failed(audit("--tiles", folder, "--log-key", key), code, *needles)
    assert line.startswith("audit FAILED: " if code == 1 else "error: ")


def test_a_checkpoint_by_another_key_fails(tiles):
    folder, key, note = tiles
    text = parse_note(note).text
    (folder / "checkpoint").write_text(text + "\n" + Signer.generate(text.split("\n")[0]).signature_line(text))
    _failed(audit("--tiles", folder, "--log-key", key), 1, "does not verify with the pinned log key")
    other = Signer.generate("another.example/log").verifier.to_string()
    _failed(audit("--tiles", folder, "--log-key", other), 1, "does not verify with the pinned log key")


def _grow(instance, text: str, n: int = 5) -> None:
    cl = open_instance(instance)
    try:
        cl.ledger.append_batch([("note", {"text": f"{text} {i}"}) for i in range(n)])
    finally:
        cl.stores.close()


def _copy_instance(src, dst):
    dst.mkdir(mode=0o700)
    for f in ("luodi.sqlite", "log.key"):
        shutil.copy2(src / f, dst / f)
    return dst


def test_state_grows_with_a_consistency_proof_from_tiles_and_catches_shrink_and_fork(log, tmp_path):
    root, key, _ = log
    state = tmp_path / "state.json"
    first = audit("--tiles", root / "tiles", "--log-key", key, "--state", state)
    assert first.exit_code == 0 and "state: started at tree size 265" in first.output, first.output
    grown = _copy_instance(root / "inst", tmp_path / "grown")
    _grow(grown, "grown")
    export_folder(grown, tmp_path / "grown-tiles")
    second = audit("--tiles", tmp_path / "grown-tiles", "--log-key", key, "--state", state)
    assert second.exit_code == 0, second.output
    assert "state: advanced from tree size 265 to 270, consistency proven" in second.output
    assert json.loads(state.read_text())["tree_size"] == 270
    # the old tiles (265) after 270 was seen: the log shrank
    _failed(audit("--tiles", root / "tiles", "--log-key", key, "--state", state), 1, "the log shrank", "265", "270")
    # another history of 265 + 7 entries under the same key: a fork
    forked = _copy_instance(root / "inst", tmp_path / "forked")
    _grow(forked, "forked", 7)
    export_folder(forked, tmp_path / "forked-tiles")
    _failed(audit("--tiles", tmp_path / "forked-tiles", "--log-key", key, "--state", state), 1,
            "seq 269", "the log was rewritten")
    assert json.loads(state.read_text())["tree_size"] == 270  # a failed audit writes no state


def test_a_witness_quorum_passes_and_its_lack_fails_in_one_line(tiles, tmp_path):
    folder, key, note = tiles
    witnesses = [a for k in WKEYS for a in ("--witness", k)]
    (folder / "checkpoint").write_text(cosign(note, W[0], W[2]))
    done = audit("--tiles", folder, "--log-key", key, *witnesses, "--quorum", "2", "--json")
    assert done.exit_code == 0, done.output
    r = json.loads(done.stdout)
    assert sorted(r["witnesses"]["cosigned"]) == ["witness.example/w1", "witness.example/w3"]
    assert r["witnesses"]["policy"] == "2 of (witness.example/w1, witness.example/w2, witness.example/w3)"
    # the default quorum is all of the witnesses given
    _failed(audit("--tiles", folder, "--log-key", key, *witnesses), 1,
            "is cosigned by 2 of the policy's witnesses (witness.example/w1, witness.example/w3)",
            "the policy needs 3 of (witness.example/w1, witness.example/w2, witness.example/w3)")
    (folder / "checkpoint").write_text(cosign(note, W[1]))
    _failed(audit("--tiles", folder, "--log-key", key, *witnesses, "--quorum", "2"), 1,
            "audit FAILED: checkpoint of size 265 is cosigned by 1 of the policy's witnesses (witness.example/w2); "
            "the policy needs 2 of")
    policy = tmp_path / "policy.txt"
    policy.write_text(f"log {key}\n" + "".join(f"witness w{i} {k}\n" for i, k in enumerate(WKEYS, 1))
                      + "group two 2 w1 w2 w3\nquorum two\n")
    _failed(audit("--tiles", folder, "--log-key", key, "--policy", policy), 1, "cosigned by 1", "(w2)")
    policy.write_text(policy.read_text().replace("group two 2", "group two any"))
    assert audit("--tiles", folder, "--log-key", key, "--policy", policy).exit_code == 0
    # a known witness's cosignature that does not verify is a failure, not an unknown line
    text = parse_note(note).text
    forged = W[1].cosign(text.replace("265", "266"), 1764633600)
    (folder / "checkpoint").write_text(note + forged)
    _failed(audit("--tiles", folder, "--log-key", key, *witnesses, "--quorum", "1"), 1, "does not verify")


@pytest.mark.parametrize("args, needle", [
    (["--quorum", "1"], "--quorum needs the --witness keys"),
    (["--witness", WKEYS[0], "--quorum", "2"], "the quorum must be between 1 and the number of witnesses (1)"),
    (["--witness", WKEYS[0], "--quorum", "0"], "the quorum must be between 1"),
    (["--witness", "KEY"], "--witness/--quorum"),
    (["--witness", WKEYS[0], "--policy", "policy.txt"], "not both"),
    (["--policy", "/nonexistent/policy"], "cannot read the policy file"),
], ids=["quorum alone", "quorum too high", "quorum 0", "malformed", "both", "no file"])
def test_witness_options_refused_with_exit_2(log, args, needle):
    root, key, _ = log
    _failed(audit("--tiles", root / "tiles", "--log-key", key, *args), 2, needle)


def test_a_log_key_is_not_a_witness_key_and_a_policy_must_name_the_pinned_log(log, tmp_path):
    root, key, _ = log
    _failed(audit("--tiles", root / "tiles", "--log-key", key, "--witness", key), 2, "a witness key must be 0x04")
    policy = tmp_path / "policy.txt"
    other = Signer.generate("another.example/log").verifier.to_string()
    policy.write_text(f"log {other}\nwitness w1 {WKEYS[0]}\nquorum w1\n")
    _failed(audit("--tiles", root / "tiles", "--log-key", key, "--policy", policy), 2, "is not one of them")
    policy.write_text("witness w1 {WKEYS[0]}\n")
    _failed(audit("--tiles", root / "tiles", "--log-key", key, "--policy", policy), 2, "policy line 1")
    _failed(audit("--db", root / "inst" / "luodi.sqlite", "--log-key", key, "--witness", WKEYS[0]), 2,
            "needs --url or --tiles")
    _failed(audit("--tiles", root / "tiles", "--url", "http://127.0.0.1:9", "--log-key", key), 2, "give one of")
