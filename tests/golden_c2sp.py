"""The golden vectors of the verifiers' C2SP twins (issue 14), made from the Python modules.

``tests/golden/cosignature.json`` (C2SP tlog-cosignature ``cosignature/v1`` and a k-of-n
tlog-policy) and ``tests/golden/tiles.json`` (C2SP tlog-tiles paths, tiles and the inclusion
proofs built from them) are written once by ``python tests/golden_c2sp.py`` and never changed:
tests/test_golden_c2sp.py checks that these functions still make them byte for byte (so the
Python side keeps the format), and tests/test_page_tiles_vectors.py runs the browser's
``cosignature.js`` and ``tiles.js`` over the very same files in Chromium.

Every key comes from a fixed seed and Ed25519 signatures are deterministic (RFC 8032), so the
files are reproducible.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log.checkpoint import Checkpoint
from ledger.log.cosignature import Cosigner, cosignature_key_id, signed_message
from ledger.log.merkle import leaf_hash
from ledger.log.merkle import root as merkle_root
from ledger.log.note import DASH, Signer, sign_note
from ledger.log.tile_reader import TileReader
from ledger.log.tiles import any_path, hash_tile, tiles_for_size

GOLDEN = Path(__file__).parent / "golden"
ORIGIN = "luodi.example/golden-c2sp"
WITNESSES = ("witness.example/w1", "witness.example/w2", "witness.example/w3", "witness.example/w4")
TIMES = (1764633600, 1764633601, 1764633602, 1764633603)


def _seed(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"luodi golden c2sp " + label.encode()).digest())


def _root(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _text(size: int, root: bytes) -> str:
    return Checkpoint(ORIGIN, size, root).text()


def cosignature_vectors() -> dict:
    log = Signer(ORIGIN, _seed("log"))
    cosigners = [Cosigner(name, _seed(name)) for name in WITNESSES]
    text = _text(1000, _root("the tree"))
    fork_text = _text(1000, _root("a fork"))
    note = sign_note(text, log)
    fork = sign_note(fork_text, log)
    line = [c.cosign(text, t) for c, t in zip(cosigners, TIMES)]
    policy3 = [c.verifier.to_string() for c in cosigners[:3]]

    def flipped(one: str) -> str:  # the last byte of the Ed25519 signature flipped
        name, b64 = one[len(DASH):].rstrip("\n").split(" ")
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 1
        return f"{DASH}{name} {base64.b64encode(bytes(raw)).decode()}\n"

    def too_late(c: Cosigner) -> str:  # a timestamp of 2**63: above what the spec allows
        blob = c.verifier.key_id + struct.pack(">Q", 1 << 63) + bytes(64)
        return f"{DASH}{c.name} {base64.b64encode(blob).decode()}\n"

    as_log_key = Signer(cosigners[0].name, _seed(WITNESSES[0])).signature_line(text)  # type 0x01: another key ID
    copied = cosigners[1].cosign(fork_text, TIMES[1])  # w2's cosignature of the fork, moved onto the tree

    def case(name, note_text, witnesses, quorum, expect, cosigned=()):
        return {"name": name, "note": note_text, "witnesses": witnesses, "quorum": quorum, "expect": expect,
                "cosigned": {WITNESSES[i]: TIMES[i] for i in cosigned}}

    cases = [
        case("three of three cosigned, 2 of 3 needed", note + line[0] + line[1] + line[2], policy3, 2, "ok", (0, 1, 2)),
        case("two cosigned, 2 of 3 needed", note + line[2] + line[0], policy3, 2, "ok", (0, 2)),
        case("two cosigned, all 3 needed", note + line[0] + line[2], policy3, 3, "quorum", (0, 2)),
        case("one cosigned, 2 of 3 needed", note + line[0], policy3, 2, "quorum", (0,)),
        case("no cosignature, 1 of 3 needed", note, policy3, 1, "quorum"),
        case("an unknown witness does not count", note + line[3] + line[1], policy3, 2, "quorum", (1,)),
        case("a log-type (0x01) line under a witness's name is ignored", note + as_log_key + line[1], policy3, 2,
             "quorum", (1,)),
        case("a known witness's bad cosignature rejects the note", note + line[0] + flipped(line[1]) + line[2],
             policy3, 2, "bad-signature"),
        case("a cosignature of the fork moved onto the tree", note + line[0] + copied, policy3, 2, "bad-signature"),
        case("a timestamp above 2**63 - 1", note + line[0] + too_late(cosigners[2]), policy3, 1, "bad-signature"),
        case("the fork, cosigned by one witness", fork + cosigners[0].cosign(fork_text, TIMES[0]), policy3, 2,
             "quorum", (0,)),
        case("signed by another log key", sign_note(text, Signer(ORIGIN, _seed("another log"))) + line[0] + line[1],
             policy3, 2, "not-log"),
        case("no witnesses, quorum none", note, [], 0, "ok"),
    ]
    return {
        "about": "C2SP tlog-cosignature cosignature/v1 (Ed25519, key type 0x04) and k-of-n tlog-policy "
                 "verdicts; made by tests/golden_c2sp.py from ledger/log/cosignature.py and policy.py",
        "log_key": log.verifier.to_string(),
        "checkpoint": note,
        "witnesses": [
            {"name": c.name, "vkey": c.verifier.to_string(), "key_id": cosignature_key_id(c.name, c.verifier.public_key).hex(),
             "timestamp": t, "signed_message": base64.b64encode(signed_message(text, t)).decode(), "line": ln}
            for c, t, ln in zip(cosigners, TIMES, line)
        ],
        "bad_keys": [
            log.verifier.to_string(),  # a log key (0x01) is not a witness key
            policy3[0][:-1] + ("A" if policy3[0][-1] != "A" else "B"),  # another key under w1's key ID
            policy3[0].replace("+", "+0", 1),  # a key ID of 9 hex digits
        ],
        "cases": cases,
    }


TILE_SIZES = (515, 300)  # two full level-0 tiles and a partial one of 3, a partial level-1 tile of 2; and 300
TILE_INDICES = (0, 1, 2, 127, 255, 256, 299, 300, 511, 512, 514)
PATH_CASES = ((0, 0, 256), (0, 1, 17), (3, 999, 256), (1, 1000, 256), (2, 1234067, 112), (63, 5, 1),
              ("entries", 1234067, 256), ("entries", 0, 255))


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"golden tile entry {i}".encode()) for i in range(n)]


def tile_vectors() -> dict:
    leaves = _leaves(max(TILE_SIZES))

    def nodes(wanted):
        return {(h, i): merkle_root(leaves[i << h:(i + 1) << h]) for h, i in wanted}

    files: dict[str, str] = {}
    trees = []
    for size in TILE_SIZES:
        for tile in tiles_for_size(size, entries=False):
            files[tile.path] = hash_tile(nodes, tile).hex()
        root = merkle_root(leaves[:size])
        reader = TileReader(lambda path: bytes.fromhex(files[path]) if path in files else None, size, root)
        assert reader.tree_root() == root
        proofs = {str(i): [h.hex() for h in reader.inclusion_proof(i)] for i in TILE_INDICES if i < size}
        trees.append({"size": size, "root": root.hex(),
                      "tiles": [t.path for t in tiles_for_size(size, entries=False)], "inclusion": proofs})
    return {
        "about": "C2SP tlog-tiles paths, hash tiles and the RFC 9162 inclusion proofs a reader assembles from "
                 "them; made by tests/golden_c2sp.py from ledger/log/tiles.py and tile_reader.py. Leaf i is "
                 "SHA-256(0x00 || 'golden tile entry <i>').",
        "paths": [[level, index, width, any_path(level, index, width)] for level, index, width in PATH_CASES],
        "leaf_hashes": [h.hex() for h in leaves[:3]],
        "files": dict(sorted(files.items())),
        "trees": trees,
    }


def write() -> None:
    for name, make in (("cosignature.json", cosignature_vectors), ("tiles.json", tile_vectors)):
        path = GOLDEN / name
        if path.exists():
            print(f"{path} exists: golden vectors are written once, never changed")
            continue
        path.write_text(json.dumps(make(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    write()
