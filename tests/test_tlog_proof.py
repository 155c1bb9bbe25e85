"""The C2SP tlog-proof form of a receipt: the generic format (ledger.log.tlog_proof), the
endpoint that serves it, and its check (ledger.charity.receipt_check.check_tlog_proof) with
each of its fields altered in turn."""

from __future__ import annotations

import base64

import pytest
from api_helpers import PROJECT, assert_problem, make_api  # noqa: F401
from receipt_helpers import DONOR_REF, spent_gift

from ledger.charity.receipt_check import check_tlog_proof
from ledger.errors import MalformedNote, ReceiptInvalid
from ledger.log.checkpoint import Checkpoint
from ledger.log.merkle import leaf_hash
from ledger.log.note import Signer
from ledger.log.tlog_proof import HEADER, format_tlog_proof, parse_tlog_proof, verify_tlog_proof


@pytest.fixture
def gift(make_api):
    return spent_gift(make_api())


# -- the generic format ---------------------------------------------------------------------------


def test_format_and_parse_round_trip_as_the_spec_lays_it_out():
    signer = Signer.generate("example.com/log")
    leaves = [leaf_hash(b"a"), leaf_hash(b"b")]
    from ledger.log.merkle import root

    note = Checkpoint("example.com/log", 2, root(leaves)).sign(signer)
    text = format_tlog_proof(0, [leaves[1]], note, extra=b"a")
    lines = text.split("\n")
    assert lines[:4] == [HEADER, "extra " + base64.b64encode(b"a").decode(), "index 0", base64.b64encode(leaves[1]).decode()]
    assert lines[4] == "" and text.endswith("\n\n" + note)
    parsed = parse_tlog_proof(text)
    assert (parsed.index, parsed.proof, parsed.checkpoint, parsed.extra) == (0, (leaves[1],), note, b"a")
    assert verify_tlog_proof(parsed, leaves[0], signer.verifier).size == 2
    # no extra data: the line is omitted; an empty proof is no lines at all
    one = Checkpoint("example.com/log", 1, leaves[0]).sign(signer)
    bare = format_tlog_proof(0, [], one)
    assert bare == f"{HEADER}\nindex 0\n\n{one}"
    assert parse_tlog_proof(bare.encode()).extra is None


@pytest.mark.parametrize(
    "text, field",
    [
        ("c2sp.org/tlog-proof@v2\nindex 0\n\ncp", "format"),
        (f"{HEADER}\nindex 0\ncp", "format"),
        (f"{HEADER}\nextra !!\nindex 0\n\ncp", "extra"),
        (f"{HEADER}\nindex 01\n\ncp", "index"),
        (f"{HEADER}\nindex -1\n\ncp", "index"),
        (f"{HEADER}\nextra YQ==\n\ncp", "index"),
        (f"{HEADER}\nindex 0\nYQ==\n\ncp", "inclusion_proof"),
        (f"{HEADER}\nindex 0\n{'A' * 43}=\n\n", "checkpoint"),
        (b"\xff\xfe", "format"),
    ],
)
def test_malformed_proofs_name_their_field(text, field):
    with pytest.raises(MalformedNote) as info:
        parse_tlog_proof(text)
    assert info.value.extra["field"] == field


# -- the endpoint -------------------------------------------------------------------------------


def test_the_endpoint_serves_the_donation_with_its_proof_and_checkpoint(gift):
    resp = gift.env.client.get(f"/v1/receipts/{gift.receipt}.tlog-proof")
    assert resp.status_code == 200 and resp.content_type == "text/plain; charset=utf-8"
    proof = parse_tlog_proof(resp.get_data())
    doc = gift.doc
    assert proof.index == doc["leaf_index"] == doc["entry"]["seq"]
    assert leaf_hash(proof.extra).hex() == gift.receipt
    assert [h.hex() for h in proof.proof] == doc["inclusion_proof"] and proof.checkpoint == doc["checkpoint"]
    c = check_tlog_proof(resp.get_data(as_text=True), gift.log_key, salt=gift.salt, donor_ref=DONOR_REF)
    assert c.inclusion_only and c.donor_checked and c.entry.receipt == gift.receipt and c.spent is None
    assert (c.amount, c.currency, c.tree_size) == (6000, "CNY", doc["tree_size"])


def test_the_endpoint_refuses_what_is_not_a_donation(gift):
    env = gift.env
    assert_problem(env.client.get(f"/v1/receipts/{'0' * 64}.tlog-proof"), 404, "not-found")
    opening = env.client.get(f"/v1/projects/{PROJECT}/entries?limit=1").get_json()["entries"][0]["leaf_hash"]
    assert_problem(env.client.get(f"/v1/receipts/{opening}.tlog-proof"), 404, "not-found")
    assert env.client.get(f"/v1/receipts/{gift.receipt.upper()}.tlog-proof").status_code == 404


# -- every field of the proof altered in turn ------------------------------------------------------


def _flip(line: str) -> str:
    """Change one base64 character in the middle (a different value, still valid base64)."""
    mid = len(line) // 2
    return line[:mid] + ("B" if line[mid] != "B" else "C") + line[mid + 1 :]


def _variants(text: str):
    head, _, note = text.partition("\n\n")
    lines = head.split("\n")
    header, extra, index, proof = lines[0], lines[1], lines[2], lines[3:]
    body, _, sigs = note.partition("\n\n")
    origin, size, root = body.rstrip("\n").split("\n")

    def build(h=header, e=extra, i=index, p=proof, n=note):
        return "\n".join([h, e, i, *p]) + "\n\n" + n

    yield "format", build(h="c2sp.org/tlog-proof@v0")
    raw = base64.b64decode(extra[len("extra ") :])

    def extra_of(old: bytes, new: bytes) -> str:
        assert old in raw
        return "extra " + base64.b64encode(raw.replace(old, new, 1)).decode()

    # bytes that do not parse, are not canonical, or break the kind's rules: the extra data is wrong
    yield "extra", build(e="extra " + base64.b64encode(raw[:-1]).decode())
    yield "extra", build(e=extra_of(b'"seq":', b'"seq": '))
    yield "extra", build(e=extra_of(b'"amount":6000,"channel"', b'"amount":6001,"channel"'))  # postings disagree
    # a well-formed donation that is not the one logged: its leaf is not in the tree
    yield "inclusion_proof", build(e=extra_of(b"receipt-check-0001", b"receipt-check-0002"))
    yield ("extra", "inclusion_proof"), build(e="extra " + _flip(extra[len("extra ") :]))
    yield "index", build(i=f"index {int(index[6:]) + 1}")
    yield "index", build(i=f"index {int(index[6:]) - 1}")
    for k in range(len(proof)):
        yield "inclusion_proof", build(p=[*proof[:k], _flip(proof[k]), *proof[k + 1 :]])
    yield "inclusion_proof", build(p=proof[:-1])
    yield "inclusion_proof", build(p=[*proof, proof[0]])
    yield "inclusion_proof", build(p=list(reversed(proof)))
    for changed in (f"{origin}x\n{size}\n{root}\n", f"{origin}\n{int(size) + 1}\n{root}\n", f"{origin}\n{size}\n{_flip(root)}\n"):
        yield "checkpoint", build(n=changed + "\n" + sigs)
    yield "checkpoint", build(n=body + "\n\n" + _flip(sigs.rstrip("\n")) + "\n")
    yield "checkpoint", build(n=body + "\n\n")


def test_every_field_of_the_proof_altered_in_turn_fails(gift):
    variants = list(_variants(gift.tlog))
    assert len(variants) >= 15
    for want, text in variants:
        assert text != gift.tlog
        with pytest.raises(ReceiptInvalid) as info:
            check_tlog_proof(text, gift.log_key)
        assert info.value.part in ((want,) if isinstance(want, str) else want), (want, info.value.detail)


def test_the_wrong_log_key_and_a_wrong_donor_fail(gift):
    other = Signer.generate(gift.log_signer.name).verifier
    with pytest.raises(ReceiptInvalid) as info:
        check_tlog_proof(gift.tlog, other)
    assert info.value.part == "checkpoint"
    with pytest.raises(ReceiptInvalid) as info:
        check_tlog_proof(gift.tlog, gift.log_key, salt=gift.salt, donor_ref="someone-else")
    assert info.value.part == "donor_commitment"


def test_a_disbursement_in_the_extra_data_is_not_a_receipt(gift):
    d = gift.doc["allocation"][0]
    from ledger.log.canonical import canonical_bytes

    text = format_tlog_proof(
        d["leaf_index"], [bytes.fromhex(h) for h in d["inclusion_proof"]], gift.doc["checkpoint"],
        canonical_bytes(d["disbursement"]["entry"]),
    )
    with pytest.raises(ReceiptInvalid, match="extra: is a disbursement entry, not a donation"):
        check_tlog_proof(text, gift.log_key)
