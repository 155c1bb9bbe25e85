"""The verifiers' C2SP golden vectors (tests/golden/cosignature.json, tiles.json) against the Python
modules: the files are still what the modules make, byte for byte, and every verdict in them is the
modules' own.  The browser's twins are held to the same files in tests/test_page_tiles_vectors.py.
"""

from __future__ import annotations

import base64
import json

import pytest
from golden_c2sp import GOLDEN, cosignature_vectors, tile_vectors

from ledger.errors import MalformedNote, ProofError, QuorumNotMet, SignatureError
from ledger.log.cosignature import CosignatureVerifier, cosignature_key_id, signed_message
from ledger.log.merkle import leaf_hash, verify_inclusion
from ledger.log.merkle import root as merkle_root
from ledger.log.note import Verifier, parse_note
from ledger.log.policy import Policy
from ledger.log.tiles import parse_tile_path

COSIG = json.loads((GOLDEN / "cosignature.json").read_text(encoding="utf-8"))


def test_the_cosignature_file_is_what_the_modules_make():
    assert json.loads(json.dumps(cosignature_vectors())) == COSIG


def test_key_ids_and_signed_messages():
    text = parse_note(COSIG["checkpoint"]).text
    for w in COSIG["witnesses"]:
        v = CosignatureVerifier.from_string(w["vkey"])
        assert cosignature_key_id(v.name, v.public_key).hex() == w["key_id"] == w["vkey"].split("+")[1]
        assert base64.b64decode(w["signed_message"]) == signed_message(text, w["timestamp"])
        assert base64.b64decode(w["signed_message"]).startswith(f"cosignature/v1\ntime {w['timestamp']}\n".encode())


@pytest.mark.parametrize("bad", COSIG["bad_keys"])
def test_bad_witness_keys_are_refused(bad):
    with pytest.raises(MalformedNote):
        CosignatureVerifier.from_string(bad)


@pytest.mark.parametrize("case", COSIG["cases"], ids=[c["name"] for c in COSIG["cases"]])
def test_policy_verdicts(case):
    policy = Policy.of(case["witnesses"], case["quorum"])
    log = Verifier.from_string(COSIG["log_key"])
    if case["expect"] == "ok":
        _, cosigned = policy.check(case["note"], log)
        assert cosigned == case["cosigned"]
    elif case["expect"] == "quorum":
        with pytest.raises(QuorumNotMet) as caught:
            policy.check(case["note"], log)
        assert caught.value.extra["cosigned"] == sorted(case["cosigned"])
        assert f"the policy needs {policy.describe()}" in caught.value.detail
    else:
        with pytest.raises(SignatureError) as caught:
            policy.check(case["note"], log)
        assert ("not signed by" in caught.value.detail) == (case["expect"] == "not-log")


TILES = json.loads((GOLDEN / "tiles.json").read_text(encoding="utf-8"))


def test_the_tiles_file_is_what_the_modules_make():
    assert json.loads(json.dumps(tile_vectors())) == TILES


def test_tile_paths_parse_back():
    for level, index, width, path in TILES["paths"]:
        assert parse_tile_path(path) == (level, index, width)


def test_the_proofs_assembled_from_the_tiles_verify_and_are_rfc_9162s():
    leaves = [leaf_hash(f"golden tile entry {i}".encode()) for i in range(max(t["size"] for t in TILES["trees"]))]
    assert [h.hex() for h in leaves[:3]] == TILES["leaf_hashes"]
    for tree in TILES["trees"]:
        size, root = tree["size"], bytes.fromhex(tree["root"])
        assert merkle_root(leaves[:size]) == root
        for index, proof in tree["inclusion"].items():
            path = [bytes.fromhex(h) for h in proof]
            verify_inclusion(leaves[int(index)], int(index), size, path, root)
            with pytest.raises(ProofError):
                verify_inclusion(leaves[int(index) - 1 if int(index) else 1], int(index), size, path, root)
