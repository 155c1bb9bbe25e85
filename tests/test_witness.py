"""The witness's core (ledger/log/witness.py) on its SQLite store
(ledger/stores/sqlite/witness.py): C2SP tlog-witness's add-checkpoint, check by
check, with the spec's example bytes and other implementations' fixtures.

Over real HTTP, with gunicorn and the CLI: tests/test_witness_server.py.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import struct
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from c2sp_spec import SPEC_LINE, SPEC_MESSAGE, SPEC_REQUEST, SPEC_TEXT
from witness_helpers import ToyLog, bad_signature

from ledger.errors import (
    BadOldSize, InconsistentCheckpoint, InstanceError, MalformedNote, SizeMismatch, Unavailable, UnknownLog,
    UntrustedCheckpoint,
)
from ledger.log.add_checkpoint import format_add_checkpoint, parse_add_checkpoint
from ledger.log.checkpoint import Checkpoint, open_checkpoint
from ledger.log.cosignature import Cosigner, CosignatureVerifier, cosignature_key_id, verify_cosignatures
from ledger.log.merkle import EMPTY_ROOT
from ledger.log.note import Signer, Verifier, parse_note, sign_note
from ledger.log.witness import Witness, origin_hash, trusted_logs
from ledger.stores.sqlite.witness import SQLiteWitnessStore

NOW = 1_790_000_000
LOG = Signer.generate("log.example/a")
OTHER = Signer.generate("log.example/b")
COSIGNER = Cosigner(
    "witness.example/w1", Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
)


class Clock:
    def __init__(self, now: int = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    s = SQLiteWitnessStore(tmp_path / "witness.sqlite", create=True)
    yield s
    s.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def witness(store, clock):
    return Witness(COSIGNER, trusted_logs([LOG.verifier, OTHER.verifier]), store, clock)


def history(store, origin) -> list[int]:
    with sqlite3.connect(store.path) as conn:
        return [r[0] for r in conn.execute("SELECT size FROM cosigned WHERE origin = ? ORDER BY id", (origin,))]


def decode(line: str) -> tuple[bytes, int, bytes]:
    """A cosignature line's key ID, timestamp and Ed25519 signature."""
    sig = parse_note("x\n\n" + line).signatures[0]
    return sig.key_id, struct.unpack(">Q", sig.signature[:8])[0], sig.signature[8:]


# -- the spec's own bytes ------------------------------------------------------------------------

# The spec's own bytes: tests/c2sp_spec.py.


def test_the_spec_request_parses_to_its_parts_and_formats_back_byte_for_byte():
    req = parse_add_checkpoint(SPEC_REQUEST)
    assert req.old_size == 20852014
    assert [base64.b64encode(h).decode() for h in req.proof] == [
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=", "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=", "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
    ]
    assert req.checkpoint.startswith(SPEC_TEXT + "\n\u2014 example.com/behind-the-sofa Az3grlgt")
    assert format_add_checkpoint(req.old_size, req.proof, req.checkpoint) == SPEC_REQUEST


def test_the_witness_reads_the_spec_request_up_to_the_log_signature(store, clock):
    """The example's log key is not published: a witness that follows its origin with
    some other key gets as far as the signatures (403), one that does not, 404."""
    follows = Witness(COSIGNER, trusted_logs([Signer.generate("example.com/behind-the-sofa").verifier]), store, clock)
    with pytest.raises(UntrustedCheckpoint) as refused:
        follows.add_checkpoint(SPEC_REQUEST)
    assert refused.value.status == 403
    with pytest.raises(UnknownLog) as unknown:
        Witness(COSIGNER, trusted_logs([LOG.verifier]), store, clock).add_checkpoint(SPEC_REQUEST)
    assert unknown.value.status == 404
    assert store.origins() == []


def test_the_spec_cosignature_line_decodes_to_key_id_timestamp_and_signature():
    key_id, timestamp, signature = decode(SPEC_LINE)
    assert key_id == bytes.fromhex("8d66cf3f") and timestamp == 1679315147 and len(signature) == 64


def test_our_cosignature_of_the_spec_checkpoint_signs_the_spec_message(store):
    """The spec's checkpoint, signed by a log key of ours under its origin, cosigned
    by the witness at the spec's time: the line holds our key ID, the spec's timestamp
    bytes, and an Ed25519 signature over exactly the spec's signed message."""
    log = Signer.generate("example.com/behind-the-sofa")
    w = Witness(COSIGNER, trusted_logs([log.verifier]), store, Clock(1679315147))
    line = w.add_checkpoint(format_add_checkpoint(0, [], sign_note(SPEC_TEXT, log)))
    key_id, timestamp, signature = decode(line)
    spec_sig = parse_note("x\n\n" + SPEC_LINE).signatures[0].signature
    assert key_id == cosignature_key_id(COSIGNER.name, COSIGNER.verifier.public_key)
    assert struct.pack(">Q", timestamp) == spec_sig[:8] == bytes.fromhex("00000000641850cb")
    Ed25519PublicKey.from_public_bytes(COSIGNER.verifier.public_key).verify(signature, SPEC_MESSAGE)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("==\n") and line.count("\n") == 1


# -- other implementations' fixtures --------------------------------------------------------------

# FiloSottile/litetlog cmd/litewitness/testdata/litewitness.txt (at 006b647): a Sigsum log's tree heads (its key,
# sizes, roots, signatures and consistency proofs, made by sigsum-go), sent there to add-tree-head.
# A Sigsum tree head signature is a note signature over the checkpoint text, so each makes an
# add-checkpoint request; the witness must answer what litewitness answers (its "unknown log" and
# "invalid signature" are 403s of Sigsum's protocol; tlog-witness says 404 and 403).
LITE_KEY = bytes.fromhex("ffdc2d4d98e4124d3feaf788c0c2f9abfd796083d1f0495437f302ec79cf100f")
LITE_ORIGIN = "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562"
LITE_HEADS = {
    1: ("2a00000000000000000000000000000000000000000000000000000000000000",
        "b7cf653aa9c565a1ca359db81bd3bc656ab2890c6ea4c0aec42295e80aa05049423505026434f987923ccdf07d440c152cd59e736e5914d8ada8d7a4d51b2106"),
    3: ("45c088d4d939e9971298811f227d1295eaad57bbafae55cd71c171e7de48c25d",
        "655bb4871d15bc05032d67eece88900c4863a27f190393b99176391577f5def971b023d9a418c3226b7b7ea47b33686d9b3849451dadc6b07c007c595af1ea0a"),
    5: ("42bb57ad06420afa4882c4a63ac6a1ec77480b330b2f20dfc53a0caa5f564e36",
        "0fc43899968b48b5150b0e8fe7ad07b17c21c7056a6fe381deb0cd19ece103d59b2119b5dbe5d54d8a1262ce67f01245c5898b4b56f747495804a17a2eec0f0c"),
}


def _lite(size: int, origin: str = LITE_ORIGIN, flip: bool = False) -> str:
    root, sig = LITE_HEADS[size]
    sig = bytes.fromhex(sig)
    if flip:
        sig = sig[:-1] + bytes([sig[-1] ^ 1])
    text = Checkpoint(origin, size, bytes.fromhex(root)).text()
    key_id = Verifier(LITE_ORIGIN, LITE_KEY).key_id
    return text + "\n\u2014 " + origin + " " + base64.b64encode(key_id + sig).decode() + "\n"


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h.ljust(64, "0")) for h in hexes]


def test_litewitness_fixture_sequence_gets_litewitness_answers(store, clock):
    w = Witness(COSIGNER, trusted_logs([Verifier(LITE_ORIGIN, LITE_KEY)]), store, clock)
    w.add_checkpoint(format_add_checkpoint(0, [], _lite(1)))  # litewitness: 200
    with pytest.raises(UntrustedCheckpoint):  # a flipped signature bit: 403
        w.add_checkpoint(format_add_checkpoint(1, _h("2a01", "2a02"), _lite(3, flip=True)))
    with pytest.raises(UnknownLog):  # another key hash: "unknown log"
        w.add_checkpoint(format_add_checkpoint(1, _h("2a01", "2a02"), _lite(3, origin=LITE_ORIGIN[:-1] + "1")))
    with pytest.raises(InconsistentCheckpoint):  # no proof: 422
        w.add_checkpoint(format_add_checkpoint(1, [], _lite(3)))
    with pytest.raises(InconsistentCheckpoint):  # a wrong proof hash: 422
        w.add_checkpoint(format_add_checkpoint(1, _h("2a01", "2a02" + "0" * 59 + "1"), _lite(3)))
    w.add_checkpoint(format_add_checkpoint(1, _h("2a01", "2a02"), _lite(3)))  # 200
    proof_1_5 = _h("2a01", "f9f50357e93def4078237b8aaea24ce1a3f5965a0f64ff26bebd99e30470d8b2", "2a04")
    with pytest.raises(SizeMismatch) as conflict:  # from 1, but the witness holds 3: 409
        w.add_checkpoint(format_add_checkpoint(1, proof_1_5, _lite(5)))
    assert conflict.value.size == 3
    w.add_checkpoint(format_add_checkpoint(
        3, _h("2a02", "2a03", "c2088815d65f60dbfa594d4e96504ab169cb6084bf0c132ab7c521fd2e0eba41", "2a04"), _lite(5)))
    assert store.latest(LITE_ORIGIN).size == 5 and history(store, LITE_ORIGIN) == [1, 3, 5]
    assert open_checkpoint(store.latest(LITE_ORIGIN).note, Verifier(LITE_ORIGIN, LITE_KEY)).size == 5


# FiloSottile/torchwood cmd/litewitness/testdata/multi-cosigs-ed25519.txt (at 5820115): an add-checkpoint request
# (old 0, a Sigsum log's checkpoint of size 1) that litewitness answers 200.
TORCHWOOD_KEY = bytes.fromhex("52c05edad1bf5feffa81354faae59a655d9a9a1a793ed2f62c39c26c0be2aecd")
TORCHWOOD_ORIGIN = "sigsum.org/v1/tree/985ea163f5af026723561354f51f2ebcdcf2af809ce254ccfb64aa9aadd80f90"
TORCHWOOD_REQUEST = (
    "old 0\n\n"
    f"{TORCHWOOD_ORIGIN}\n1\nKgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
    f"\u2014 {TORCHWOOD_ORIGIN} 7BKT0gOfNZ1J0So9unY3BZtm2YkPIoNYM/dce0Z2avJDs8dxN6ts9bOSwwrVrbjm6P9K3ZxpK6jJngOG6YvGGzV/lwo=\n"
).encode()


def test_torchwood_fixture_request_is_cosigned(store, clock):
    req = parse_add_checkpoint(TORCHWOOD_REQUEST)
    assert (req.old_size, req.proof) == (0, ())
    assert format_add_checkpoint(0, [], req.checkpoint) == TORCHWOOD_REQUEST
    w = Witness(COSIGNER, trusted_logs([Verifier(TORCHWOOD_ORIGIN, TORCHWOOD_KEY)]), store, clock)
    line = w.add_checkpoint(TORCHWOOD_REQUEST)
    cosigned = store.latest(TORCHWOOD_ORIGIN).note
    assert cosigned == req.checkpoint + line  # their log signature, verbatim, then ours
    assert verify_cosignatures(cosigned, [COSIGNER.verifier]) == {COSIGNER.verifier: NOW}


def test_transparency_dev_formats_fixtures_read_as_cosignature_v1():
    """transparency-dev/formats note/note_cosigv1_test.go (at 091ce41): a deployed witness's 0x04 vkey,
    and a cosignature whose timestamp that test expects to be 1727964367."""
    v = CosignatureVerifier.from_string("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
    assert v.key_id.hex() == "da77ade7"
    raw = base64.b64decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
    assert len(raw) == 4 + 8 + 64 and struct.unpack(">Q", raw[4:12])[0] == 1727964367


# -- every check, in the spec's order --------------------------------------------------------------

A = ToyLog(LOG)
FORK = ToyLog(LOG, fork=b" fork", common=4)  # the same key, another history after 4 leaves
STRANGER = Signer.generate("log.example/a")  # a key of the same name that the witness does not trust

REFUSALS = {  # name: (request after the witness cosigned A at 8, error class, status)
    "not a request": (b"hello\n", MalformedNote, 400),
    "no empty line": (b"old 8\n" + A.checkpoint(8).encode(), MalformedNote, 400),
    "proof line not base64": (A.body(8, 12).replace(b"\n\n", b"\n!!!!\n\n", 1), MalformedNote, 400),
    "64 proof lines": (b"old 8\n" + b"".join([base64.b64encode(bytes(32)) + b"\n"] * 64) + b"\n" + A.checkpoint(12).encode(),
                       MalformedNote, 400),
    "old size above the size": (A.body(8, 8, proof=[]).replace(b"old 8", b"old 9"), BadOldSize, 400),
    "unknown origin": (ToyLog(Signer.generate("log.example/c")).body(0, 4), UnknownLog, 404),
    "no trusted signature": (A.body(8, 12, note=A.checkpoint(12, STRANGER)), UntrustedCheckpoint, 403),
    "a trusted key's bad signature": (A.body(8, 12, note=bad_signature(A.checkpoint(12))), UntrustedCheckpoint, 403),
    "stale old size": (A.body(4, 12), SizeMismatch, 409),
    "old size 0 after a cosignature": (A.body(0, 12), SizeMismatch, 409),
    "proof with old size 0": (None, InconsistentCheckpoint, 422),  # on a fresh origin, below
    "bad proof": (A.body(8, 12, proof=A.proof(8, 12)[:-1] + [bytes(32)]), InconsistentCheckpoint, 422),
    "short proof": (A.body(8, 12, proof=A.proof(8, 12)[:-1]), InconsistentCheckpoint, 422),
    "same size, other root": (FORK.body(8, 8, proof=[]), InconsistentCheckpoint, 422),
    "same size, a proof": (A.body(8, 8, proof=[bytes(32)]), InconsistentCheckpoint, 422),
    "fork with its own proof": (FORK.body(8, 12), InconsistentCheckpoint, 422),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_every_refusal_has_its_status_and_writes_nothing(case, witness, store):
    body, error, status = REFUSALS[case]
    line = witness.add_checkpoint(A.body(0, 8))
    before = store.latest(LOG.name)
    if body is None:  # another log the witness follows, never cosigned: old 0 with a proof
        body = format_add_checkpoint(0, [bytes(32)], ToyLog(OTHER).checkpoint(4))
    with pytest.raises(error) as refused:
        witness.add_checkpoint(body)
    assert refused.value.status == status
    if status == 409:
        assert refused.value.size == 8
    assert store.latest(LOG.name) == before and before.note.endswith(line)
    assert history(store, LOG.name) == [8] and store.latest(OTHER.name) is None


def test_a_size_zero_checkpoint_needs_the_empty_root(witness, store):
    wrong = sign_note(Checkpoint(OTHER.name, 0, bytes(32)).text(), OTHER)
    with pytest.raises(InconsistentCheckpoint):
        witness.add_checkpoint(format_add_checkpoint(0, [], wrong))
    witness.add_checkpoint(format_add_checkpoint(0, [], sign_note(Checkpoint(OTHER.name, 0, EMPTY_ROOT).text(), OTHER)))
    assert store.latest(OTHER.name).size == 0
    witness.add_checkpoint(ToyLog(OTHER).body(0, 3))  # from the empty tree, no proof is needed
    assert history(store, OTHER.name) == [0, 3]


def test_the_log_grows_and_each_answer_is_a_cosignature_of_its_checkpoint(witness, store, clock):
    for old, new in [(0, 1), (1, 2), (2, 7), (7, 8), (8, 8), (8, 33), (33, 64)]:
        clock.now += 10
        line = witness.add_checkpoint(A.body(old, new))
        assert verify_cosignatures(A.checkpoint(new) + line, [COSIGNER.verifier]) == {COSIGNER.verifier: clock.now}
        latest = store.latest(LOG.name)
        assert (latest.size, latest.root, latest.timestamp) == (new, A.root(new), clock.now)
        assert latest.note == A.checkpoint(new) + line  # what GET /<origin hash>/checkpoint serves
    assert history(store, LOG.name) == [1, 2, 7, 8, 33, 64]  # the same tree cosigned again renews latest only
    assert witness.checkpoint(origin_hash(LOG.name)) == store.latest(LOG.name).note
    with pytest.raises(UnknownLog):
        witness.checkpoint(origin_hash(OTHER.name))


def test_only_signatures_of_trusted_keys_are_kept_and_a_rotated_key_is_trusted(store, clock):
    rotated = Signer(LOG.name, Ed25519PrivateKey.generate())
    w = Witness(COSIGNER, trusted_logs([LOG.verifier, rotated.verifier]), store, clock)
    w.add_checkpoint(A.body(0, 4, note=A.checkpoint(4, STRANGER, rotated)))
    kept = parse_note(store.latest(LOG.name).note).signatures
    assert [(s.name, s.key_id) for s in kept] == [(LOG.name, rotated.verifier.key_id), (COSIGNER.name, COSIGNER.verifier.key_id)]


def test_timestamps_never_go_back_and_are_never_zero(witness, store, clock):
    witness.add_checkpoint(A.body(0, 4))
    clock.now -= 3600  # the clock steps back: the next cosignature keeps the last time
    line = witness.add_checkpoint(A.body(4, 6))
    assert decode(line)[1] == NOW == store.latest(LOG.name).timestamp
    clock.now = 0
    with pytest.raises(ValueError):
        witness.add_checkpoint(A.body(6, 9))
    assert store.latest(LOG.name).size == 6


def test_refused_checkpoints_the_log_signed_are_kept_once_as_evidence(witness, store):
    witness.add_checkpoint(A.body(0, 8))
    for _ in range(2):
        with pytest.raises(InconsistentCheckpoint):
            witness.add_checkpoint(FORK.body(8, 8, proof=[]))
    with pytest.raises(InconsistentCheckpoint):
        witness.add_checkpoint(FORK.body(8, 12))
    for body in (FORK.body(0, 12), A.body(8, 12, note=A.checkpoint(12, STRANGER))):  # 409 and 403: not evidence
        with pytest.raises((SizeMismatch, UntrustedCheckpoint)):
            witness.add_checkpoint(body)
    kept = store.refusals(LOG.name)
    assert [(r.size, r.old_size, r.stored_size) for r in kept] == [(8, 8, 8), (12, 8, 8)]
    assert kept[0].note == FORK.checkpoint(8) and "split view" in kept[0].reason
    assert kept[1].proof == tuple(FORK.proof(8, 12))
    open_checkpoint(kept[1].note, LOG.verifier)  # the log's own signature: evidence anyone can check


# -- the store -----------------------------------------------------------------------------------------

def test_the_files_are_private_and_loose_modes_refused(tmp_path, witness, store):
    witness.add_checkpoint(A.body(0, 4))
    for f in [store.path, store.path.with_name(store.path.name + "-wal"), store.path.with_name(store.path.name + "-shm")]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    os.chmod(store.path, 0o644)
    with pytest.raises(InstanceError, match="others may read"):
        SQLiteWitnessStore(store.path)
    with pytest.raises(InstanceError, match="no witness database"):
        SQLiteWitnessStore(tmp_path / "missing.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    os.chmod(tmp_path / "junk.sqlite", 0o600)
    with pytest.raises(InstanceError):
        SQLiteWitnessStore(tmp_path / "junk.sqlite")


@pytest.mark.parametrize("sql", [
    "UPDATE cosigned SET size = 1",
    "DELETE FROM cosigned",
    "UPDATE refused SET reason = 'none'",
    "DELETE FROM refused",
    "DELETE FROM latest",
    "UPDATE latest SET size = 4",
    "UPDATE latest SET root = zeroblob(32)",
    "UPDATE latest SET timestamp = 1",
    "INSERT INTO cosigned (origin, size, root, note, timestamp) VALUES ('log.example/a', 4, zeroblob(32), 'x', 1)",
    "INSERT INTO cosigned (origin, size, root, note, timestamp) VALUES ('log.example/a', 8, zeroblob(32), 'x', 1)",
])
def test_triggers_hold_the_witness_to_its_word_against_raw_sql(sql, witness, store):
    witness.add_checkpoint(A.body(0, 8))
    with pytest.raises(InconsistentCheckpoint):
        witness.add_checkpoint(FORK.body(8, 8, proof=[]))
    with sqlite3.connect(store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql)


def test_a_writer_holds_every_other_connection_off_until_it_commits(store, witness):
    """Two stores on one file are two processes' connections: while one is inside
    advance(), the other cannot begin (BEGIN IMMEDIATE), and is refused with a 503."""
    other = SQLiteWitnessStore(store.path, lock_timeout=0.2)
    inside, release = threading.Event(), threading.Event()

    def hold():
        with store.advance(LOG.name):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert inside.wait(10)
        with pytest.raises(Unavailable) as busy:
            Witness(COSIGNER, trusted_logs([LOG.verifier]), other).add_checkpoint(A.body(0, 4))
        assert busy.value.status == 503
    finally:
        release.set()
        t.join()
    Witness(COSIGNER, trusted_logs([LOG.verifier]), other).add_checkpoint(A.body(0, 4))
    assert store.latest(LOG.name).size == 4
    other.close()
