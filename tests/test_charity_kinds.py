"""The static rules of the charity entry kinds (ledger/charity/kinds.py), checked through
``ledger.log.entry.body_bytes``: valid bodies pass; unknown, missing and mistyped fields,
postings that are not exactly ``postings_for``, and every shape rule are refused with
InvalidEntry naming the field.  A selection is also sent through ``Ledger.append`` to
show that a static refusal writes nothing.
"""

from __future__ import annotations

import ast
import collections
import copy
import hashlib
import subprocess
import sys

import pytest
import rfc8785
from conftest import REGISTRY
from factories import alias_key, charity_signers, sign_all, vkeys, writes_nothing
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.charity import payload as payload_mod
from ledger.charity.kinds import (
    CHANNELS,
    MAX_EVIDENCE,
    MAX_KEYS,
    ID_PATTERN,
    MAX_LINES,
    TOKEN_PATTERN,
    donation_bytes,
    postings_for,
)
from ledger.charity.money import CURRENCIES, MAX_MINOR
from ledger.errors import InvalidEntry, InvalidInput
from ledger.log import clock as clock_mod
from ledger.log.canonical import canonical_bytes
from ledger.log.entry import body_bytes

CHARITY = "hope-foundation"
PROJECT = "winter-relief-2026"
SIGNED_AT = "2026-11-29T08:00:00.000Z"
HEX = hashlib.sha256(b"invoice").hexdigest()
DONATION_RECEIPT = hashlib.sha256(b"a donation").hexdigest()
KEYS = charity_signers(CHARITY, 3)
NEW_KEYS = charity_signers(CHARITY, 3, first=4)


def _rotation_body() -> dict:
    payload = payload_mod.rotation(
        charity=CHARITY, keys=vkeys(NEW_KEYS), threshold=2, nonce="rotate-2026-11-29-01", signed_at=SIGNED_AT
    )
    return {"payload": payload, "signatures": sign_all(payload, KEYS[0], KEYS[1])}


def _disbursement_body() -> dict:
    payload = payload_mod.disbursement(
        charity=CHARITY,
        project=PROJECT,
        currency="CNY",
        payee="Lanzhou Warm Textiles Co., Ltd.",
        purpose="200 winter coats for families in Dingxi",
        period=("2026-11-01", "2026-11-30"),
        lines=[("200 coats at 150.00", "30000.00"), ("delivery to Dingxi", "1200.00")],
        evidence=[(HEX, "invoice 2026-1123 (PDF)")],
        nonce="disb-2026-11-29-0001",
        signed_at=SIGNED_AT,
    )
    body = {"payload": payload, "signatures": sign_all(payload, KEYS[0], KEYS[1])}
    body["postings"] = postings_for("disbursement", body)
    return body


def _donation_body(amount: int = 20000) -> dict:
    body = {
        "project": PROJECT,
        "amount": amount,
        "currency": "CNY",
        "channel": "wechat",
        "payment_ref_hash": hashlib.sha256(b"WX-1").hexdigest(),
        "donor_commitment": hashlib.sha256(b"salt" + b"donor").hexdigest(),
        "value_date": "2026-11-29",
        "intake_key": "intake-2026-11-29-000001",
    }
    body["postings"] = postings_for("donation", body)
    return body


def _refund_body(amount: int = 5000) -> dict:
    body = {
        "donation": DONATION_RECEIPT,
        "project": PROJECT,
        "amount": amount,
        "currency": "CNY",
        "reason": "Donor asked for a partial refund",
    }
    body["postings"] = postings_for("refund", body)
    return body


_VALID = {
    "charity.registered": {"charity": CHARITY, "name": "Hope Foundation", "keys": vkeys(KEYS), "threshold": 2},
    "charity.keys_rotated": _rotation_body(),
    "project.opened": {
        "project": PROJECT,
        "charity": CHARITY,
        "title": "Winter relief 2026",
        "purpose": "Coats, quilts and heating for 500 families",
        "currency": "CNY",
        "target": 50000000,
        "period": {"start": "2026-11-01", "end": "2027-02-28"},
    },
    "donation": _donation_body(),
    "disbursement": _disbursement_body(),
    "refund": _refund_body(),
    "project.closed": {"project": PROJECT, "reason": "Campaign period ended"},
}
KINDS = list(_VALID)

# The documented required members (docs/entries.md), written out rather than read from the code.
REQUIRED = {
    "charity.registered": ["charity", "name", "keys", "threshold"],
    "charity.keys_rotated": ["payload", "signatures"],
    "project.opened": ["project", "charity", "title", "purpose", "currency"],
    "donation": [
        "project",
        "amount",
        "currency",
        "channel",
        "payment_ref_hash",
        "donor_commitment",
        "value_date",
        "intake_key",
        "postings",
    ],
    "disbursement": ["payload", "signatures", "postings"],
    "refund": ["donation", "project", "amount", "currency", "reason", "postings"],
    "project.closed": ["project", "reason"],
}
PAYLOAD_REQUIRED = {
    "charity.keys_rotated": ["action", "charity", "keys", "threshold", "nonce", "signed_at"],
    "disbursement": [
        "action",
        "charity",
        "project",
        "amount",
        "currency",
        "payee",
        "purpose",
        "period",
        "lines",
        "evidence",
        "nonce",
        "signed_at",
    ],
}


def valid(kind: str) -> dict:
    return copy.deepcopy(_VALID[kind])


def at(body: dict, path):
    """The container holding the last step of ``path`` (a tuple of keys and indexes)."""
    for step in path[:-1]:
        body = body[step]
    return body


def with_value(kind: str, path, value) -> dict:
    body = valid(kind)
    at(body, path)[path[-1]] = value
    return body


def without(kind: str, path) -> dict:
    body = valid(kind)
    del at(body, path)[path[-1]]
    return body


def refused(kind: str, body, match: str | None = None):
    with pytest.raises(InvalidEntry, match=match) as info:
        body_bytes(kind, body, REGISTRY)
    assert info.value.status == 422
    return info.value


# -- valid bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_valid_body_accepted(kind):
    body = valid(kind)
    assert body_bytes(kind, body, REGISTRY) == canonical_bytes(body)


def test_optional_project_fields_may_be_left_out():
    body = valid("project.opened")
    del body["target"], body["period"]
    body_bytes("project.opened", body, REGISTRY)


def test_disbursement_without_evidence_and_single_day_period():
    body = valid("disbursement")
    body["payload"]["evidence"] = []
    body["payload"]["period"] = {"start": "2026-11-30", "end": "2026-11-30"}
    body_bytes("disbursement", body, REGISTRY)


def test_ids_at_the_limits():
    for good in ["a", "0", "a-b", "a" * 64, "a--b", "2026"]:
        body_bytes("project.closed", {"project": good, "reason": "done"}, REGISTRY)


def test_every_channel_accepted():
    for channel in CHANNELS:
        body = valid("donation")
        body["channel"] = channel
        body_bytes("donation", body, REGISTRY)


def test_threshold_may_equal_the_number_of_keys_and_sixteen_keys_are_allowed():
    signers = charity_signers(CHARITY, MAX_KEYS)
    body_bytes("charity.registered", {"charity": CHARITY, "name": "Hope", "keys": vkeys(signers), "threshold": 16}, REGISTRY)


# -- unknown and missing fields -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_field_refused(kind):
    body = valid(kind)
    body["memo"] = "x"
    refused(kind, body, r"^\$: unknown field\(s\) memo$")


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("charity.keys_rotated", ("payload", "memo")),
        ("charity.keys_rotated", ("signatures", 0, "memo")),
        ("disbursement", ("payload", "memo")),
        ("disbursement", ("payload", "payee", "iban")),
        ("disbursement", ("payload", "lines", 0, "memo")),
        ("disbursement", ("payload", "evidence", 0, "memo")),
        ("disbursement", ("payload", "period", "memo")),
        ("disbursement", ("signatures", 1, "memo")),
        ("project.opened", ("period", "memo")),
    ],
)
def test_unknown_nested_field_refused(kind, path):
    refused(kind, with_value(kind, path, "x"), "unknown field")


@pytest.mark.parametrize(("kind", "field"), [(k, f) for k, fs in REQUIRED.items() for f in fs])
def test_missing_field_refused(kind, field):
    refused(kind, without(kind, (field,)), rf"^\$: missing field {field}$")


@pytest.mark.parametrize(("kind", "field"), [(k, f) for k, fs in PAYLOAD_REQUIRED.items() for f in fs])
def test_missing_payload_field_refused(kind, field):
    refused(kind, without(kind, ("payload", field)), rf"^\$\.payload: missing field {field}$")


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("charity.keys_rotated", ("signatures", 0, "key")),
        ("charity.keys_rotated", ("signatures", 0, "signature")),
        ("disbursement", ("payload", "payee", "name")),
        ("disbursement", ("payload", "period", "start")),
        ("disbursement", ("payload", "period", "end")),
        ("disbursement", ("payload", "lines", 0, "amount")),
        ("disbursement", ("payload", "lines", 0, "description")),
        ("disbursement", ("payload", "evidence", 0, "sha256")),
        ("disbursement", ("payload", "evidence", 0, "description")),
        ("project.opened", ("period", "end")),
    ],
)
def test_missing_nested_field_refused(kind, path):
    refused(kind, without(kind, path), f"missing field {path[-1]}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", [None, [], "body", 1])
def test_body_must_be_an_object(kind, body):
    refused(kind, body, "must be a JSON object")


# -- wrong types and shapes ------------------------------------------------------------------

BAD = [
    # (kind, path, value, what the message names)
    ("charity.registered", ("charity",), 7, r"\$\.charity: must be an id"),
    ("charity.registered", ("charity",), "Hope-Foundation", r"\$\.charity: must be an id"),
    ("charity.registered", ("name",), "", r"\$\.name: must be non-empty"),
    ("charity.registered", ("name",), "   ", r"\$\.name: must be non-empty"),
    ("charity.registered", ("name",), ["Hope"], r"\$\.name"),
    ("charity.registered", ("name",), "x" * 201, r"\$\.name: must be non-empty text of at most 200"),
    ("charity.registered", ("keys",), "a key", r"\$\.keys: must be a list of 1 to 16 verifier keys, not a string"),
    ("charity.registered", ("keys",), [], r"\$\.keys: must list 1 to 16"),
    ("charity.registered", ("keys",), [7], r"\$\.keys\[0\]"),
    ("charity.registered", ("keys", 1), "hope+00000000+AAAA", r"\$\.keys\[1\]"),
    ("charity.registered", ("threshold",), "2", r"\$\.threshold: must be an integer from 1 to the number of keys \(3\)"),
    ("charity.registered", ("threshold",), True, r"\$\.threshold"),
    ("charity.registered", ("threshold",), None, r"\$\.threshold"),
    ("charity.registered", ("threshold",), 0, r"\$\.threshold"),
    ("charity.registered", ("threshold",), -1, r"\$\.threshold"),
    ("charity.registered", ("threshold",), 4, r"\$\.threshold: must be an integer from 1 to the number of keys \(3\)"),
    ("charity.keys_rotated", ("payload",), "signed", r"\$\.payload: must be an object"),
    ("charity.keys_rotated", ("payload", "action"), "disbursement", r"\$\.payload\.action: must be 'charity\.keys_rotated'"),
    ("charity.keys_rotated", ("payload", "charity"), "hope foundation", r"\$\.payload\.charity"),
    ("charity.keys_rotated", ("payload", "keys"), [], r"\$\.payload\.keys"),
    ("charity.keys_rotated", ("payload", "threshold"), 0, r"\$\.payload\.threshold"),
    ("charity.keys_rotated", ("payload", "threshold"), 4, r"\$\.payload\.threshold"),
    ("charity.keys_rotated", ("payload", "threshold"), True, r"\$\.payload\.threshold"),
    ("charity.keys_rotated", ("payload", "nonce"), "short", r"\$\.payload\.nonce: must be 8-128"),
    ("charity.keys_rotated", ("payload", "nonce"), "has a space", r"\$\.payload\.nonce"),
    ("charity.keys_rotated", ("payload", "nonce"), "n" * 129, r"\$\.payload\.nonce"),
    ("charity.keys_rotated", ("payload", "nonce"), 12345678, r"\$\.payload\.nonce"),
    ("charity.keys_rotated", ("payload", "signed_at"), "2026-11-29T08:00:00Z", r"\$\.payload\.signed_at"),
    ("charity.keys_rotated", ("payload", "signed_at"), "2026-11-29T08:00:00.000+08:00", r"\$\.payload\.signed_at"),
    ("charity.keys_rotated", ("payload", "signed_at"), "2026-02-30T08:00:00.000Z", r"\$\.payload\.signed_at.*real date"),
    ("charity.keys_rotated", ("payload", "signed_at"), 1790000000, r"\$\.payload\.signed_at"),
    ("charity.keys_rotated", ("signatures",), [], r"\$\.signatures: must list 1 to 16"),
    ("charity.keys_rotated", ("signatures",), {"key": "k"}, r"\$\.signatures: must be a list of 1 to 16 signatures, not an object"),
    ("charity.keys_rotated", ("signatures", 0), "sig", r"\$\.signatures\[0\]: must be an object"),
    ("charity.keys_rotated", ("signatures", 0, "key"), "not a key", r"\$\.signatures\[0\]\.key"),
    ("charity.keys_rotated", ("signatures", 0, "signature"), "AAAA", r"\$\.signatures\[0\]\.signature"),
    ("charity.keys_rotated", ("signatures", 0, "signature"), "!" * 86 + "==", r"\$\.signatures\[0\]\.signature"),
    ("project.opened", ("project",), "Winter", r"\$\.project: must be an id"),
    ("project.opened", ("project",), "winter relief", r"\$\.project: must be an id"),
    ("project.opened", ("project",), "a" * 65, r"\$\.project: must be an id"),
    ("project.opened", ("project",), "-winter", r"\$\.project: must be an id"),
    ("project.opened", ("project",), "winter-", r"\$\.project: must be an id"),
    ("project.opened", ("project",), "winter_relief", r"\$\.project: must be an id"),
    ("project.opened", ("project",), "", r"\$\.project: must be an id"),
    ("project.opened", ("project",), "冬季", r"\$\.project: must be an id"),
    ("project.opened", ("charity",), None, r"\$\.charity: must be an id"),
    ("project.opened", ("title",), "", r"\$\.title"),
    ("project.opened", ("purpose",), "p" * 2001, r"\$\.purpose: must be non-empty text of at most 2000"),
    ("project.opened", ("currency",), "cny", r"\$\.currency: must be an ISO 4217"),
    ("project.opened", ("currency",), "XXX", r"\$\.currency"),
    ("project.opened", ("currency",), 156, r"\$\.currency"),
    ("project.opened", ("target",), 0, r"\$\.target: must be a positive integer number of minor units, at most 1000000000000000"),
    ("project.opened", ("target",), -100, r"\$\.target: must be a positive integer number of minor units, at most 1000000000000000"),
    ("project.opened", ("target",), True, r"\$\.target: must be an integer \(minor units\), not a boolean"),
    ("project.opened", ("target",), "500.00", r"\$\.target: must be an integer \(minor units\), not a string"),
    ("project.opened", ("target",), 1.5, r"\$\.target: must be an integer \(minor units\), not a number"),
    ("project.opened", ("target",), MAX_MINOR + 1, r"\$\.target: must be a positive integer number of minor units, at most 1000000000000000"),
    ("project.opened", ("period",), {"start": "2027-03-01", "end": "2027-02-28"}, r"\$\.period: start is after end"),
    ("project.opened", ("period",), {"start": "2026-02-30", "end": "2027-02-28"}, r"\$\.period\.start: 2026-02-30 is not a real date"),
    ("project.opened", ("period",), {"start": "2026-11-01", "end": "2027-02-29"}, r"\$\.period\.end: 2027-02-29 is not a real date"),
    ("project.opened", ("period",), {"start": "2026-11-1", "end": "2027-02-28"}, r"\$\.period\.start: must be a date"),
    ("project.opened", ("period",), {"start": "20261101", "end": "2027-02-28"}, r"\$\.period\.start: must be a date"),
    ("project.opened", ("period",), ["2026-11-01", "2027-02-28"], r"\$\.period: must be an object"),
    ("donation", ("amount",), 0, r"\$\.amount: must be a positive integer number of minor units, at most 1000000000000000"),
    ("donation", ("amount",), True, r"\$\.amount: must be an integer \(minor units\), not a boolean"),
    ("donation", ("amount",), "200.00", r"\$\.amount: must be an integer \(minor units\), not a string"),
    ("donation", ("amount",), MAX_MINOR + 1, r"\$\.amount: must be a positive integer number of minor units, at most 1000000000000000"),
    ("donation", ("currency",), "RMB", r"\$\.currency"),
    ("donation", ("channel",), "paypal", r"\$\.channel: must be one of wechat, alipay"),
    ("donation", ("channel",), "WeChat", r"\$\.channel"),
    ("donation", ("channel",), "", r"\$\.channel"),
    ("donation", ("channel",), ["wechat"], r"\$\.channel"),
    ("donation", ("payment_ref_hash",), HEX.upper(), r"\$\.payment_ref_hash: must be 64 lowercase hex"),
    ("donation", ("payment_ref_hash",), HEX[:63], r"\$\.payment_ref_hash"),
    ("donation", ("payment_ref_hash",), HEX + "0", r"\$\.payment_ref_hash"),
    ("donation", ("payment_ref_hash",), "g" * 64, r"\$\.payment_ref_hash"),
    ("donation", ("payment_ref_hash",), "WX-4200001234", r"\$\.payment_ref_hash"),
    ("donation", ("donor_commitment",), HEX[:32].upper() + HEX[32:], r"\$\.donor_commitment: must be 64 lowercase hex"),
    ("donation", ("donor_commitment",), " " + HEX[1:], r"\$\.donor_commitment"),
    ("donation", ("value_date",), "2026-02-30", r"\$\.value_date: 2026-02-30 is not a real date"),
    ("donation", ("value_date",), "2026-13-01", r"\$\.value_date: 2026-13-01 is not a real date"),
    ("donation", ("value_date",), "2026/11/29", r"\$\.value_date: must be a date"),
    ("donation", ("value_date",), "2026-11-29T00:00:00.000Z", r"\$\.value_date: must be a date"),
    ("donation", ("intake_key",), "short", r"\$\.intake_key: must be 8-128"),
    ("donation", ("intake_key",), "intake key 1", r"\$\.intake_key"),
    ("donation", ("postings",), {"donors": -20000}, r"\$\.postings: must be a list"),
    ("disbursement", ("payload", "action"), "charity.keys_rotated", r"\$\.payload\.action: must be 'disbursement'"),
    ("disbursement", ("payload", "project"), "Winter", r"\$\.payload\.project: must be an id"),
    ("disbursement", ("payload", "currency"), "cny", r"\$\.payload\.currency"),
    ("disbursement", ("payload", "payee"), "Lanzhou Warm Textiles", r"\$\.payload\.payee: must be an object"),
    ("disbursement", ("payload", "payee", "name"), "", r"\$\.payload\.payee\.name"),
    ("disbursement", ("payload", "purpose"), "", r"\$\.payload\.purpose"),
    ("disbursement", ("payload", "period", "start"), "2026-12-01", r"\$\.payload\.period: start is after end"),
    ("disbursement", ("payload", "period", "end"), "2026-11-31", r"\$\.payload\.period\.end: 2026-11-31 is not a real date"),
    ("disbursement", ("payload", "lines"), [], r"\$\.payload\.lines: must list 1 to 200"),
    ("disbursement", ("payload", "lines", 0, "amount"), 0, r"\$\.payload\.lines\[0\]\.amount: must be a positive integer number of minor units, at most 1000000000000000"),
    ("disbursement", ("payload", "lines", 1, "amount"), -120000, r"\$\.payload\.lines\[1\]\.amount: must be a positive integer number of minor units, at most 1000000000000000"),
    ("disbursement", ("payload", "lines", 0, "amount"), "30000.00", r"\$\.payload\.lines\[0\]\.amount: must be an integer \(minor units\), not a string"),
    ("disbursement", ("payload", "lines", 0, "description"), "", r"\$\.payload\.lines\[0\]\.description"),
    ("disbursement", ("payload", "evidence"), None, r"\$\.payload\.evidence: must be a list of 0 to 100 items, not null"),
    ("disbursement", ("payload", "evidence", 0, "sha256"), HEX.upper(), r"\$\.payload\.evidence\[0\]\.sha256"),
    ("disbursement", ("payload", "evidence", 0, "sha256"), HEX[:40], r"\$\.payload\.evidence\[0\]\.sha256"),
    ("disbursement", ("payload", "nonce"), "n0nce", r"\$\.payload\.nonce"),
    ("disbursement", ("payload", "signed_at"), "yesterday", r"\$\.payload\.signed_at"),
    ("disbursement", ("signatures",), [], r"\$\.signatures: must list 1 to 16"),
    ("disbursement", ("signatures", 0, "key"), vkeys(KEYS)[0].replace("+", " ", 1), r"\$\.signatures\[0\]\.key"),
    ("refund", ("donation",), DONATION_RECEIPT.upper(), r"\$\.donation: must be 64 lowercase hex"),
    ("refund", ("donation",), DONATION_RECEIPT[:63], r"\$\.donation"),
    ("refund", ("project",), "Winter Relief", r"\$\.project: must be an id"),
    ("refund", ("reason",), "", r"\$\.reason"),
    ("refund", ("reason",), "r" * 2001, r"\$\.reason"),
    ("project.closed", ("project",), "WINTER", r"\$\.project: must be an id"),
    ("project.closed", ("project",), "winter relief", r"\$\.project: must be an id"),
    ("project.closed", ("project",), "w" * 65, r"\$\.project: must be an id"),
    ("project.closed", ("reason",), " ", r"\$\.reason"),
    ("project.closed", ("reason",), 42, r"\$\.reason"),
]


@pytest.mark.parametrize(("kind", "path", "value", "match"), BAD, ids=[f"{k}:{'.'.join(map(str, p))}={v!r:.30}" for k, p, v, _ in BAD])
def test_bad_value_refused(kind, path, value, match):
    refused(kind, with_value(kind, path, value), match)


def test_a_value_of_max_minor_is_allowed():
    body = valid("donation")
    body["amount"] = MAX_MINOR
    body["postings"] = postings_for("donation", body)
    body_bytes("donation", body, REGISTRY)


def test_too_many_lines_and_too_much_evidence_refused():
    body = valid("disbursement")
    body["payload"]["lines"] = [{"description": f"line {i}", "amount": 1} for i in range(MAX_LINES + 1)]
    body["payload"]["amount"] = MAX_LINES + 1
    body["postings"] = postings_for("disbursement", body)
    refused("disbursement", body, r"\$\.payload\.lines: must list 1 to 200")
    body["payload"]["lines"] = body["payload"]["lines"][:MAX_LINES]
    body["payload"]["amount"] = MAX_LINES
    body["postings"] = postings_for("disbursement", body)
    body_bytes("disbursement", body, REGISTRY)  # exactly the maximum is fine
    body["payload"]["evidence"] = [{"sha256": HEX, "description": f"file {i}"} for i in range(MAX_EVIDENCE + 1)]
    refused("disbursement", body, r"\$\.payload\.evidence: must list 0 to 100")


@pytest.mark.parametrize(("kind", "path"), [("charity.registered", ("keys",)), ("charity.keys_rotated", ("payload", "keys"))])
def test_key_lists(kind, path):
    # more than 16 keys
    seventeen = vkeys(charity_signers(CHARITY, MAX_KEYS + 1, first=20))
    refused(kind, with_value(kind, path, seventeen), "must list 1 to 16 verifier keys")
    # the same key twice
    keys = vkeys(KEYS)
    refused(kind, with_value(kind, path, [keys[0], keys[1], keys[0]]), "lists the same key twice")
    # the same public key under another name is still the same key
    refused(kind, with_value(kind, path, [keys[0], keys[1], alias_key(KEYS[0], "alias")]), "lists the same key twice")


def test_threshold_above_the_number_of_keys_in_a_rotation():
    body = valid("charity.keys_rotated")
    body["payload"]["keys"] = body["payload"]["keys"][:1]
    refused("charity.keys_rotated", body, r"\$\.payload\.threshold: must be an integer from 1 to the number of keys \(1\)")


def test_seventeen_signatures_refused():
    body = valid("disbursement")
    body["signatures"] = body["signatures"] * 9
    refused("disbursement", body, r"\$\.signatures: must list 1 to 16")


def test_disbursement_lines_must_sum_to_the_amount():
    for delta in (1, -1, 10**6):
        body = valid("disbursement")
        body["payload"]["amount"] += delta
        body["postings"] = postings_for("disbursement", body)
        refused("disbursement", body, r"\$\.payload\.lines: do not sum to the amount")
    body = valid("disbursement")
    body["payload"]["lines"].append({"description": "extra", "amount": 1})
    refused("disbursement", body, r"\$\.payload\.lines: do not sum to the amount")


def test_payload_builders_refuse_what_the_rules_refuse():
    with pytest.raises(InvalidInput, match="is not the sum of the lines"):
        payload_mod.disbursement(
            charity=CHARITY, project=PROJECT, currency="CNY", payee="P", purpose="x", period=("2026-11-01", "2026-11-02"),
            lines=[("a", "1.00"), ("b", "2.00")], amount="3.01", signed_at=SIGNED_AT,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="period: start is after end"):
        payload_mod.disbursement(
            charity=CHARITY, project=PROJECT, currency="CNY", payee="P", purpose="x", period=("2026-11-02", "2026-11-01"),
            lines=[("a", "1.00")], signed_at=SIGNED_AT,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="more than 2 decimal places"):
        payload_mod.disbursement(
            charity=CHARITY, project=PROJECT, currency="CNY", payee="P", purpose="x", period=("2026-11-01", "2026-11-02"),
            lines=[("a", "1.001")], signed_at=SIGNED_AT,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="threshold"):
        payload_mod.rotation(charity=CHARITY, keys=vkeys(KEYS), threshold=4, signed_at=SIGNED_AT)
    with pytest.raises(InvalidInput, match="same key twice"):
        payload_mod.rotation(charity=CHARITY, keys=vkeys(KEYS[:1]) * 2, threshold=1, signed_at=SIGNED_AT)


# -- the clock's cache must not let an empty time through ---------------------------------------


@pytest.mark.parametrize(("kind", "path"), [("charity.keys_rotated", ("payload", "signed_at")), ("disbursement", ("payload", "signed_at"))])
def test_empty_signed_at_refused_in_a_fresh_process(monkeypatch, kind, path):
    """``ledger.log.clock.check_time`` remembers the last good time to skip re-checking a batch's
    shared time.  A fresh process (a new server, or a verify_log worker) must still
    refuse an empty signed_at, so the memo must not start as a value that matches one."""
    fresh = subprocess.run(
        [sys.executable, "-c", "import ledger.log.clock as c; print(repr(c._last_good_time)); c.check_time('')"],
        capture_output=True,
        text=True,
    )
    assert fresh.returncode != 0 and "InvalidEntry" in fresh.stderr
    monkeypatch.setattr(clock_mod, "_last_good_time", fresh.stdout.strip() and ast.literal_eval(fresh.stdout.strip()))
    refused(kind, with_value(kind, path, ""), r"signed_at")


# -- postings ------------------------------------------------------------------------------


def _swap_signs(postings):
    return [{**p, "amount": -p["amount"]} for p in postings]


def _swap_accounts(postings):
    return [{**p, "account": q["account"]} for p, q in zip(postings, reversed(postings), strict=True)]


MONEY_KINDS = ["donation", "disbursement", "refund"]
POSTING_TAMPERS = {
    "wrong sign": _swap_signs,
    "swapped accounts": _swap_accounts,
    "reversed order": lambda ps: list(reversed(ps)),
    "extra zero posting": lambda ps: [*ps, {"account": "donors", "currency": ps[0]["currency"], "amount": 0}],
    "extra balanced pair": lambda ps: [*ps, {**ps[0], "account": "payees"}, {**ps[1], "account": "payees"}],
    "duplicated": lambda ps: ps + ps,
    "one missing": lambda ps: ps[:1],
    "none": lambda ps: [],
    "other currency": lambda ps: [{**p, "currency": "USD"} for p in ps],
    "other account": lambda ps: [{**ps[0], "account": "operator"}, ps[1]],
    "other project": lambda ps: [{**p, "account": p["account"].replace(PROJECT, "other-project")} for p in ps],
    "unbalanced": lambda ps: [ps[0], {**ps[1], "amount": ps[1]["amount"] + 1}],
    "extra member": lambda ps: [{**ps[0], "memo": "x"}, ps[1]],
    "string amounts": lambda ps: [{**p, "amount": str(p["amount"])} for p in ps],
    "float amounts": lambda ps: [{**p, "amount": float(p["amount"])} for p in ps],
    "NaN amount": lambda ps: [{**ps[0], "amount": float("nan")}, ps[1]],
    "not JSON at all": lambda ps: [{**ps[0], "amount": {ps[0]["amount"]}}, ps[1]],
}


@pytest.mark.parametrize("kind", MONEY_KINDS)
@pytest.mark.parametrize("tamper", list(POSTING_TAMPERS))
def test_postings_must_be_exactly_postings_for(kind, tamper):
    body = valid(kind)
    body["postings"] = POSTING_TAMPERS[tamper](body["postings"])
    refused(kind, body, r"^\$\.postings: must be exactly")


@pytest.mark.parametrize("kind", MONEY_KINDS)
def test_true_is_not_one_in_postings(kind):
    body = valid(kind)
    if kind == "disbursement":
        body["payload"]["lines"] = [{"description": "one fen", "amount": 1}]
        body["payload"]["amount"] = 1
    else:
        body["amount"] = 1
    body["postings"] = postings_for(kind, body)
    body_bytes(kind, body, REGISTRY)  # amount 1 is fine
    assert body["postings"][1]["amount"] == 1
    body["postings"][1]["amount"] = True
    refused(kind, body, r"^\$\.postings: must be exactly")


@pytest.mark.parametrize("kind", MONEY_KINDS)
def test_postings_equal_as_json_text_pass_the_postings_rule(kind):
    """The rule compares the postings as JSON text: a mapping type the encoder writes
    the same way passes it, and the canonical check that follows names the type."""
    body = valid(kind)
    body["postings"] = [collections.OrderedDict(p) for p in body["postings"]]
    refused(kind, body, r"^\$\.postings\[0\]: OrderedDict is not a JSON value")


@pytest.mark.parametrize("kind", MONEY_KINDS)
def test_postings_that_do_not_follow_the_amount_are_refused(kind):
    body = valid(kind)
    if kind == "disbursement":
        body["payload"]["lines"][0]["amount"] += 1
        body["payload"]["amount"] += 1
    else:
        body["amount"] += 1
    refused(kind, body, r"^\$\.postings: must be exactly")


def test_postings_for_kinds_without_money_are_empty():
    for kind in ("charity.registered", "charity.keys_rotated", "project.opened", "project.closed", "note"):
        assert postings_for(kind, valid(kind) if kind in _VALID else {"text": "x"}) == []


def test_documented_accounts():
    assert [(p["account"], p["amount"]) for p in valid("donation")["postings"]] == [
        ("donors", -20000),
        (f"project:{PROJECT}", 20000),
    ]
    assert [(p["account"], p["amount"]) for p in valid("disbursement")["postings"]] == [
        (f"project:{PROJECT}", -3120000),
        ("payees", 3120000),
    ]
    assert [(p["account"], p["amount"]) for p in valid("refund")["postings"]] == [
        (f"project:{PROJECT}", -5000),
        ("donors", 5000),
    ]


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(1, MAX_MINOR), currency=st.sampled_from(sorted(CURRENCIES)))
def test_postings_balance_and_a_refund_reverses_a_donation(amount, currency):
    donation = {**_donation_body(), "amount": amount, "currency": currency}
    refund = {**_refund_body(), "amount": amount, "currency": currency}
    lines = [{"description": "all", "amount": amount}]
    disbursement = {
        "payload": {**_VALID["disbursement"]["payload"], "amount": amount, "currency": currency, "lines": lines},
        "signatures": _VALID["disbursement"]["signatures"],  # static rules do not verify signatures
    }
    for kind, body in (("donation", donation), ("refund", refund), ("disbursement", disbursement)):
        postings = postings_for(kind, body)
        totals: dict[str, int] = {}
        for p in postings:
            totals[p["currency"]] = totals.get(p["currency"], 0) + p["amount"]
        assert totals == {currency: 0}
        assert all(p["amount"] != 0 and type(p["amount"]) is int for p in postings)
        body["postings"] = postings
        body_bytes(kind, body, REGISTRY)
    # the refund is the donation with the accounts swapped, amounts in place
    assert refund["postings"] == _swap_accounts(donation["postings"])
    assert {p["account"] for p in refund["postings"]} == {p["account"] for p in donation["postings"]}


# -- a static refusal through the ledger writes nothing ---------------------------------------


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("charity.registered", lambda b: b.update(threshold=0)),
        ("charity.registered", lambda b: b.update(memo="x")),
        ("project.opened", lambda b: b.update(period={"start": "2026-02-30", "end": "2026-03-01"})),
        ("project.opened", lambda b: b.pop("currency")),
        ("donation", lambda b: b.update(channel="paypal")),
        ("donation", lambda b: b.update(postings=_swap_signs(b["postings"]))),
        ("disbursement", lambda b: b["payload"].update(amount=b["payload"]["amount"] + 1)),
        ("refund", lambda b: b.update(postings=_swap_accounts(b["postings"]))),
        ("charity.keys_rotated", lambda b: b["payload"].update(threshold=4)),
        ("project.closed", lambda b: b.update(project="Winter")),
    ],
)
def test_static_refusal_through_the_ledger_writes_nothing(ledger, kind, mutate):
    body = valid(kind)
    mutate(body)
    with writes_nothing(ledger), pytest.raises(InvalidEntry, match="entry 0 of the batch"):
        ledger.append(kind, body)
    # and a refused entry in a batch takes the good entries with it
    with writes_nothing(ledger), pytest.raises(InvalidEntry, match="entry 1 of the batch"):
        ledger.append_batch([("note", {"text": "fine"}), (kind, body)])


# -- a donation's canonical bytes, written directly ---------------------------------------


@st.composite
def donation_bodies(draw) -> dict:
    body = {
        "project": draw(st.from_regex(ID_PATTERN, fullmatch=True)),
        "amount": draw(st.integers(1, MAX_MINOR)),
        "currency": draw(st.sampled_from(sorted(CURRENCIES))),
        "channel": draw(st.sampled_from(CHANNELS)),
        "payment_ref_hash": draw(st.binary(min_size=32, max_size=32)).hex(),
        "donor_commitment": draw(st.binary(min_size=32, max_size=32)).hex(),
        "value_date": draw(st.dates()).isoformat(),
        "intake_key": draw(st.from_regex(TOKEN_PATTERN, fullmatch=True)),
    }
    body["postings"] = postings_for("donation", body)
    return body


@settings(max_examples=500, deadline=None)
@given(donation_bodies())
def test_donation_bytes_are_the_canonical_bytes(body):
    assert body_bytes("donation", body, REGISTRY) == canonical_bytes(body)  # the kind accepts it
    assert donation_bytes(body) == canonical_bytes(body) == rfc8785.dumps(body)


class _Channel(str):
    pass


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b.update(channel=_Channel(b["channel"])),
        lambda b: b.update(postings=[collections.OrderedDict(p) for p in b["postings"]]),
    ],
    ids=["str subclass", "dict subclass"],
)
def test_donation_bytes_leave_subtypes_to_the_canonical_check(tamper):
    body = valid("donation")
    tamper(body)
    assert donation_bytes(body) is None
