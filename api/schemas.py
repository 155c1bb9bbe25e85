"""The HTTP contract: every request and response body as a marshmallow schema.

Amounts are decimal strings here (``"200.00"``) and integer minor units only
inside entries, which are shown exactly as they are hashed.  Hashes are
lowercase hex; the checkpoint's root stays base64, as its format says.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ledger.charity.kinds import CHANNELS
from ledger.charity.money import DECIMAL_PATTERN
from ledger.log.fields import HEX64 as _HEX64

HEX64 = validate.Regexp(f"^{_HEX64.pattern}$", error="must be 64 lowercase hex digits")
DECIMAL = validate.Regexp(f"^{DECIMAL_PATTERN}$", error="must be a decimal string such as 12.30")


class EntryItem(Schema):
    seq = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, metadata={"description": "SHA-256(0x00 || RFC 8785 bytes of entry), hex"})
    entry = fields.Dict(required=True, metadata={"description": "the envelope {seq, prev, time, kind, body}"})


class EntryPage(Schema):
    entries = fields.List(fields.Nested(EntryItem), required=True)
    next_start = fields.Integer(allow_none=True, required=True)


class PageQuery(Schema):
    start = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**53 - 1))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class InclusionQuery(Schema):
    leaf_hash = fields.String(required=True, validate=HEX64)
    tree_size = fields.Integer(validate=validate.Range(min=1))


class Inclusion(Schema):
    leaf_index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    audit_path = fields.List(fields.String(), required=True)


class ConsistencyQuery(Schema):
    first = fields.Integer(required=True, validate=validate.Range(min=1))
    second = fields.Integer(validate=validate.Range(min=1))


class Consistency(Schema):
    first = fields.Integer(required=True)
    second = fields.Integer(required=True)
    consistency = fields.List(fields.String(), required=True)


class Allocation(Schema):
    disbursement = fields.Nested(EntryItem, required=True)
    amount = fields.String(required=True, metadata={"description": "taken from this gift, decimal"})
    leaf_index = fields.Integer(required=True)
    inclusion_proof = fields.List(fields.String(), required=True)


class Receipt(Schema):
    entry = fields.Nested(EntryItem, required=True)
    leaf_index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    inclusion_proof = fields.List(fields.String(), required=True)
    checkpoint = fields.String(required=True, metadata={"description": "the signed checkpoint note at tree_size"})
    log_key = fields.String(required=True)
    currency = fields.String(required=True)
    amount = fields.String(required=True)
    spent = fields.String(required=True)
    refunded = fields.String(required=True)
    unspent = fields.String(required=True)
    allocation = fields.List(fields.Nested(Allocation), required=True)


class DonationReceipt(Receipt):
    salt = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "hex; with the donor reference it opens donor_commitment. Keep it: it is given once."},
    )


class Project(Schema):
    project = fields.String(required=True)
    charity = fields.String(required=True)
    currency = fields.String(required=True)
    opened_seq = fields.Integer(required=True)
    closed = fields.Boolean(required=True)
    donations = fields.Integer(required=True)
    raised = fields.String(required=True)
    spent = fields.String(required=True)
    refunded = fields.String(required=True)
    balance = fields.String(required=True)


class ProjectList(Schema):
    projects = fields.List(fields.Nested(Project), required=True)


class CharityIn(Schema):
    charity = fields.String(required=True)
    name = fields.String(required=True)
    keys = fields.List(fields.String(), required=True)
    threshold = fields.Integer(required=True, strict=True)


class Period(Schema):
    start = fields.String(required=True)
    end = fields.String(required=True)


class ProjectIn(Schema):
    project = fields.String(required=True)
    charity = fields.String(required=True)
    title = fields.String(required=True)
    purpose = fields.String(required=True)
    currency = fields.String(required=True)
    target = fields.String(validate=DECIMAL)
    period = fields.Nested(Period)


class DonationIn(Schema):
    amount = fields.String(required=True, validate=DECIMAL)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    payment_ref = fields.String(required=True, validate=validate.Length(min=1, max=256))
    donor_ref = fields.String(required=True, validate=validate.Length(min=1, max=256))
    value_date = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
    personal = fields.Dict(keys=fields.String(), values=fields.String())


class Signature(Schema):
    key = fields.String(required=True)
    signature = fields.String(required=True)


class SignedIn(Schema):
    payload = fields.Dict(required=True, metadata={"description": "the charity-signed payload (docs/entries.md)"})
    signatures = fields.List(fields.Nested(Signature), required=True)


class RefundIn(Schema):
    amount = fields.String(required=True, validate=DECIMAL)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class IdempotencyHeader(Schema):
    idempotency_key = fields.String(
        required=True, data_key="Idempotency-Key", validate=validate.Regexp(r"^[A-Za-z0-9._:-]{8,128}$")
    )


class ClosureIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class PersonalData(Schema):
    receipt = fields.String(required=True)
    personal = fields.Dict(
        keys=fields.String(), values=fields.String(), allow_none=True, required=True,
        metadata={"description": "what the intake sent about the donor; null if nothing, or erased"},
    )


class Erasure(Schema):
    receipt = fields.String(required=True)
    erased = fields.Boolean(required=True, metadata={"description": "false if there was nothing (left) to erase"})
