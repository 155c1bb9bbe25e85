"""Charity signatures on a real ledger: disbursements and key rotations through CharityLedger.

Every ledger here holds charity ``hope-foundation`` (3 keys, threshold 2), its CNY
project ``winter-relief`` and three donations (175.00 CNY).  Every refusal is shown
to write nothing: the log size, the latest checkpoint and every books row stay as
they were (``factories.writes_nothing``).
"""

from __future__ import annotations

import base64

import pytest
from conftest import REGISTRY
from factories import (
    CHARITY,
    OTHER_CHARITY,
    OTHER_PROJECT,
    PROJECT,
    START_MS,
    FrozenClock,
    alias_key,
    charity_signers,
    shifted,
    sign_all,
    vkeys,
    writes_nothing,
)

from ledger.charity import payload as payload_mod
from ledger.charity.audit import audit_books
from ledger.charity.books import Charity, check_signatures
from ledger.charity.kinds import MAX_WINDOW_SECONDS, postings_for
from ledger.errors import Conflict, InvalidEntry, NotFound, Replay, SignatureError
from ledger.log.ledger import Ledger
from ledger.log.verify import verify_log

# SQLite only: signature rules are pure functions of the books' rules; their storage is tested on both backends by test_writer and test_audit.
pytestmark = pytest.mark.sqlite_only("signature rules are pure functions of the books' rules; their storage is tested on both backends by test_writer and test_audit")

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.fixture
def setup(make_setup):
    return make_setup()


def registered_charity(ledger: Ledger, charity: str = CHARITY) -> Charity:
    """The charity as its registration entry in the log says (no books involved)."""
    for seq in range(ledger.size()):
        entry = ledger.entry(seq)
        if entry.kind == "charity.registered" and entry.body["charity"] == charity:
            b = entry.body
            return Charity(b["charity"], b["name"], tuple(b["keys"]), b["threshold"])
    raise AssertionError(f"no registration of {charity}")


def nobody(_public_key):
    return None


def refuse(setup, exc, match, fn, *args):
    with writes_nothing(setup.ledger), pytest.raises(exc, match=match) as info:
        fn(*args)
    return info.value


# -- a valid disbursement ---------------------------------------------------------------------


def test_two_of_three_disbursement_accepted_and_signatures_reverify_later(setup):
    balance = setup.charity.project(PROJECT).balance
    payload = setup.disbursement([("200 winter coats", "60.00"), ("delivery", "12.50")])
    sigs = sign_all(payload, setup.keys[0], setup.keys[2])
    entry = setup.charity.disburse(payload, sigs)
    assert entry.kind == "disbursement"
    assert setup.charity.project(PROJECT).balance == balance - 7250

    stored = setup.ledger.entry_by_receipt(entry.receipt)
    assert stored.body["payload"] == payload
    assert stored.body["signatures"] == sigs
    assert stored.body["postings"] == [
        {"account": f"project:{PROJECT}", "currency": "CNY", "amount": -7250},
        {"account": "payees", "currency": "CNY", "amount": 7250},
    ]
    # anyone can check them again from the log alone: the keys come from the registration entry
    charity = registered_charity(setup.ledger)
    check_signatures(stored.body["payload"], stored.body["signatures"], charity, nobody)
    check_signatures(stored.body["payload"], stored.body["signatures"], setup.charity.books.charity(CHARITY), nobody)
    # and the re-check is real: a copy with one changed fen does not verify
    forged = {**stored.body["payload"], "amount": 7251}
    with pytest.raises(SignatureError, match="does not verify"):
        check_signatures(forged, stored.body["signatures"], charity, nobody)
    verify_log(setup.ledger.store, REGISTRY)
    audit_books(setup.charity.stores)


def test_three_of_three_and_any_two_of_three_accepted(setup):
    k = setup.keys
    for signers in ([k[0], k[1]], [k[1], k[2]], [k[2], k[0]], [k[0], k[1], k[2]]):
        payload = setup.disbursement([("coats", "1.00")])
        setup.charity.disburse(payload, sign_all(payload, *signers))
    assert setup.charity.project(PROJECT).spent == 400


# -- who signed ------------------------------------------------------------------------------


def test_unregistered_key_refused(setup):
    stranger = charity_signers(CHARITY, 1, first=9)[0]  # named like the charity's keys, registered nowhere
    payload = setup.disbursement()
    refuse(setup, SignatureError, f"signature 1 is not by a current key of charity {CHARITY}",
           setup.charity.disburse, payload, sign_all(payload, setup.keys[0], stranger))  # fmt: skip
    # a stranger's signature spoils the whole, even beside a threshold of good ones
    refuse(setup, SignatureError, "signature 2 is not by a current key",
           setup.charity.disburse, payload, sign_all(payload, setup.keys[0], setup.keys[1], stranger))  # fmt: skip


def test_too_few_signers_refused(setup):
    payload = setup.disbursement()
    for signer in setup.keys:
        refuse(setup, SignatureError, f"1 distinct key\\(s\\) signed; charity {CHARITY} needs 2",
               setup.charity.disburse, payload, sign_all(payload, signer))  # fmt: skip


def test_same_signature_twice_refused(setup):
    payload = setup.disbursement()
    sig = payload_mod.sign(payload, setup.keys[0])
    refuse(setup, SignatureError, "signature 1: the same key signed twice", setup.charity.disburse, payload, [sig, sig])


def test_same_key_under_another_name_refused(setup):
    payload = setup.disbursement()
    sig = payload_mod.sign(payload, setup.keys[0])
    alias = {"key": alias_key(setup.keys[0], f"{CHARITY}/treasurer"), "signature": sig["signature"]}
    assert alias["key"] != sig["key"]
    refuse(setup, SignatureError, "signature 1: the same key signed twice", setup.charity.disburse, payload, [sig, alias])
    # a fresh signature by the same key does not help either
    again = payload_mod.sign(payload, setup.keys[0])
    refuse(setup, SignatureError, "the same key signed twice", setup.charity.disburse, payload, [sig, {**again, "key": alias["key"]}])


# -- what was signed ---------------------------------------------------------------------------


def test_amount_changed_after_signing_refused(setup):
    payload = setup.disbursement([("coats", "10.00"), ("delivery", "2.00")])
    sigs = sign_all(payload, setup.keys[0], setup.keys[1])
    payload["lines"][0]["amount"] += 9000
    payload["amount"] += 9000  # lines still sum; disburse recomputes the postings
    refuse(setup, SignatureError, "signature 0 by hope-foundation/finance-1 does not verify over the payload",
           setup.charity.disburse, payload, sigs)  # fmt: skip


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p["lines"][1].update(description="delivery to Lanzhou"),
        lambda p: p["lines"].reverse(),
        lambda p: p["payee"].update(name="Someone Else Ltd."),
        lambda p: p.update(purpose="something else"),
        lambda p: p["evidence"].append({"sha256": "0" * 64, "description": "late invoice"}),
        lambda p: p.update(nonce="another-nonce-0001"),
        lambda p: p.update(period={"start": "2026-09-01", "end": "2026-09-29"}),
    ],
    ids=["line description", "line order", "payee", "purpose", "evidence", "nonce", "period"],
)
def test_any_change_after_signing_refused(setup, tamper):
    payload = setup.disbursement([("coats", "10.00"), ("delivery", "2.00")])
    sigs = sign_all(payload, setup.keys[0], setup.keys[1])
    tamper(payload)
    refuse(setup, SignatureError, "does not verify over the payload", setup.charity.disburse, payload, sigs)


def test_signature_over_a_rotation_cannot_pass_as_a_disbursement(setup):
    rotation = setup.rotation(charity_signers(CHARITY, 3, first=4), nonce="same-nonce-0001")
    disbursement = setup.disbursement(nonce="same-nonce-0001")
    sigs = sign_all(rotation, setup.keys[0], setup.keys[1])
    refuse(setup, SignatureError, "does not verify", setup.charity.disburse, disbursement, sigs)


def _flip(sig: dict) -> dict:
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[10] ^= 0x01
    return {**sig, "signature": base64.b64encode(bytes(raw)).decode()}


def _non_canonical(sig: dict) -> dict:
    """Same 64 bytes, other spelling: set spare bits in the last base64 digit before the padding."""
    text = sig["signature"]
    last = B64.index(text[-3])
    assert last & 0x0F == 0
    other = text[:-3] + B64[last | 0x01] + "=="
    assert base64.b64decode(other) == base64.b64decode(text)
    return {**sig, "signature": other}


def test_bad_signature_bytes_refused(setup):
    payload = setup.disbursement()
    good = sign_all(payload, setup.keys[0], setup.keys[1])
    refuse(setup, SignatureError, "signature 1 by hope-foundation/finance-2 does not verify",
           setup.charity.disburse, payload, [good[0], _flip(good[1])])  # fmt: skip
    zero = {**good[0], "signature": base64.b64encode(bytes(64)).decode()}
    refuse(setup, SignatureError, "signature 0 .* does not verify", setup.charity.disburse, payload, [zero, good[1]])


def test_non_canonical_base64_signature_refused(setup):
    payload = setup.disbursement()
    good = sign_all(payload, setup.keys[0], setup.keys[1])
    refuse(setup, SignatureError, "signature 1 is not canonical base64",
           setup.charity.disburse, payload, [good[0], _non_canonical(good[1])])  # fmt: skip
    setup.charity.disburse(payload, good)  # the canonical spelling of the very same bytes is fine


@pytest.mark.parametrize(
    "spoil",
    [
        lambda s: s[:-4],  # truncated
        lambda s: s[:-2],  # padding dropped
        lambda s: s + "AAAA",  # too long
        lambda s: s.replace("=", "A"),
        lambda s: "*" + s[1:],  # not base64
        lambda s: s[:40] + " " + s[41:],
        lambda s: "",
    ],
    ids=["truncated", "no padding", "too long", "padding replaced", "bad char", "space", "empty"],
)
def test_malformed_signature_text_refused_by_the_static_rules(setup, spoil):
    """Signature text that is not 88 base64 characters fails the entry's shape (InvalidEntry, 422)
    before any key is consulted."""
    payload = setup.disbursement()
    good = sign_all(payload, setup.keys[0], setup.keys[1])
    bad = [good[0], {**good[1], "signature": spoil(good[1]["signature"])}]
    refuse(setup, InvalidEntry, r"\$\.signatures\[1\]\.signature: must be a base64 Ed25519 signature",
           setup.charity.disburse, payload, bad)  # fmt: skip


# -- nonces ------------------------------------------------------------------------------------


def test_replayed_disbursement_refused(setup):
    payload = setup.disbursement(nonce="disb-0001-replay")
    sigs = sign_all(payload, setup.keys[0], setup.keys[1])
    setup.charity.disburse(payload, sigs)
    exc = refuse(setup, Replay, f"nonce 'disb-0001-replay' was already used by charity {CHARITY}",
                 setup.charity.disburse, payload, sigs)  # fmt: skip
    assert exc.status == 409
    assert isinstance(exc, Conflict)
    assert exc.problem()["type"] == "/problems/replay"
    # a new, properly signed payload that reuses the nonce is a replay too
    other = setup.disbursement([("quilts", "3.00")], nonce="disb-0001-replay")
    refuse(setup, Replay, "already used", setup.charity.disburse, other, sign_all(other, setup.keys[1], setup.keys[2]))


def test_rotation_nonce_reused_by_a_disbursement_refused(setup):
    rotation = setup.rotation(setup.keys, nonce="shared-nonce-0001")  # same keys: a no-op rotation
    setup.charity.rotate_keys(rotation, sign_all(rotation, setup.keys[0], setup.keys[1]))
    payload = setup.disbursement(nonce="shared-nonce-0001")
    refuse(setup, Replay, "nonce 'shared-nonce-0001' was already used", setup.charity.disburse, payload,
           sign_all(payload, setup.keys[0], setup.keys[1]))  # fmt: skip


def test_disbursement_nonce_reused_by_a_rotation_refused(setup):
    payload = setup.disbursement(nonce="shared-nonce-0002")
    setup.charity.disburse(payload, sign_all(payload, setup.keys[0], setup.keys[1]))
    rotation = setup.rotation(charity_signers(CHARITY, 3, first=4), nonce="shared-nonce-0002")
    refuse(setup, Replay, "already used", setup.charity.rotate_keys, rotation, sign_all(rotation, setup.keys[0], setup.keys[1]))
    assert setup.charity.books.charity(CHARITY).keys == tuple(vkeys(setup.keys))


def _disbursement_item(payload, sigs):
    body = {"payload": payload, "signatures": sigs}
    body["postings"] = postings_for("disbursement", body)
    return ("disbursement", body)


def test_same_nonce_twice_in_one_batch_refused(setup):
    first = setup.disbursement([("coats", "1.00")], nonce="batch-nonce-0001")
    second = setup.disbursement([("quilts", "2.00")], nonce="batch-nonce-0001")
    items = [_disbursement_item(p, sign_all(p, setup.keys[0], setup.keys[1])) for p in (first, second)]
    refuse(setup, Replay, "already used", setup.ledger.append_batch, items)


def test_a_refused_entry_takes_its_batch_and_its_nonces_with_it(setup):
    good = setup.disbursement([("coats", "1.00")], nonce="batch-nonce-0002")
    bad = setup.disbursement([("quilts", "2.00")], nonce="batch-nonce-0003")
    items = [
        _disbursement_item(good, sign_all(good, setup.keys[0], setup.keys[1])),
        _disbursement_item(bad, sign_all(bad, setup.keys[0])),  # below the threshold
    ]
    refuse(setup, SignatureError, "needs 2", setup.ledger.append_batch, items)
    # nothing was kept, the first nonce included
    setup.charity.disburse(good, items[0][1]["signatures"])


def test_nonces_belong_to_one_charity(setup):
    other_keys = setup.register_other()
    setup.donate("40.00", project=OTHER_PROJECT)
    mine = setup.disbursement(nonce="common-nonce-0001")
    setup.charity.disburse(mine, sign_all(mine, setup.keys[0], setup.keys[1]))
    theirs = setup.disbursement(charity=OTHER_CHARITY, project=OTHER_PROJECT, nonce="common-nonce-0001")
    setup.charity.disburse(theirs, sign_all(theirs, other_keys[0], other_keys[1]))
    assert setup.charity.project(OTHER_PROJECT).spent == 1000


# -- signed_at window ----------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [-11 * 60, 11 * 60, -3600, 86400, -10 * 60 - 1, 10 * 60 + 1])
def test_signed_at_outside_ten_minutes_refused(setup, seconds):
    payload = setup.disbursement(signed_at=shifted(START_MS, seconds))
    refuse(setup, SignatureError, "is more than 600s from the server's time",
           setup.charity.disburse, payload, sign_all(payload, setup.keys[0], setup.keys[1]))  # fmt: skip


@pytest.mark.parametrize("seconds", [-9 * 60, 9 * 60, -1, 0, 1])
def test_signed_at_inside_ten_minutes_accepted(setup, seconds):
    payload = setup.disbursement(signed_at=shifted(START_MS, seconds))
    entry = setup.charity.disburse(payload, sign_all(payload, setup.keys[0], setup.keys[1]))
    assert entry.body["payload"]["signed_at"] == shifted(START_MS, seconds)


def test_rotation_signed_at_outside_the_window_refused(setup):
    rotation = setup.rotation(charity_signers(CHARITY, 3, first=4), signed_at=shifted(START_MS, -11 * 60))
    refuse(setup, SignatureError, "more than 600s", setup.charity.rotate_keys, rotation,
           sign_all(rotation, setup.keys[0], setup.keys[1]))  # fmt: skip


def test_window_edges_are_inclusive(make_setup):
    clock = FrozenClock(START_MS)
    setup = make_setup(clock=clock)
    for ms in (600_001, -600_001):
        payload = setup.disbursement(signed_at=shifted(START_MS, ms / 1000))
        refuse(setup, SignatureError, "more than 600s", setup.charity.disburse, payload,
               sign_all(payload, setup.keys[0], setup.keys[1]))  # fmt: skip
    for seconds in (600, -600):
        payload = setup.disbursement(signed_at=shifted(START_MS, seconds))
        entry = setup.charity.disburse(payload, sign_all(payload, setup.keys[0], setup.keys[1]))
        assert entry.time == shifted(START_MS, 0)


def test_the_window_is_recorded_in_the_log_once(setup):
    """Until the log records its policy the default (600 s) governs; from the policy
    entry on, its window does, for the server's check and the entry-time check alike."""
    payload = setup.disbursement(signed_at=shifted(START_MS, -120))
    setup.charity.disburse(payload, sign_all(payload, setup.keys[0], setup.keys[1]))  # the default takes 2 minutes
    assert setup.charity.policy() is None and setup.charity.window_seconds == 600
    entry = setup.charity.record_policy(60)
    assert (entry.kind, entry.body) == ("policy.recorded", {"signing_window_seconds": 60})
    assert (setup.charity.policy().signing_window_seconds, setup.charity.policy().seq) == (60, entry.seq)
    for seconds in (-120, 120, -61):
        payload = setup.disbursement(signed_at=shifted(START_MS, seconds))
        refuse(setup, SignatureError, "is more than 60s from the server's time", setup.charity.disburse, payload,
               sign_all(payload, setup.keys[0], setup.keys[1]))  # fmt: skip
    for seconds in (-30, 30):
        payload = setup.disbursement(signed_at=shifted(START_MS, seconds))
        setup.charity.disburse(payload, sign_all(payload, setup.keys[0], setup.keys[1]))
    # Recorded once: a second policy entry is refused, and nothing is written.
    refuse(setup, Conflict, f"already recorded, at seq {entry.seq}", setup.charity.record_policy, 600)
    # A replay of the log applies the same windows at the same seqs.
    assert audit_books(setup.charity.stores).disbursements == 3


@pytest.mark.parametrize("window", [0, -1, MAX_WINDOW_SECONDS + 1, "600", 600.0, True, None])
def test_a_policy_out_of_range_or_of_the_wrong_type_is_refused(setup, window):
    refuse(setup, InvalidEntry, "signing_window_seconds", setup.charity.record_policy, window)
    assert setup.charity.policy() is None


def test_a_window_of_a_whole_day_is_named_correctly(setup):
    """The refusal names the logged window; ``timedelta.seconds`` drops whole days."""
    setup.charity.record_policy(MAX_WINDOW_SECONDS)
    payload = setup.disbursement(signed_at=shifted(START_MS, -20 * 3600))
    setup.charity.disburse(payload, sign_all(payload, setup.keys[0], setup.keys[1]))  # 20 hours is inside
    payload = setup.disbursement(signed_at=shifted(START_MS, -2 * 86400))
    refuse(setup, SignatureError, f"is more than {MAX_WINDOW_SECONDS}s from the server's time", setup.charity.disburse,
           payload, sign_all(payload, setup.keys[0], setup.keys[1]))  # fmt: skip


# -- other charities --------------------------------------------------------------------------------


def test_another_charitys_key_refused(setup):
    other_keys = setup.register_other()
    payload = setup.disbursement()
    refuse(setup, SignatureError, f"signature 1 is by a key of charity {OTHER_CHARITY}, not {CHARITY}",
           setup.charity.disburse, payload, sign_all(payload, setup.keys[0], other_keys[0]))  # fmt: skip
    refuse(setup, SignatureError, f"signature 0 is by a key of charity {OTHER_CHARITY}, not {CHARITY}",
           setup.charity.disburse, payload, sign_all(payload, other_keys[0], other_keys[1]))  # fmt: skip


def test_payload_for_a_project_of_another_charity_refused(setup):
    other_keys = setup.register_other()
    setup.donate("40.00", project=OTHER_PROJECT)
    payload = setup.disbursement(charity=OTHER_CHARITY, project=PROJECT)
    refuse(setup, SignatureError, f"project '{PROJECT}' belongs to charity {CHARITY}, not {OTHER_CHARITY}",
           setup.charity.disburse, payload, sign_all(payload, other_keys[0], other_keys[1]))  # fmt: skip
    # nor can a charity spend another's project with its own keys
    payload = setup.disbursement(project=OTHER_PROJECT)
    refuse(setup, SignatureError, f"project '{OTHER_PROJECT}' belongs to charity {OTHER_CHARITY}, not {CHARITY}",
           setup.charity.disburse, payload, sign_all(payload, setup.keys[0], setup.keys[1]))  # fmt: skip


def test_registering_a_key_of_another_charity_refused(setup):
    mine = vkeys(setup.keys)
    fresh = vkeys(charity_signers(OTHER_CHARITY, 2))
    refuse(setup, Conflict, f"is registered to charity {CHARITY}", setup.charity.register_charity,
           OTHER_CHARITY, "River Trust", [*fresh, mine[1]], 2)  # fmt: skip
    # the same public key under another name is the same key
    refuse(setup, Conflict, f"is registered to charity {CHARITY}", setup.charity.register_charity,
           OTHER_CHARITY, "River Trust", [*fresh, alias_key(setup.keys[2], f"{OTHER_CHARITY}/finance-9")], 2)  # fmt: skip
    refuse(setup, Conflict, "already registered", setup.charity.register_charity, CHARITY, "Hope again", fresh, 1)
    setup.charity.register_charity(OTHER_CHARITY, "River Trust", fresh, 2)  # fine without the shared key


# -- key rotation ------------------------------------------------------------------------------------


def test_rotation_by_the_current_threshold_takes_effect(setup):
    new = charity_signers(CHARITY, 3, first=4)
    before = setup.disbursement([("before", "5.00")])
    old_entry = setup.charity.disburse(before, sign_all(before, setup.keys[0], setup.keys[1]))

    rotation = setup.rotation(new, threshold=2)
    setup.charity.rotate_keys(rotation, sign_all(rotation, setup.keys[1], setup.keys[2]))
    assert setup.charity.books.charity(CHARITY).keys == tuple(vkeys(new))

    payload = setup.disbursement()
    refuse(setup, SignatureError, f"signature 0 is not by a current key of charity {CHARITY}",
           setup.charity.disburse, payload, sign_all(payload, setup.keys[0], setup.keys[1]))  # fmt: skip
    refuse(setup, SignatureError, "not by a current key",
           setup.charity.disburse, payload, sign_all(payload, new[0], setup.keys[2]))  # fmt: skip
    setup.charity.disburse(payload, sign_all(payload, new[0], new[2]))

    # a disbursement from before the rotation still verifies with the keys of its time
    stored = setup.ledger.entry(old_entry.seq)
    check_signatures(stored.body["payload"], stored.body["signatures"], registered_charity(setup.ledger), nobody)
    verify_log(setup.ledger.store, REGISTRY)
    audit_books(setup.charity.stores)


def test_rotation_can_change_the_threshold(setup):
    new = charity_signers(CHARITY, 2, first=4)
    rotation = setup.rotation(new, threshold=1)
    setup.charity.rotate_keys(rotation, sign_all(rotation, setup.keys[0], setup.keys[2]))
    payload = setup.disbursement()
    setup.charity.disburse(payload, sign_all(payload, new[1]))


def test_rotation_below_the_threshold_refused(setup):
    new = charity_signers(CHARITY, 3, first=4)
    rotation = setup.rotation(new)
    refuse(setup, SignatureError, "1 distinct key\\(s\\) signed", setup.charity.rotate_keys, rotation,
           sign_all(rotation, setup.keys[0]))  # fmt: skip
    sig = payload_mod.sign(rotation, setup.keys[0])
    refuse(setup, SignatureError, "the same key signed twice", setup.charity.rotate_keys, rotation, [sig, sig])


def test_rotation_signed_by_the_new_keys_only_refused(setup):
    new = charity_signers(CHARITY, 3, first=4)
    rotation = setup.rotation(new)
    refuse(setup, SignatureError, "not by a current key", setup.charity.rotate_keys, rotation,
           sign_all(rotation, new[0], new[1]))  # fmt: skip
    refuse(setup, SignatureError, "not by a current key", setup.charity.rotate_keys, rotation,
           sign_all(rotation, new[0], new[1], new[2]))  # fmt: skip
    # nor does a new key's signature ride along with a threshold of current ones
    refuse(setup, SignatureError, "signature 2 is not by a current key", setup.charity.rotate_keys, rotation,
           sign_all(rotation, setup.keys[0], setup.keys[1], new[0]))  # fmt: skip


def test_rotation_to_another_charitys_key_refused(setup):
    other_keys = setup.register_other(project=None)
    new = charity_signers(CHARITY, 2, first=4)
    rotation = setup.rotation([*new, other_keys[1]], nonce="rotate-0001-conflict")
    refuse(setup, Conflict, f"is registered to charity {OTHER_CHARITY}", setup.charity.rotate_keys, rotation,
           sign_all(rotation, setup.keys[0], setup.keys[1]))  # fmt: skip
    books = setup.charity.books
    assert books.charity(CHARITY).keys == tuple(vkeys(setup.keys))
    assert books.owner_of(other_keys[1].verifier.public_key) == OTHER_CHARITY
    # the refusal did not even spend the nonce: a corrected rotation may reuse it
    fixed = setup.rotation(new, nonce="rotate-0001-conflict")
    setup.charity.rotate_keys(fixed, sign_all(fixed, setup.keys[0], setup.keys[1]))
    assert setup.charity.books.charity(CHARITY).keys == tuple(vkeys(new))


def test_rotation_of_a_charity_by_another_charitys_keys_refused(setup):
    other_keys = setup.register_other(project=None)
    rotation = setup.rotation(charity_signers(CHARITY, 3, first=4))
    refuse(setup, SignatureError, f"is by a key of charity {OTHER_CHARITY}, not {CHARITY}",
           setup.charity.rotate_keys, rotation, sign_all(rotation, other_keys[0], other_keys[1]))  # fmt: skip


def test_rotation_of_an_unknown_charity_refused(setup):
    rotation = setup.rotation(charity_signers("ghost", 2), charity="ghost")
    refuse(setup, NotFound, "no charity 'ghost'", setup.charity.rotate_keys, rotation,
           sign_all(rotation, setup.keys[0], setup.keys[1]))  # fmt: skip


def test_rotated_out_keys_stay_with_their_charity(setup):
    new = charity_signers(CHARITY, 3, first=4)
    rotation = setup.rotation(new)
    setup.charity.rotate_keys(rotation, sign_all(rotation, setup.keys[0], setup.keys[1]))
    # an old key cannot be handed to another charity, and signing with it still names its charity
    refuse(setup, Conflict, f"registered to charity {CHARITY}", setup.charity.register_charity,
           OTHER_CHARITY, "River Trust", vkeys(setup.keys[:1]), 1)  # fmt: skip
    old = setup.rotation(setup.keys)
    refuse(setup, SignatureError, "not by a current key", setup.charity.rotate_keys, old,
           sign_all(old, setup.keys[0], setup.keys[1]))  # fmt: skip
