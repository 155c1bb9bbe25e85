"""Shapes shared by the views: entry items, receipts with proofs, cache headers."""

from __future__ import annotations

import hashlib

from flask import Response, request

from ledger.allocation import DonationTrace
from ledger.charity import CharityLedger
from ledger.entry import Entry
from ledger.errors import NotFound
from ledger.money import format_amount

IMMUTABLE = "public, max-age=31536000, immutable"


def item(entry: Entry) -> dict:
    return {"seq": entry.seq, "leaf_hash": entry.receipt, "entry": entry.envelope()}


def hexes(proof: list[bytes]) -> list[str]:
    return [h.hex() for h in proof]


def immutable(resp: Response) -> Response:
    """Entries and proofs at a fixed tree size never change: strong ETag, cache forever."""
    resp.set_etag(hashlib.sha256(resp.get_data()).hexdigest())
    resp.headers["Cache-Control"] = IMMUTABLE
    return resp.make_conditional(request)


def receipt(books: CharityLedger, entry: Entry, signed_with: tuple | None = None) -> dict:
    """All a donor needs to check a gift offline, against the latest checkpoint.

    ``signed_with``: the (note, checkpoint, inclusion proof) committed with a
    donation this request appended; at that tree size nothing has spent or
    refunded it."""
    if entry.kind != "donation":
        raise NotFound(f"{entry.receipt} is a {entry.kind} entry, not a donation")
    ledger = books.ledger
    if signed_with is not None:
        note, cp, proof = signed_with
        trace = DonationTrace(entry.receipt, entry.body["project"], entry.body["currency"], entry.body["amount"])
    else:
        note, cp = ledger.latest_checkpoint_note()
        proof = ledger.inclusion_proof(entry.seq, cp.size)
        trace = books.trace(entry.receipt)
    size = cp.size
    cur = trace.currency
    allocation = []
    for disbursement, amount in trace.spent:
        d = ledger.entry_by_receipt(disbursement)
        allocation.append(
            {
                "disbursement": item(d),
                "amount": format_amount(amount, cur),
                "leaf_index": d.seq,
                "inclusion_proof": hexes(ledger.inclusion_proof(d.seq, size)),
            }
        )
    return {
        "entry": item(entry),
        "leaf_index": entry.seq,
        "tree_size": size,
        "inclusion_proof": hexes(proof),
        "checkpoint": note,
        "log_key": ledger.verifier.to_string(),
        "currency": cur,
        "amount": format_amount(trace.amount, cur),
        "spent": format_amount(trace.spent_total, cur),
        "refunded": format_amount(trace.refunded, cur),
        "unspent": format_amount(trace.unspent, cur),
        "allocation": allocation,
    }


def project(p) -> dict:
    cur = p.currency
    return {
        "project": p.project,
        "charity": p.charity,
        "currency": cur,
        "opened_seq": p.seq,
        "closed": p.closed,
        "donations": p.donations,
        "raised": format_amount(p.raised, cur),
        "spent": format_amount(p.spent, cur),
        "refunded": format_amount(p.refunded, cur),
        "balance": format_amount(p.balance, cur),
    }
