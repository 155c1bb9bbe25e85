"""The HTTP contract: every request and response body as a marshmallow schema.

Amounts are decimal strings here (``"200.00"``) and integer minor units only
inside entries, which are shown exactly as they are hashed.  Hashes are
lowercase hex; the checkpoint's root stays base64, as its format says.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ledger.charity.kinds import CHANNELS, ID_PATTERN, MAX_KEYS, TOKEN_PATTERN
from ledger.charity.money import CURRENCIES, DECIMAL_PATTERN
from ledger.log.fields import DATE_PATTERN
from ledger.log.fields import HEX64 as _HEX64

HEX64 = validate.Regexp(f"^{_HEX64.pattern}$", error="must be 64 lowercase hex digits")
DECIMAL = validate.Regexp(f"^{DECIMAL_PATTERN}$", error="must be a decimal string such as 12.30")
ID = validate.Regexp(f"^{ID_PATTERN.pattern}$", error="must be an id of 1-64 lowercase letters, digits and inner hyphens")
DATE = validate.Regexp(f"^{DATE_PATTERN.pattern}$", error="must be a date YYYY-MM-DD")

# -- request fields: each type error names the type expected (the field is named by its place) --

_ANY = {"required": "is required", "null": "must not be null"}


class Text(fields.String):
    default_error_messages = {**_ANY, "invalid": "must be a string"}


class Amount(Text):
    """A decimal string; a number here is a type error, never rounded."""

    default_error_messages = {"invalid": 'must be a string such as "12.30"'}

    def __init__(self, **kwargs):
        super().__init__(validate=DECIMAL, **kwargs)


class Int(fields.Integer):
    default_error_messages = {**_ANY, "invalid": "must be an integer", "too_large": "is too large"}

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)


class QueryInt(fields.Integer):
    default_error_messages = {**_ANY, "invalid": "must be an integer", "too_large": "is too large"}


class Object(fields.Dict):
    default_error_messages = {**_ANY, "invalid": "must be an object"}


class ListOf(fields.List):
    default_error_messages = {**_ANY, "invalid": "must be a list"}


class Nested(fields.Nested):
    default_error_messages = {**_ANY, "type": "must be an object"}


class Body(Schema):
    """A request body: a JSON object of known members."""

    error_messages = {"type": "must be an object", "unknown": "is not a member of this body"}


class EntryItem(Schema):
    seq = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, metadata={"description": "SHA-256(0x00 || RFC 8785 bytes of entry), hex"})
    entry = fields.Dict(required=True, metadata={"description": "the envelope {seq, prev, time, kind, body}"})


class EntryPage(Schema):
    entries = fields.List(fields.Nested(EntryItem), required=True)
    next_start = fields.Integer(allow_none=True, required=True)


class PageQuery(Schema):
    start = QueryInt(load_default=0, validate=validate.Range(min=0, max=2**53 - 1))
    limit = QueryInt(load_default=100, validate=validate.Range(min=1, max=1000))


class ExportQuery(Schema):
    start = QueryInt(load_default=0, validate=validate.Range(min=0, max=2**53 - 1),
                     metadata={"description": "the seq of the first entry to export (default 0)"})
    tree_size = QueryInt(validate=validate.Range(min=0, max=2**53 - 1),
                         metadata={"description": "export entries below this tree size only (default: every entry)"})


class InclusionQuery(Schema):
    leaf_hash = Text(required=True, validate=HEX64)
    tree_size = QueryInt(validate=validate.Range(min=1))


class Inclusion(Schema):
    leaf_index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    audit_path = fields.List(fields.String(), required=True)


class ConsistencyQuery(Schema):
    first = QueryInt(required=True, validate=validate.Range(min=1))
    second = QueryInt(validate=validate.Range(min=1))


class Consistency(Schema):
    first = fields.Integer(required=True)
    second = fields.Integer(required=True)
    consistency = fields.List(fields.String(), required=True)


class Allocation(Schema):
    disbursement = fields.Nested(EntryItem, required=True)
    amount = fields.String(required=True, metadata={"description": "taken from this gift, decimal"})
    leaf_index = fields.Integer(required=True)
    inclusion_proof = fields.List(fields.String(), required=True)


class ProvenEntry(EntryItem):
    leaf_index = fields.Integer(required=True, metadata={"description": "the entry's seq"})
    inclusion_proof = fields.List(
        fields.String(), required=True, metadata={"description": "RFC 9162 inclusion proof at the receipt's tree_size, hex"}
    )


class CharityKeys(Schema):
    registration = fields.Nested(
        ProvenEntry, required=True, metadata={"description": "the charity.registered entry: its first keys and threshold"}
    )
    key_rotations = fields.List(
        fields.Nested(ProvenEntry), required=True,
        metadata={"description": "every charity.keys_rotated entry of the charity below tree_size, in seq order"},
    )


class Receipt(Schema):
    entry = fields.Nested(EntryItem, required=True)
    leaf_index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    inclusion_proof = fields.List(fields.String(), required=True)
    checkpoint = fields.String(required=True, metadata={"description": "the signed checkpoint note at tree_size"})
    cosigned = fields.Boolean(metadata={"description": (
        "only when the log has witnesses (docs/witnessing.md): true if checkpoint is the latest cosigned checkpoint "
        "(its witnesses' cosignatures meet the log's witness policy) and covers the gift, its project's opening and "
        "every disbursement listed; false if no cosigned checkpoint covers them yet and it is the log-signed one"
    )})
    log_key = fields.String(required=True)
    currency = fields.String(required=True)
    amount = fields.String(required=True)
    spent = fields.String(required=True)
    refunded = fields.String(required=True)
    unspent = fields.String(required=True)
    allocation = fields.List(fields.Nested(Allocation), required=True)
    project_opening = fields.Nested(
        ProvenEntry, required=True,
        metadata={"description": "the project.opened entry of the gift's project: it names the project's charity"},
    )
    charity = fields.Nested(
        CharityKeys, required=True,
        metadata={"description": "the entries that record which keys may sign for the project's charity"},
    )


class DonationReceipt(Receipt):
    # A new gift's receipt, built at the checkpoint signed with it: nothing has spent it yet,
    # so it carries no charity keys (GET /v1/receipts/<leaf_hash> always does).
    project_opening = fields.Nested(ProvenEntry, metadata={"description": "absent: see GET /v1/receipts/<leaf_hash>"})
    charity = fields.Nested(CharityKeys, metadata={"description": "absent: see GET /v1/receipts/<leaf_hash>"})
    salt = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "hex; with the donor reference it opens donor_commitment. Keep it: it is given once."},
    )


class BatchReceipt(DonationReceipt):
    status = fields.Integer(required=True, validate=validate.OneOf([200, 201]),
                            metadata={"description": "201: recorded now; 200: a replay of its idempotency_key"})


class BatchProblem(Schema):
    """An item refused (RFC 9457 members); nothing was written for it."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True, validate=validate.Range(min=400, max=499))
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "schema errors by field"})


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
    tree_size = fields.Integer(required=True, metadata={"description": "the tree size these totals are at"})
    checkpoint = fields.String(
        required=True, metadata={"description": "the signed checkpoint note at tree_size, from the same snapshot"}
    )


class CharityIn(Body):
    charity = Text(required=True, validate=ID)
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    keys = ListOf(Text(), required=True, validate=validate.Length(min=1, max=MAX_KEYS),
                  metadata={"description": "Ed25519 verifier keys, name+keyid+base64"})
    threshold = Int(required=True, validate=validate.Range(min=1, max=MAX_KEYS),
                    metadata={"description": "how many of the keys must sign; at most the number of keys"})


class Period(Body):
    start = Text(required=True, validate=DATE)
    end = Text(required=True, validate=DATE)


class ProjectIn(Body):
    project = Text(required=True, validate=ID)
    charity = Text(required=True, validate=ID)
    title = Text(required=True, validate=validate.Length(min=1, max=200))
    purpose = Text(required=True, validate=validate.Length(min=1, max=2000))
    currency = Text(required=True, validate=validate.OneOf(sorted(CURRENCIES)))
    target = Amount()
    period = Nested(Period)


class DonationIn(Body):
    amount = Amount(required=True)
    channel = Text(required=True, validate=validate.OneOf(CHANNELS))
    payment_ref = Text(required=True, validate=validate.Length(min=1, max=256))
    donor_ref = Text(required=True, validate=validate.Length(min=1, max=256))
    value_date = Text(required=True, validate=DATE)
    personal = Object(keys=Text(), values=Text())


MAX_BATCH = 1000  # donations in one batch request


class BatchItemIn(DonationIn):
    idempotency_key = Text(
        required=True,
        validate=validate.Regexp(f"^{TOKEN_PATTERN.pattern}$", error="must be 8-128 letters, digits and . _ : -"),
    )


class BatchItems(ListOf):
    """A list of :class:`BatchItemIn`, documented as such, but each item is checked
    by the view on its own, so that one bad item is refused alone (its own result)."""

    def __init__(self, **kwargs):
        super().__init__(Nested(BatchItemIn), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return list(value)


class BatchIn(Body):
    donations = BatchItems(required=True, validate=validate.Length(min=1, max=MAX_BATCH))


_RESULT = {
    "description": "one per donation, in order: a receipt (status 201), a replay (200), or a problem (4xx) "
    "for which nothing was written",
    "oneOf": [{"$ref": "#/components/schemas/BatchReceipt"}, {"$ref": "#/components/schemas/BatchProblem"}],
}


class BatchResults(Schema):
    results = fields.List(fields.Raw(metadata=_RESULT), required=True)


class Signature(Body):
    key = Text(required=True)
    signature = Text(required=True)


class SignedIn(Body):
    payload = Object(required=True, metadata={"description": "the charity-signed payload (docs/entries.md)"})
    signatures = ListOf(Nested(Signature), required=True, validate=validate.Length(min=1, max=MAX_KEYS))


class RefundIn(Body):
    amount = Amount(required=True)
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class IdempotencyHeader(Schema):
    idempotency_key = Text(
        required=True, data_key="Idempotency-Key",
        validate=validate.Regexp(f"^{TOKEN_PATTERN.pattern}$", error="must be 8-128 letters, digits and . _ : -"),
    )


class ClosureIn(Body):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class PersonalData(Schema):
    receipt = fields.String(required=True)
    personal = fields.Dict(
        keys=fields.String(), values=fields.String(), allow_none=True, required=True,
        metadata={"description": "what the intake sent about the donor; null if nothing, or erased"},
    )


class Erasure(Schema):
    receipt = fields.String(required=True)
    erased = fields.Boolean(required=True, metadata={"description": "false if there was nothing (left) to erase"})


_TIME = {"allow_none": True, "metadata": {"description": "RFC 3339 UTC"}}


class WitnessStatus(Schema):
    name = fields.String(required=True, metadata={"description": "the witness's name in the policy"})
    key = fields.String(required=True, metadata={"description": "its cosignature/v1 verifier key (vkey, type 0x04)"})
    url = fields.String(required=True, metadata={"description": "its submission prefix"})
    size = fields.Integer(required=True, allow_none=True, metadata={"description": "the size it last said it holds"})
    requests = fields.Integer(required=True, allow_none=True, metadata={"description": "add-checkpoint requests sent"})
    last_success_at = fields.String(required=True, **_TIME)
    last_success_size = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True, metadata={"description": "cleared by a success"})
    last_error_at = fields.String(required=True, **_TIME)


class GathererStatus(Schema):
    pid = fields.Integer(required=True, allow_none=True)
    updated_at = fields.String(required=True, **_TIME)
    age_seconds = fields.Float(required=True, metadata={"description": "since it last wrote its state"})
    witnessing_size = fields.Integer(required=True, allow_none=True, metadata={"description": "being submitted now"})
    cosigned_by = fields.List(fields.String(), required=True)
    last_stored_size = fields.Integer(required=True, allow_none=True)
    last_stored_at = fields.String(required=True, **_TIME)
    error = fields.String(required=True, allow_none=True)
    error_at = fields.String(required=True, **_TIME)


class Witnessing(Schema):
    quorum = fields.String(required=True, metadata={"description": "the policy's quorum, in words"})
    policy = fields.String(required=True, metadata={"description": "the witness policy (C2SP tlog-policy)"})
    interval_seconds = fields.Float(required=True)
    timeout_seconds = fields.Float(required=True)
    cosigned_tree_size = fields.Integer(required=True, allow_none=True)
    behind_entries = fields.Integer(required=True, metadata={"description": "entries no cosigned checkpoint covers"})
    behind_seconds = fields.Float(required=True, metadata={"description": "age of the oldest of them"})
    gatherer = fields.Nested(GathererStatus, required=True, allow_none=True)
    witnesses = fields.List(fields.Nested(WitnessStatus), required=True)


class Status(Schema):
    tree_size = fields.Integer(required=True)
    witnessing = fields.Nested(
        Witnessing, required=True, allow_none=True, metadata={"description": "null: the log has no witnesses"}
    )
