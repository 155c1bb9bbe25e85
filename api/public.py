"""Public endpoints for donors and auditors: checkpoints, entries, proofs, receipts, projects, export."""

from __future__ import annotations

from flask import Response, current_app, json, stream_with_context

from ledger.charity.receipts import tlog_proof
from ledger.log.tlog_proof import MEDIA_TYPE

from . import schemas as s
from .bodies import Blueprint
from .contract import SEQ
from .state import charity_ledger, ledger
from .render import send_receipt
from .views import hexes, immutable, item, project
from .witnessing import served_checkpoint, served_receipt, status_body

blp = Blueprint("public", __name__, url_prefix="/v1", description="Read the log and check it: no token needed.")


@blp.get("/ping")
@blp.response(200, content_type="application/json")
def ping():
    """A trivial JSON answer (the HTTP benchmark's baseline)."""
    return {"ok": True}


@blp.get("/status")
@blp.response(200, s.Status)
def status():
    """The log's size and, when it has witnesses, its witness policy, how far its latest
    cosigned checkpoint lags behind (entries and seconds), and each witness's last answer."""
    resp = blp_json(status_body(), s.Status)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@blp.get("/checkpoint")
@blp.response(200, content_type="text/plain")
def checkpoint():
    """The latest signed checkpoint (C2SP tlog-checkpoint, a signed note).  When the log has
    witnesses, the latest cosigned one: the log's note with the cosignature lines of witnesses
    that met its witness policy (C2SP tlog-cosignature; docs/witnessing.md)."""
    resp = Response(served_checkpoint(), mimetype="text/plain")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@blp.get("/log/key")
@blp.response(200, content_type="text/plain")
def log_key():
    """The log's verifier key (name+keyid+base64), as Go's sumdb/note reads it."""
    return Response(ledger().verifier.to_string() + "\n", mimetype="text/plain")


@blp.get("/entries")
@blp.arguments(s.PageQuery(), location="query")
@blp.response(200, s.EntryPage)
def entries(args):
    """Page through the log in seq order."""
    entries, next_start = ledger().page(args["start"], _limit(args))
    return {"entries": [item(e) for e in entries], "next_start": next_start}


@blp.get(f"/entries/<{SEQ}:seq>")
@blp.response(200, s.EntryItem)
def entry(seq):
    """One entry; immutable, so it carries a strong ETag."""
    resp = blp_json(item(ledger().entry(seq)), s.EntryItem)
    return immutable(resp)


@blp.get("/proofs/inclusion")
@blp.arguments(s.InclusionQuery(), location="query")
@blp.response(200, s.Inclusion)
def inclusion(args):
    """RFC 9162 inclusion proof of a leaf, at tree_size or the latest checkpoint."""
    found, size, proof = ledger().prove_inclusion(args["leaf_hash"], args.get("tree_size"))
    resp = blp_json({"leaf_index": found.seq, "tree_size": size, "audit_path": hexes(proof)}, s.Inclusion)
    return immutable(resp) if "tree_size" in args else resp


@blp.get("/proofs/consistency")
@blp.arguments(s.ConsistencyQuery(), location="query")
@blp.response(200, s.Consistency)
def consistency(args):
    """RFC 9162 consistency proof from tree size first to second (default: the latest checkpoint)."""
    second, proof = ledger().prove_consistency(args["first"], args.get("second"))
    resp = blp_json({"first": args["first"], "second": second, "consistency": hexes(proof)}, s.Consistency)
    return immutable(resp) if "second" in args else resp


@blp.get("/receipts/<hash:leaf_hash>")
@blp.response(200, s.Receipt)
def get_receipt(leaf_hash):
    """Everything a donor needs to verify a gift offline: the entry, its proof, the
    checkpoint and log key, and each disbursement that spent it with its own proof."""
    return send_receipt(served_receipt(leaf_hash))


@blp.get("/receipts/<hash:leaf_hash>.tlog-proof")
@blp.response(200, content_type="text/plain")
def get_receipt_tlog_proof(leaf_hash):
    """The gift's inclusion as a C2SP tlog-proof (c2sp.org/tlog-proof): extra data is the
    donation's canonical entry bytes, index its seq, then the proof and the signed checkpoint.
    It proves inclusion only; the disbursements that spent the gift need the JSON receipt."""
    return Response(tlog_proof(served_receipt(leaf_hash)), mimetype=MEDIA_TYPE)


@blp.get("/projects")
@blp.response(200, s.ProjectList)
def projects():
    """Every project with its totals, and the tree size and signed checkpoint of the
    same snapshot (an auditor compares the totals with the log at that size)."""
    found, note, size = charity_ledger().projects_at()
    return {"projects": [project(p) for p in found], "tree_size": size, "checkpoint": note}


@blp.get("/projects/<id:project_id>")
@blp.response(200, s.Project)
def get_project(project_id):
    """One project's totals: raised, spent, refunded, balance, number of donations."""
    return project(charity_ledger().project(project_id))


@blp.get("/projects/<id:project_id>/entries")
@blp.arguments(s.PageQuery(), location="query")
@blp.response(200, s.EntryPage)
def project_entries(args, project_id):
    """A project's entries in seq order: its opening, donations, disbursements, refunds, closing."""
    entries, next_start = charity_ledger().project_entries(project_id, args["start"], _limit(args))
    return {"entries": [item(e) for e in entries], "next_start": next_start}


@blp.get("/export")
@blp.arguments(s.ExportQuery(), location="query")
@blp.response(200, content_type="application/x-ndjson")
@blp.alt_response(404, description="tree_size is beyond the log, or start beyond tree_size")
def export(args):
    """The log as NDJSON: one entry per line, in its exact canonical (hashed) bytes,
    from seq ``start`` (default 0) up to ``tree_size`` (default: every entry)."""
    lines = (canonical + b"\n" for canonical in ledger().export(args["start"], args.get("tree_size")))
    return Response(stream_with_context(lines), mimetype="application/x-ndjson")


def _limit(args) -> int:
    return min(args["limit"], int(current_app.config["PAGE_LIMIT"]))


def blp_json(body: dict, schema) -> Response:
    return Response(json.dumps(schema().dump(body)), mimetype="application/json")
