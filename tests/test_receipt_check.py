"""A donor's receipt check (ledger.charity.receipt_check) on a real receipt from a real ledger:
it passes as served, and every field altered in turn, a forged disbursement re-signed by
the operator, a dropped key rotation, the wrong log key and a wrong donor reference fail,
naming the part."""

from __future__ import annotations

import copy

import pytest
from api_helpers import make_api  # noqa: F401
from receipt_helpers import DONOR_REF, forge, spent_gift

from ledger.charity.receipt_check import check_receipt
from ledger.charity.service import donor_commitment as old_name
from ledger.errors import InvalidInput, MalformedNote, ReceiptInvalid
from ledger.log.note import Signer

# SQLite only: receipt checking is offline code over what the server sent; the receipts' storage is tested on both backends by test_api_public.
pytestmark = pytest.mark.sqlite_only("receipt checking is offline code over what the server sent; the receipts' storage is tested on both backends by test_api_public")


@pytest.fixture
def gift(make_api):
    return spent_gift(make_api())


def test_a_served_receipt_checks_out_with_its_logged_keys(gift):
    c = check_receipt(gift.doc, gift.log_key, salt=gift.salt, donor_ref=DONOR_REF)
    assert c.entry.receipt == gift.receipt and c.donor_checked and c.charity == "hope-foundation"
    assert (c.currency, c.amount, c.spent, c.refunded, c.unspent) == ("CNY", 6000, 4500, 500, 1000)
    assert [(a.disbursement.body["payload"]["amount"], a.amount) for a in c.allocations] == [(19000, 1500), (3000, 3000)]
    assert c.tree_size == gift.env.size() and not c.inclusion_only
    # what the receipt carries to check the second disbursement: the rotation before it
    rot = gift.doc["charity"]["key_rotations"]
    assert [r["entry"]["kind"] for r in rot] == ["charity.keys_rotated"]
    assert gift.doc["charity"]["registration"]["seq"] < gift.doc["project_opening"]["seq"] < c.entry.seq
    assert c.allocations[0].disbursement.seq < rot[0]["seq"] < c.allocations[1].disbursement.seq
    assert old_name is not None  # the old import path keeps working


def _scalars(node, path=()):
    """Every (path, value) of a scalar in the document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _scalars(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _scalars(v, (*path, i))
    else:
        yield path, node


def _altered(value):
    """One different value of the same type."""
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, int):
        return value + 1
    mid = len(value) // 2
    c = value[mid] if value else ""
    swap = {"0": "1", "a": "b", "A": "B", "=": "A", "\n": " "}.get(c, "0" if c != "0" else "1")
    return value[:mid] + swap + value[mid + 1 :]


def _set(doc, path, value):
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


def test_every_field_altered_in_turn_fails(gift):
    survivors, parts = [], set()
    paths = list(_scalars(gift.doc))
    for path, value in paths:
        doc = copy.deepcopy(gift.doc)
        _set(doc, path, _altered(value))
        try:
            check_receipt(doc, gift.log_key)
        except ReceiptInvalid as exc:
            parts.add(exc.part)
        else:
            survivors.append(path)
    assert not survivors, f"altered and still accepted: {survivors}"
    assert len(paths) > 150
    for part in ("entry", "entry.leaf_hash", "leaf_index", "tree_size", "inclusion_proof", "checkpoint", "log_key",
                 "amount", "amounts", "allocation[0].disbursement", "allocation[1].amount",
                 "allocation[0].inclusion_proof", "project_opening", "charity.registration",
                 "charity.key_rotations[0]"):
        assert part in parts, (part, sorted(parts))


@pytest.mark.parametrize(
    "where",
    ["inclusion_proof", "allocation.0.inclusion_proof", "project_opening.inclusion_proof",
     "charity.registration.inclusion_proof", "charity.key_rotations.0.inclusion_proof"],
)
@pytest.mark.parametrize("how", ["drop", "extra", "reverse", "empty"])
def test_proofs_too_short_too_long_or_reordered_fail(gift, where, how):
    doc = copy.deepcopy(gift.doc)
    node = doc
    for k in where.split("."):
        node = node[int(k) if k.isdigit() else k]
    proof = node
    {"drop": proof.pop, "extra": lambda: proof.append(proof[0]), "reverse": proof.reverse, "empty": proof.clear}[how]()
    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(doc, gift.log_key)
    assert info.value.part.endswith("inclusion_proof")


def test_a_missing_or_mistyped_member_is_a_failure_not_a_crash(gift):
    for name in list(gift.doc):
        doc = {k: v for k, v in gift.doc.items() if k != name}
        with pytest.raises(ReceiptInvalid):
            check_receipt(doc, gift.log_key)
        for wrong in (None, [], {}, "x", 1.5, True):
            bad = {**gift.doc, name: wrong}
            with pytest.raises(ReceiptInvalid):
                check_receipt(bad, gift.log_key)
    for doc in (None, [], "receipt", 3):
        with pytest.raises(ReceiptInvalid, match="receipt: must be a JSON object"):
            check_receipt(doc, gift.log_key)


def test_the_wrong_log_key_fails(gift):
    other = Signer.generate(gift.log_signer.name).verifier
    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(gift.doc, other)
    assert info.value.part == "log_key"
    # a receipt that names the other key: the checkpoint is not signed by it
    with pytest.raises(ReceiptInvalid) as info:
        check_receipt({**gift.doc, "log_key": other.to_string()}, other)
    assert info.value.part == "checkpoint" and "not signed by any trusted key" in info.value.detail
    with pytest.raises(MalformedNote):
        check_receipt(gift.doc, "not-a-key")


def test_a_checkpoint_re_signed_by_another_key_fails(gift):
    impostor = Signer.generate(gift.log_signer.name)
    gift.log_signer = impostor
    doc = forge(gift, lambda d: None)
    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(doc, gift.log_key)
    assert info.value.part == "checkpoint"


def test_the_forger_helper_alone_changes_nothing_that_fails(gift):
    """The forgery below is honest: re-signing an unchanged receipt still checks out."""
    check_receipt(forge(gift, lambda d: None), gift.log_key)


def test_a_disbursement_whose_signature_no_longer_matches_fails_even_re_signed_by_the_operator(gift):
    def pay_someone_else(doc):
        doc["allocation"][0]["disbursement"]["entry"]["body"]["payload"]["payee"]["name"] = "Someone Else Ltd."

    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(forge(gift, pay_someone_else), gift.log_key)
    assert info.value.part == "allocation[0].signatures[0]"
    assert "does not verify over the payload" in info.value.detail


def test_a_disbursement_signed_by_keys_rotated_out_fails(gift):
    """The second disbursement was signed by the new keys: without the rotation that the
    log recorded, they are not the charity's keys."""
    def hide_rotation(doc):
        doc["charity"]["key_rotations"] = []

    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(forge(gift, hide_rotation), gift.log_key)
    assert info.value.part == "allocation[1].signatures"
    assert "not by a current key of charity hope-foundation" in info.value.detail


def test_a_project_said_to_belong_to_another_charity_fails(gift):
    def other_charity(doc):
        doc["project_opening"]["entry"]["body"]["charity"] = "river-trust"

    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(forge(gift, other_charity), gift.log_key)
    assert info.value.part == "charity.registration"


def test_an_allocation_beyond_its_disbursement_or_not_adding_up_fails(gift):
    doc = copy.deepcopy(gift.doc)
    doc["allocation"][1]["amount"] = "30.01"
    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(doc, gift.log_key)
    assert info.value.part == "allocation[1].amount"
    doc = copy.deepcopy(gift.doc)
    doc["spent"], doc["unspent"] = "50.00", "5.00"  # the sum holds; the allocations do not
    with pytest.raises(ReceiptInvalid, match="amounts: the allocations do not add up to spent"):
        check_receipt(doc, gift.log_key)
    doc = copy.deepcopy(gift.doc)
    doc["unspent"] = "11.00"
    with pytest.raises(ReceiptInvalid, match=r"amounts: spent \+ refunded \+ unspent is not the gift"):
        check_receipt(doc, gift.log_key)
    doc = copy.deepcopy(gift.doc)
    doc["allocation"] = doc["allocation"][:1]
    with pytest.raises(ReceiptInvalid, match="amounts"):
        check_receipt(doc, gift.log_key)
    doc = copy.deepcopy(gift.doc)
    doc["amount"] = 60.0
    with pytest.raises(ReceiptInvalid) as info:
        check_receipt(doc, gift.log_key)
    assert info.value.part == "amount"


def test_the_donor_commitment_right_and_wrong(gift):
    assert check_receipt(gift.doc, gift.log_key, salt=gift.salt, donor_ref=DONOR_REF).donor_checked
    for salt, ref in ((gift.salt, DONOR_REF + "x"), ("00" * 32, DONOR_REF)):
        with pytest.raises(ReceiptInvalid) as info:
            check_receipt(gift.doc, gift.log_key, salt=salt, donor_ref=ref)
        assert info.value.part == "donor_commitment"
    with pytest.raises(InvalidInput):
        check_receipt(gift.doc, gift.log_key, salt="zz", donor_ref=DONOR_REF)
    with pytest.raises(InvalidInput):
        check_receipt(gift.doc, gift.log_key, salt=gift.salt)


def test_a_new_gifts_receipt_from_the_donation_answer_checks_out(make_api):
    """The 201 answer to a donation carries no charity keys (nothing spent it yet): it checks."""
    env = make_api()
    resp = env.donate("receipt-check-new-1", donor_ref="me")
    body = resp.get_json()
    assert resp.status_code == 201 and "charity" not in body
    c = check_receipt(body, body["log_key"], salt=body["salt"], donor_ref="me")
    assert c.spent == 0 and c.unspent == c.amount and c.donor_checked
    # and the same gift read back carries them
    doc = env.client.get(f"/v1/receipts/{body['entry']['leaf_hash']}").get_json()
    assert doc["charity"]["key_rotations"] == [] and doc["project_opening"]["entry"]["kind"] == "project.opened"
    check_receipt(doc, body["log_key"])
