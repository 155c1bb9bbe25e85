"""ledger/log/cosignature.py and add_checkpoint.py against the C2SP spec texts, byte for byte
(the vectors, copied from the specs, are in tests/c2sp_spec.py)."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from c2sp_spec import SPEC_COSIGNED, SPEC_MESSAGE, SPEC_REQUEST

from ledger.errors import MalformedNote, SignatureError
from ledger.log.add_checkpoint import (
    format_add_checkpoint, format_size, parse_add_checkpoint, parse_cosignature_lines, parse_size,
)
from ledger.log.checkpoint import Checkpoint
from ledger.log.cosignature import (
    Cosigner, CosignatureVerifier, cosignature_key_id, merge_signatures, parse_vkey, signed_message,
    verify_cosignatures,
)
from ledger.log.note import Signer, Verifier, parse_note

def test_the_spec_cosignature_line_is_key_id_then_big_endian_timestamp_then_64_bytes():
    note = parse_note(SPEC_COSIGNED)
    witness = note.signatures[1]
    assert witness.name == "witness.example.com/w1"
    assert witness.key_id.hex() == "8d66cf3f"
    assert len(witness.signature) == 8 + 64
    assert struct.unpack(">Q", witness.signature[:8])[0] == 1679315147


def test_the_signed_message_is_the_spec_text_byte_for_byte():
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert signed_message(text, 1679315147) == SPEC_MESSAGE
    with pytest.raises(MalformedNote):
        signed_message(text, 1 << 63)
    with pytest.raises(MalformedNote):
        signed_message(text.rstrip("\n"), 1)


def test_key_id_uses_type_byte_0x04_and_vkeys_round_trip():
    w = Cosigner.generate("witness.example/w1")
    key = w.verifier.public_key
    assert w.verifier.key_id == hashlib.sha256(b"witness.example/w1\n\x04" + key).digest()[:4]
    assert cosignature_key_id("witness.example/w1", key) != Verifier("witness.example/w1", key).key_id
    vkey = w.verifier.to_string()
    name, hexid, b64 = vkey.split("+", 2)
    assert (name, hexid) == ("witness.example/w1", w.verifier.key_id.hex())
    assert base64.b64decode(b64) == b"\x04" + key
    assert CosignatureVerifier.from_string(vkey) == w.verifier
    assert parse_vkey(vkey) == w.verifier
    again = Cosigner.from_string(w.to_string())
    assert again.verifier == w.verifier and w.to_string().startswith("PRIVATE+KEY+witness.example/w1+")
    assert "PRIVATE" not in repr(w)


def test_a_log_key_is_not_a_witness_key_nor_the_other_way():
    log = Signer.generate("example.com/log")
    with pytest.raises(MalformedNote, match="0x04"):
        CosignatureVerifier.from_string(log.verifier.to_string())
    assert parse_vkey(log.verifier.to_string()) == log.verifier
    w = Cosigner.generate("w1")
    with pytest.raises(MalformedNote):
        Verifier.from_string(w.verifier.to_string())
    with pytest.raises(MalformedNote):
        Cosigner.from_string(log.to_string())
    name, hexid, key = w.verifier.to_string().split("+", 2)
    with pytest.raises(MalformedNote, match="does not match"):
        CosignatureVerifier.from_string(f"{name}+{int(hexid, 16) ^ 1:08x}+{key}")


def _checkpoint(signer: Signer, size: int = 7) -> str:
    return Checkpoint(signer.name, size, hashlib.sha256(str(size).encode()).digest()).sign(signer)


def test_cosign_verify_and_merge():
    log = Signer.generate("example.com/log")
    w1, w2, stranger = (Cosigner.generate(n) for n in ("w1", "w2", "w3"))
    note = _checkpoint(log)
    text = parse_note(note).text
    line1 = w1.cosign(text, 1700000000)
    raw = base64.b64decode(line1.split(" ")[-1])
    assert raw[:4] == w1.verifier.key_id and raw[4:12] == struct.pack(">Q", 1700000000)
    cosigned = merge_signatures(note, line1 + w2.cosign(text) + stranger.cosign(text))
    assert merge_signatures(cosigned, line1) == cosigned  # no line twice
    found = verify_cosignatures(cosigned, [w1.verifier, w2.verifier])
    assert set(found) == {w1.verifier, w2.verifier} and found[w1.verifier] == 1700000000
    # the log's own line and the unknown witness's are ignored; a known key's bad line rejects
    forged = merge_signatures(note, line1.replace(line1.split(" ")[-1][10:20], "A" * 10))
    with pytest.raises((SignatureError, MalformedNote)):
        verify_cosignatures(forged, [w1.verifier])
    other = _checkpoint(log, size=8)
    moved = merge_signatures(other, line1)  # a cosignature on another checkpoint
    with pytest.raises(SignatureError, match="does not verify"):
        verify_cosignatures(moved, [w1.verifier])
    with pytest.raises(MalformedNote):
        w1.cosign(text, 0)
    with pytest.raises(MalformedNote):
        merge_signatures(note, "not a signature line\n")


def test_the_spec_request_parses_and_formats_back_to_the_same_bytes():
    req = parse_add_checkpoint(SPEC_REQUEST)
    assert req.old_size == 20852014
    assert [base64.b64encode(h).decode() for h in req.proof] == [
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=", "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=", "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
    ]
    assert req.checkpoint.startswith("example.com/behind-the-sofa\n20852163\n")
    assert len(parse_note(req.checkpoint).signatures) == 2
    assert format_add_checkpoint(req.old_size, req.proof, req.checkpoint) == SPEC_REQUEST


NOTE = SPEC_REQUEST.split(b"\n\n", 1)[1]


@pytest.mark.parametrize("body", [
    b"", b"old 1\n", NOTE, b"new 1\n\n" + NOTE, b"old 01\n\n" + NOTE, b"old -1\n\n" + NOTE,
    b"old 1 \n\n" + NOTE, b"old 18446744073709551616\n\n" + NOTE, b"old 1\n\n" + NOTE[:-1], b"\xff" + NOTE,
])
def test_malformed_requests_are_refused(body):
    assert parse_add_checkpoint(b"old 1\n\n" + NOTE).old_size == 1
    with pytest.raises(MalformedNote):
        parse_add_checkpoint(body)


def test_malformed_proof_lines_are_refused():
    head, note = SPEC_REQUEST.split(b"\n\n", 1)
    lines = head.split(b"\n")
    for bad in (b"AAAA", b"not base64!", lines[1][:-1] + b"A"):  # short hash, junk, non-canonical
        with pytest.raises(MalformedNote, match="proof line"):
            parse_add_checkpoint(b"\n".join([lines[0], bad]) + b"\n\n" + note)
    too_many = b"\n".join([b"old 1"] + [lines[1]] * 64) + b"\n\n" + note
    with pytest.raises(MalformedNote, match="at most 63"):
        parse_add_checkpoint(too_many)
    with pytest.raises(MalformedNote):
        parse_add_checkpoint(b"old 1\n\nexample.com/x\n1\n")  # a checkpoint with no signatures


def test_sizes_and_answers():
    assert format_size(20852163) == b"20852163\n" and parse_size(b"0\n") == 0
    for bad in (b"12", b"012\n", b"x\n", b"\n"):
        with pytest.raises(MalformedNote):
            parse_size(bad)
    w = Cosigner.generate("w1")
    line = w.cosign("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", 5)
    assert parse_cosignature_lines(line.encode()) == line
    for bad in (b"", b"hello\n", line.encode()[:-1], (line + "\n").encode()):
        with pytest.raises(MalformedNote):
            parse_cosignature_lines(bad)
