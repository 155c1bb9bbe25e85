"""Signed requests (disbursements and key rotations) and the append lock.

What needs no log state is checked before the append lock is taken: the
payload's shape and types, that each signature verifies against the key it
names, and ``signed_at`` against the server's time now.  A request refused for
one of these never opens the append transaction.  What depends on the log (the
charity's current keys and threshold, key ownership, nonce reuse, the project
and its balance, ``signed_at`` against the entry's own time) is still checked
under the lock, and only that: no signature is verified while the lock is held.

This is shown by counting, not timing: :class:`LockWatch` counts the append
transactions opened on the real SQLite store, and the Ed25519 verifications
made while one is open.  Every wrong type in a signed payload is named with its
JSON path and the type expected.
"""

from __future__ import annotations

import base64
import re
from contextlib import contextmanager

import pytest
from api_helpers import PROJECT as API_PROJECT
from api_helpers import assert_problem, make_api, signed  # noqa: F401  (make_api is a fixture)
from factories import (
    CHARITY,
    OTHER_CHARITY,
    START_MS,
    FrozenClock,
    charity_signers,
    shifted,
    sign_all,
    time_at,
    writes_nothing,
)

from ledger.charity.audit import audit_books
from ledger.errors import InvalidEntry, InvalidInput, Overspend, Replay, SignatureError
from ledger.log.note import Verifier

# SQLite only: request signatures are checked at the edge; the writes they lead to are tested on both backends by test_api_writes.
pytestmark = pytest.mark.sqlite_only('request signatures are checked at the edge; the writes they lead to are tested on both backends by test_api_writes')


class LockWatch:
    """Counts append transactions opened on a ledger's log store (each one is the
    append lock: the flock and SQLite's write lock), and the Ed25519 signature
    verifications made while one is open.  The real store and the real verifier
    do the work; they are only counted."""

    def __init__(self, monkeypatch, ledger):
        self.opened = 0
        self.verified_under_lock = 0
        self._held = False
        store = ledger.store
        real_transaction, real_verify = store.append_transaction, Verifier.verify

        @contextmanager
        def append_transaction():
            self.opened += 1
            with real_transaction() as txn:
                self._held = True
                try:
                    yield txn
                finally:
                    self._held = False

        def verify(verifier, text, signature):
            self.verified_under_lock += self._held
            return real_verify(verifier, text, signature)

        monkeypatch.setattr(store, "append_transaction", append_transaction)
        monkeypatch.setattr(Verifier, "verify", verify)


class ScriptedClock:
    """Says each of ``times`` once, in order, then the last one for ever."""

    def __init__(self, *times: str):
        self.times = list(times)

    def __call__(self) -> str:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


@pytest.fixture
def setup(make_setup):
    """hope-foundation (3 keys, threshold 2), its CNY project winter-relief holding
    175.00 CNY, on a clock that says START_MS for ever."""
    return make_setup(clock=FrozenClock(START_MS))


def _flip(sig: dict) -> dict:
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[10] ^= 0x01
    return {**sig, "signature": base64.b64encode(bytes(raw)).decode()}


def _disbursement_refusal(setup, case: str):
    k = setup.keys
    payload = setup.disbursement([("coats", "10.00")])
    sigs = sign_all(payload, k[0], k[1])
    if case == "a flipped signature":
        return payload, [sigs[0], _flip(sigs[1])], SignatureError, "signature 1 by .* does not verify over the payload"
    if case == "the payload changed after signing":
        return {**payload, "purpose": "something else"}, sigs, SignatureError, "signature 0 by .* does not verify"
    if case == "the same key twice":
        return payload, [sigs[0], sigs[0]], SignatureError, "signature 1: the same key signed twice"
    if case == "a signature of zero bytes":
        zero = {**sigs[0], "signature": base64.b64encode(bytes(64)).decode()}
        return payload, [zero, sigs[1]], SignatureError, "signature 0 by .* does not verify"
    if case in ("signed an hour ago", "signed a day ahead"):
        when = shifted(START_MS, -3600 if case == "signed an hour ago" else 86400)
        late = setup.disbursement([("coats", "10.00")], signed_at=when)
        return late, sign_all(late, k[0], k[1]), SignatureError, "is more than 600s from the server's time"
    if case == "the amount as a string":
        bad = {**payload, "amount": "1000"}
        return bad, sign_all(bad, k[0], k[1]), InvalidEntry, re.escape(
            "$.payload.amount: must be an integer (minor units), not a string"
        )
    if case == "the lines as an object":
        bad = {**payload, "lines": {"coats": 1000}}
        return bad, sigs, InvalidEntry, re.escape("$.payload.lines: must be a list of 1 to 200 items, not an object")
    raise AssertionError(case)


LOCK_FREE_DISBURSEMENT_REFUSALS = [
    "a flipped signature",
    "the payload changed after signing",
    "the same key twice",
    "a signature of zero bytes",
    "signed an hour ago",
    "signed a day ahead",
    "the amount as a string",
    "the lines as an object",
]


@pytest.mark.parametrize("case", LOCK_FREE_DISBURSEMENT_REFUSALS)
def test_a_disbursement_refused_for_what_needs_no_log_never_takes_the_append_lock(setup, monkeypatch, case):
    payload, sigs, error, match = _disbursement_refusal(setup, case)
    watch = LockWatch(monkeypatch, setup.ledger)
    with writes_nothing(setup.charity, error, match):
        setup.charity.disburse(payload, sigs)
    assert watch.opened == 0


@pytest.mark.parametrize("case", ["a flipped signature", "signed an hour ago", "the threshold as a string"])
def test_a_key_rotation_refused_for_what_needs_no_log_never_takes_the_append_lock(setup, monkeypatch, case):
    k = setup.keys
    new = charity_signers(CHARITY, 3, first=4)
    rotation = setup.rotation(new, signed_at=shifted(START_MS, -3600) if case == "signed an hour ago" else None)
    sigs = sign_all(rotation, k[0], k[1])
    error, match = SignatureError, "is more than 600s from the server's time"
    if case == "a flipped signature":
        sigs, match = [_flip(sigs[0]), sigs[1]], "signature 0 by .* does not verify"
    elif case == "the threshold as a string":
        rotation = {**rotation, "threshold": "2"}
        error = InvalidEntry
        match = re.escape("$.payload.threshold: must be an integer from 1 to the number of keys (3), not a string")
    watch = LockWatch(monkeypatch, setup.ledger)
    with writes_nothing(setup.charity, error, match):
        setup.charity.rotate_keys(rotation, sigs)
    assert watch.opened == 0


def test_what_depends_on_the_log_is_checked_under_the_lock_and_only_that(setup, monkeypatch):
    """A valid disbursement and rotation land, and every refusal that depends on the log
    is still made: each takes the lock once, verifies no signature while holding it
    (that was done before), and a refusal writes nothing."""
    k, charity = setup.keys, setup.charity
    other = setup.register_other()  # river-trust, with a project of its own
    watch = LockWatch(monkeypatch, setup.ledger)

    first = setup.disbursement([("coats", "10.00")], nonce="first-nonce-0001")
    assert charity.disburse(first, sign_all(first, k[0], k[1])).kind == "disbursement"
    assert (watch.opened, watch.verified_under_lock) == (1, 0)

    stranger = charity_signers(CHARITY, 1, first=9)[0]  # a valid signature, by a key nobody registered
    small = setup.disbursement([("coats", "1.00")])
    refusals = [
        ("a replayed nonce", setup.disbursement([("quilts", "1.00")], nonce="first-nonce-0001"), (k[1], k[2]),
         Replay, "nonce 'first-nonce-0001' was already used"),
        ("an overspend", setup.disbursement([("everything", "165.01")]), (k[0], k[2]),
         Overspend, "exceeds project 'winter-relief' balance 16500"),
        ("a key that is not the charity's", small, (k[0], stranger),
         SignatureError, f"signature 1 is not by a current key of charity {CHARITY}"),
        ("a key of another charity", small, (k[0], other[0]),
         SignatureError, f"signature 1 is by a key of charity {OTHER_CHARITY}, not {CHARITY}"),
        ("below the threshold", small, (k[2],),
         SignatureError, f"1 distinct key\\(s\\) signed; charity {CHARITY} needs 2"),
    ]  # fmt: skip
    for n, (case, payload, signers, error, match) in enumerate(refusals, start=2):
        with writes_nothing(charity, error, match):
            charity.disburse(payload, sign_all(payload, *signers))
        assert (watch.opened, watch.verified_under_lock) == (n, 0), case

    # A rotation lands the same way, and the old keys are then not current: refused under the lock.
    new = charity_signers(CHARITY, 3, first=4)
    rotation = setup.rotation(new)
    charity.rotate_keys(rotation, sign_all(rotation, k[0], k[1]))
    stale = setup.disbursement([("coats", "1.00")])
    with writes_nothing(charity, SignatureError, "signature 0 is not by a current key"):
        charity.disburse(stale, sign_all(stale, k[0], k[1]))
    assert (watch.opened, watch.verified_under_lock) == (len(refusals) + 3, 0)
    audit_books(charity.stores)  # the auditor still verifies every signature in the log


def test_signed_at_is_checked_again_against_the_entry_time_under_the_lock(setup, monkeypatch):
    """signed within the window of the time before the lock, but not of the entry's time
    (the request waited for the lock): refused under the lock, nothing written."""
    payload = setup.disbursement([("coats", "10.00")], signed_at=time_at(START_MS))
    sigs = sign_all(payload, setup.keys[0], setup.keys[1])
    setup.ledger.clock = ScriptedClock(time_at(START_MS), shifted(START_MS, 601))
    watch = LockWatch(monkeypatch, setup.ledger)
    with writes_nothing(setup.charity, SignatureError, "is more than 600s from the entry time"):
        setup.charity.disburse(payload, sigs)
    assert watch.opened == 1


# -- every wrong type is named -----------------------------------------------------------------------


def _path(parts: tuple) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _with(body: dict, parts: tuple, value) -> dict:
    """A deep copy of ``body`` with the member at ``parts`` replaced."""
    import copy

    out = copy.deepcopy(body)
    target = out
    for p in parts[:-1]:
        target = target[p]
    target[parts[-1]] = value
    return out


ID = "an id (a string of 1-64 lowercase letters, digits and inner hyphens)"
MINOR = "an integer (minor units)"
SIGNATURE_TYPES = [
    (("signatures",), "two signatures", "a list of 1 to 16 signatures", "a string"),
    (("signatures", 0), "sig", "an object", "a string"),
    (("signatures", 0, "key"), 1, "a verifier key (a string name+hash+key)", "an integer"),
    (("signatures", 0, "signature"), None, "a base64 Ed25519 signature (a string)", "null"),
]
DISBURSEMENT_TYPES = [
    (("payload",), "pay 10.00", "an object", "a string"),
    (("payload", "action"), 1, "the string 'disbursement'", "an integer"),
    (("payload", "charity"), 7, ID, "an integer"),
    (("payload", "project"), ["winter-relief"], ID, "a list"),
    (("payload", "amount"), "100", MINOR, "a string"),
    (("payload", "amount"), 100.0, MINOR, "a number"),
    (("payload", "amount"), True, MINOR, "a boolean"),
    (("payload", "currency"), 156, "an ISO 4217 currency code (a string)", "an integer"),
    (("payload", "payee"), "Acme", "an object", "a string"),
    (("payload", "payee", "name"), None, "a string (non-empty text of at most 200 characters)", "null"),
    (("payload", "purpose"), {"text": "coats"}, "a string (non-empty text of at most 2000 characters)", "an object"),
    (("payload", "period"), ["2026-09-01", "2026-09-30"], "an object", "a list"),
    (("payload", "period", "start"), 20260901, "a date (a string YYYY-MM-DD)", "an integer"),
    (("payload", "period", "end"), None, "a date (a string YYYY-MM-DD)", "null"),
    (("payload", "lines"), {"coats": 1000}, "a list of 1 to 200 items", "an object"),
    (("payload", "lines", 0), "coats", "an object", "a string"),
    (("payload", "lines", 0, "description"), 5, "a string (non-empty text of at most 500 characters)", "an integer"),
    (("payload", "lines", 0, "amount"), "10.00", MINOR, "a string"),
    (("payload", "evidence"), "none", "a list of 0 to 100 items", "a string"),
    (("payload", "evidence", 0), ["ab"], "an object", "a list"),
    (("payload", "evidence", 0, "sha256"), 123, "a string of 64 lowercase hex digits", "an integer"),
    (("payload", "evidence", 0, "description"), False, "a string (non-empty text of at most 500 characters)", "a boolean"),
    (("payload", "nonce"), 12345678, "a string of 8-128 letters, digits and . _ : -", "an integer"),
    (("payload", "signed_at"), START_MS, "a time (a string, RFC 3339 UTC with milliseconds and Z)", "an integer"),
    *SIGNATURE_TYPES,
]
ROTATION_TYPES = [
    (("payload",), ["keys"], "an object", "a list"),
    (("payload", "action"), 2, "the string 'charity.keys_rotated'", "an integer"),
    (("payload", "charity"), None, ID, "null"),
    (("payload", "keys"), "one key", "a list of 1 to 16 verifier keys", "a string"),
    (("payload", "keys", 0), 1, "a verifier key (a string name+hash+key)", "an integer"),
    (("payload", "threshold"), "2", "an integer from 1 to the number of keys (3)", "a string"),
    (("payload", "threshold"), 2.0, "an integer from 1 to the number of keys (3)", "a number"),
    (("payload", "nonce"), None, "a string of 8-128 letters, digits and . _ : -", "null"),
    (("payload", "signed_at"), {"at": "now"}, "a time (a string, RFC 3339 UTC with milliseconds and Z)", "an object"),
    *SIGNATURE_TYPES,
]


def _named(setup, monkeypatch, call, payload, parts, value, must):
    """``call`` with ``payload`` signed, then ``value`` put at ``parts``: refused before the
    lock, with the path and the type named, and nothing written."""
    body = _with({"payload": payload, "signatures": sign_all(payload, *setup.keys[:2])}, parts, value)
    watch = LockWatch(monkeypatch, setup.ledger)
    message = f"{_path(parts)}: {must}"
    with writes_nothing(setup.charity, InvalidInput, f"^{re.escape(message)}$") as info:
        call(body["payload"], body["signatures"])
    assert info.value.status == 422 and watch.opened == 0


def _ids(cases):
    return [f"{_path(parts)}={value!r:.20}" for parts, value, _, _ in cases]


@pytest.mark.parametrize(("parts", "value", "expected", "found"), DISBURSEMENT_TYPES, ids=_ids(DISBURSEMENT_TYPES))
def test_every_wrong_type_in_a_disbursement_is_named(setup, monkeypatch, parts, value, expected, found):
    payload = setup.disbursement([("coats", "10.00")], evidence=[("ab" * 32, "invoice (PDF)")])
    _named(setup, monkeypatch, setup.charity.disburse, payload, parts, value, f"must be {expected}, not {found}")


@pytest.mark.parametrize(("parts", "value", "expected", "found"), ROTATION_TYPES, ids=_ids(ROTATION_TYPES))
def test_every_wrong_type_in_a_key_rotation_is_named(setup, monkeypatch, parts, value, expected, found):
    rotation = setup.rotation(charity_signers(CHARITY, 3, first=4))
    _named(setup, monkeypatch, setup.charity.rotate_keys, rotation, parts, value, f"must be {expected}, not {found}")


def test_an_amount_sent_as_a_string_over_http_names_the_field(make_api):
    env = make_api()
    payload = {**env.disbursement(), "amount": "100"}
    with env.unchanged():
        resp = env.client.post(f"/v1/projects/{API_PROJECT}/disbursements", json=signed(payload, *env.keys[:2]))
        problem = assert_problem(resp, 422)
    assert problem["detail"] == "$.payload.amount: must be an integer (minor units), not a string"
