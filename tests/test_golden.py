"""Golden vectors: the exact bytes, hashes, proofs and signed checkpoints of a fixed ledger.

The ledger below is built from fixed inputs only (a signer from a fixed seed, a
fixed clock, fixed batches), so every value it produces is pinned in
``tests/golden/ledger_v1.json``.  A change to any of them changes the encoding
that receipts, proofs and checkpoints already handed out depend on: that is
a format break, never a refactoring.

The expected values were computed once from the code and are cross-checked
here against independent derivations: ``rfc8785`` for the canonical bytes,
``hashlib`` for leaf hashes, the naive RFC 9162 reference of
``tests/test_merkle.py`` for roots and proofs, and ``cryptography``'s Ed25519
for the checkpoint signatures.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from conftest import FixedClock
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from test_merkle import MTH, PATH, PROOF

from ledger.log import merkle
from ledger.log.ledger import Ledger
from ledger.log.checkpoint import open_checkpoint
from ledger.log.note import Signer

GOLDEN = json.loads((Path(__file__).parent / "golden" / "ledger_v1.json").read_text(encoding="utf-8"))

ORIGIN = "golden.luodi.example/log"
SEED = bytes(range(32))
START_MS = 1_790_000_000_000  # 2026-09-21T14:13:20.000Z
BATCHES = [
    ["gift 1: 100.00 CNY to rural online teaching", "gift 2: 5.20 CNY via wechat", "gift 3: 88 CNY"],
    ['\u843d\u5730 "landed" \\ caf\u00e9 \U0001f381'],
    ["policy: fifo allocation", "correction pending", "gift 7", "gift 8"],
    ["winter relief", "gift 10: \u00a51,000"],
]
INCLUSION = [(0, 1), (0, 11), (4, 5), (5, 11), (10, 11), (3, 9), (8, 9), (6, 7)]
CONSISTENCY = [(1, 11), (4, 11), (5, 9), (9, 11), (3, 7), (4, 5), (6, 8), (11, 11)]


def golden_signer() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))


def build(make_ledger) -> Ledger:
    ledger = make_ledger("golden", clock=FixedClock(START_MS), signer_=golden_signer())
    for batch in BATCHES:
        ledger.append_batch([("note", {"text": text}) for text in batch])
    return ledger


@pytest.fixture
def golden_ledger(make_ledger) -> Ledger:
    return build(make_ledger)


@pytest.fixture
def independent_entries():
    """The entries' canonical bytes rebuilt with rfc8785 alone, from the inputs and the pinned times."""
    pub = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    bodies = [("genesis", {"origin": ORIGIN, "log_key": _vkey(pub), "hash": "sha256", "allocation": "fifo"})]
    bodies += [("note", {"text": text}) for batch in BATCHES for text in batch]
    out, prev = [], "0" * 64
    for seq, ((kind, body), want) in enumerate(zip(bodies, GOLDEN["entries"], strict=True)):
        data = rfc8785.dumps({"seq": seq, "prev": prev, "time": want["time"], "kind": kind, "body": body})
        out.append(data)
        prev = hashlib.sha256(b"\x00" + data).hexdigest()
    return out


def _vkey(pub: bytes) -> str:
    kid = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + pub).digest()[:4]
    return ORIGIN + "+" + kid.hex() + "+" + base64.b64encode(b"\x01" + pub).decode()


# -- the golden values are right (independent derivations) ---------------------------------


def test_golden_verifier_key_is_derived_from_the_seed():
    pub = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert GOLDEN["verifier_key"] == _vkey(pub)


def test_golden_times_follow_the_fixed_clock():
    # One clock reading per batch (genesis, then each batch), one millisecond apart.
    times = [e["time"] for e in GOLDEN["entries"]]
    assert times[0] == "2026-09-21T14:13:20.000Z"
    sizes = [1] + [len(b) for b in BATCHES]
    want = [f"2026-09-21T14:13:20.{i:03d}Z" for i, n in enumerate(sizes) for _ in range(n)]
    assert times == want


def test_golden_leaf_hashes_and_bytes_match_rfc8785(independent_entries):
    for seq, data in enumerate(independent_entries):
        assert GOLDEN["entries"][seq]["leaf_hash"] == hashlib.sha256(b"\x00" + data).hexdigest(), seq
    for seq, text in GOLDEN["canonical"].items():
        assert text.encode("utf-8") == independent_entries[int(seq)]


def test_golden_roots_and_proofs_match_the_reference(independent_entries):
    D = independent_entries
    for cp in GOLDEN["checkpoints"]:
        assert base64.b64decode(cp["root"]) == MTH(D[: cp["size"]])
    for case in GOLDEN["inclusion"]:
        assert [h.hex() for h in PATH(case["index"], D[: case["size"]])] == case["proof"]
    for case in GOLDEN["consistency"]:
        assert [h.hex() for h in PROOF(case["size1"], D[: case["size2"]])] == case["proof"]


def test_golden_checkpoint_notes_are_signed_by_the_seed():
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    pub = key.public_key()
    kid = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()[:4]
    for cp in GOLDEN["checkpoints"]:
        text = f"{ORIGIN}\n{cp['size']}\n{cp['root']}\n"
        prefix = text + "\n\u2014 " + ORIGIN + " "
        assert cp["note"].startswith(prefix) and cp["note"].endswith("\n")
        raw = base64.b64decode(cp["note"][len(prefix) : -1], validate=True)
        assert raw[:4] == kid
        pub.verify(raw[4:], text.encode())  # raises InvalidSignature if wrong
        assert raw[4:] == key.sign(text.encode())  # Ed25519 is deterministic


# -- the code reproduces the golden values ----------------------------------------------------


def test_golden_ledger_entries(golden_ledger):
    assert golden_ledger.size() == len(GOLDEN["entries"]) == 11
    assert golden_ledger.verifier.to_string() == GOLDEN["verifier_key"]
    assert golden_ledger.genesis.body["log_key"] == GOLDEN["verifier_key"]
    for seq, want in enumerate(GOLDEN["entries"]):
        e = golden_ledger.entry(seq)
        assert e.time == want["time"], seq
        assert e.leaf_hash.hex() == want["leaf_hash"], seq
        assert e.receipt == want["leaf_hash"], seq
    for seq, text in GOLDEN["canonical"].items():
        assert golden_ledger.entry(int(seq)).canonical == text.encode("utf-8")


def test_golden_ledger_checkpoints(golden_ledger):
    assert [cp["size"] for cp in GOLDEN["checkpoints"]] == [1, 4, 5, 9, 11]
    for cp in GOLDEN["checkpoints"]:
        assert base64.b64encode(golden_ledger.root(cp["size"])).decode() == cp["root"]
        assert golden_ledger.checkpoint(cp["size"]) == cp["note"]
        opened = open_checkpoint(cp["note"], golden_ledger.verifier)
        assert (opened.size, base64.b64encode(opened.root).decode()) == (cp["size"], cp["root"])
    assert golden_ledger.checkpoint() == GOLDEN["checkpoints"][-1]["note"]


def test_golden_ledger_proofs(golden_ledger):
    assert [(c["index"], c["size"]) for c in GOLDEN["inclusion"]] == INCLUSION
    assert [(c["size1"], c["size2"]) for c in GOLDEN["consistency"]] == CONSISTENCY
    for case in GOLDEN["inclusion"]:
        proof = golden_ledger.inclusion_proof(case["index"], case["size"])
        assert [h.hex() for h in proof] == case["proof"], case
        merkle.verify_inclusion(
            bytes.fromhex(GOLDEN["entries"][case["index"]]["leaf_hash"]),
            case["index"],
            case["size"],
            proof,
            golden_ledger.root(case["size"]),
        )
    for case in GOLDEN["consistency"]:
        proof = golden_ledger.consistency_proof(case["size1"], case["size2"])
        assert [h.hex() for h in proof] == case["proof"], case
        merkle.verify_consistency(
            case["size1"], case["size2"], golden_ledger.root(case["size1"]), golden_ledger.root(case["size2"]), proof
        )


def test_golden_signer_key_string():
    s = golden_signer()
    name_and_id = "+".join(GOLDEN["verifier_key"].split("+", 2)[:2])
    assert s.to_string() == "PRIVATE+KEY+" + name_and_id + "+" + base64.b64encode(b"\x01" + SEED).decode()
    assert Signer.from_string(s.to_string()).verifier.to_string() == GOLDEN["verifier_key"]
