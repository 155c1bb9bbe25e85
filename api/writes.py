"""Write endpoints.  Admins register charities and open projects; the intake
records donations and refunds; disbursements need no token, because the
charity's own signatures are the authority."""

from __future__ import annotations

from flask import g
from marshmallow import ValidationError

from ledger.charity.tokens import require
from ledger.errors import InvalidInput, LuodiError

from . import schemas as s
from .auth import SECURITY, guard, needs
from .bodies import Blueprint, body_limit
from .problems import describe_errors
from .render import Answer, send_receipt, send_results
from .state import announce_append, append_done, charity_ledger
from .views import item

blp = Blueprint("writes", __name__, url_prefix="/v1", description="Append to the log: each call is one entry.")
blp.before_request(announce_append)  # first, so that a group commit waits for it while it is parsed
blp.before_request(guard)
blp.teardown_request(append_done)


def _signed_for(body: dict, field: str, expected: str) -> None:
    """The URL must name what the charity signed for."""
    named = body["payload"].get(field)
    if named != expected:
        raise InvalidInput(f"the signed payload is for {field} {named!r}, not {expected!r}")


@blp.post("/charities")
@needs("admin")
@blp.arguments(s.CharityIn())
@blp.response(201, s.EntryItem)
@blp.doc(security=SECURITY)
def register_charity(body):
    """Register a charity with its Ed25519 verifier keys and m-of-n threshold (admin token)."""
    return item(charity_ledger().register_charity(**body))


@blp.post("/projects")
@needs("admin")
@blp.arguments(s.ProjectIn())
@blp.response(201, s.EntryItem)
@blp.doc(security=SECURITY)
def open_project(body):
    """Open a project of a charity, in one currency (admin token)."""
    if "period" in body:
        body["period"] = (body["period"]["start"], body["period"]["end"])
    return item(charity_ledger().open_project(**body))


@blp.post("/projects/<id:project_id>/donations")
@needs("intake")
@blp.arguments(s.IdempotencyHeader(), location="headers")
@blp.arguments(s.DonationIn())
@blp.response(201, s.DonationReceipt)
@blp.alt_response(200, schema=s.DonationReceipt, description="a replay of the same Idempotency-Key and body")
@blp.doc(security=SECURITY)
def donate(headers, body, project_id):
    """Record a donation (intake token, Idempotency-Key header); answers with the donor's receipt."""
    books = charity_ledger()
    require(g.grant, "intake", books.charity_of(project_id))
    done = books.record_donation(project_id, intake_key=headers["idempotency_key"], **body)
    return send_receipt(done.receipt, 200 if done.replayed else 201, salt=done.salt)


@blp.post("/projects/<id:project_id>/donations/batch")
@body_limit("BATCH_MAX_CONTENT_LENGTH")
@needs("intake")
@blp.arguments(s.BatchIn())
@blp.response(200, s.BatchResults)
@blp.doc(security=SECURITY)
def donate_batch(body, project_id):
    """Record up to 1,000 donations of one project in one commit (intake token; body up to 2 MiB).

    Each item is the single endpoint's body plus its own ``idempotency_key``.  The
    answer holds one result per item, in order: a receipt (``status`` 201), a replay
    (200, the original receipt), or a problem (4xx), for which nothing was written.
    The accepted items are durable before the answer."""
    books = charity_ledger()
    require(g.grant, "intake", books.charity_of(project_id))
    results: list = [None] * len(body["donations"])
    wanted, where = [], []
    for n, raw in enumerate(body["donations"]):
        try:
            one = _ITEM.load(raw)
        except ValidationError as exc:
            results[n] = _item_problem(exc)
            continue
        one["intake_key"] = one.pop("idempotency_key")
        wanted.append(one)
        where.append(n)
    for n, done in zip(where, books.record_donations(project_id, wanted) if wanted else []):
        if isinstance(done, LuodiError):
            results[n] = done.problem()
        else:
            results[n] = Answer(done.receipt, {"salt": done.salt, "status": 200 if done.replayed else 201})
    return send_results(results)


_ITEM = s.BatchItemIn()


def _item_problem(exc: ValidationError) -> dict:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return {
        "type": "/problems/invalid-input", "title": "Invalid input", "status": 422,
        "detail": describe_errors({"json": messages}), "errors": {"json": messages},
    }


@blp.post("/projects/<id:project_id>/disbursements")
@blp.arguments(s.SignedIn())
@blp.response(201, s.EntryItem)
def disburse(body, project_id):
    """Append a disbursement signed by a threshold of the charity's keys (no token: the signatures are the authority)."""
    _signed_for(body, "project", project_id)
    return item(charity_ledger().disburse(body["payload"], body["signatures"]))


@blp.post("/charities/<id:charity_id>/key-rotations")
@blp.arguments(s.SignedIn())
@blp.response(201, s.EntryItem)
def rotate_keys(body, charity_id):
    """Replace a charity's keys, signed by a threshold of its current keys."""
    _signed_for(body, "charity", charity_id)
    return item(charity_ledger().rotate_keys(body["payload"], body["signatures"]))


@blp.post("/receipts/<hash:leaf_hash>/refunds")
@needs("intake")
@blp.arguments(s.RefundIn())
@blp.response(201, s.EntryItem)
@blp.doc(security=SECURITY)
def refund(body, leaf_hash):
    """Refund unspent money of one donation to its donor (intake token)."""
    books = charity_ledger()
    trace = books.trace(leaf_hash)
    require(g.grant, "intake", books.project(trace.project).charity)
    return item(books.refund(leaf_hash, body["amount"], body["reason"]))
