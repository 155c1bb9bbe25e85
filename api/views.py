"""Shapes shared by the views: entry items, receipts with proofs, cache headers."""

from __future__ import annotations

import hashlib

from flask import Response, request

from ledger.charity.money import format_amount
from ledger.charity.receipts import Proven, Receipt
from ledger.charity.store import Project
from ledger.log.entry import Entry

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


def proven(p: Proven) -> dict:
    """An entry with its leaf index and inclusion proof at the receipt's tree size."""
    return {**item(p.entry), "leaf_index": p.entry.seq, "inclusion_proof": hexes(p.proof)}


def receipt(r: Receipt) -> dict:
    """All a donor needs to check a gift offline (:class:`ledger.charity.receipts.Receipt`), as JSON."""
    trace, cur = r.trace, r.trace.currency
    context = {}
    if r.project_opening is not None:  # a receipt read from the log (not one built in a writer)
        registration, *rotations = r.charity_entries
        context = {
            "project_opening": proven(r.project_opening),
            "charity": {"registration": proven(registration), "key_rotations": [proven(p) for p in rotations]},
        }
    return {
        "entry": item(r.entry),
        "leaf_index": r.entry.seq,
        "tree_size": r.tree_size,
        "inclusion_proof": hexes(r.proof),
        "checkpoint": r.checkpoint,
        **({} if r.cosigned is None else {"cosigned": r.cosigned}),
        "log_key": r.log_key,
        "currency": cur,
        "amount": format_amount(trace.amount, cur),
        "spent": format_amount(trace.spent_total, cur),
        "refunded": format_amount(trace.refunded, cur),
        "unspent": format_amount(trace.unspent, cur),
        "allocation": [
            {
                "disbursement": item(s.disbursement),
                "amount": format_amount(s.amount, cur),
                "leaf_index": s.disbursement.seq,
                "inclusion_proof": hexes(s.proof),
            }
            for s in r.spending
        ],
        **context,
    }


def project(p: Project) -> dict:
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
