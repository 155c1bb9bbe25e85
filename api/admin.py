"""The operator's endpoints (admin token): close a project, and read or erase what
the intake sent about a donor.  Erasure never touches the log: the chain, the
proofs and the donor's own salt stay valid."""

from __future__ import annotations

from . import schemas as s
from .auth import SECURITY, guard, needs
from .bodies import Blueprint
from .state import charity_ledger
from .views import item

blp = Blueprint("admin", __name__, url_prefix="/v1", description="The operator's tasks: admin token.")
blp.before_request(guard)


@blp.post("/projects/<id:project_id>/closure")
@needs("admin")
@blp.arguments(s.ClosureIn())
@blp.response(201, s.EntryItem)
@blp.doc(security=SECURITY)
def close_project(body, project_id):
    """Close a project: later donations and disbursements to it are refused (admin token)."""
    return item(charity_ledger().close_project(project_id, body["reason"]))


@blp.get("/receipts/<hash:leaf_hash>/personal-data")
@needs("admin")
@blp.response(200, s.PersonalData, headers={"Cache-Control": {"schema": {"type": "string"}}})
@blp.doc(security=SECURITY)
def personal_data(leaf_hash):
    """What the intake sent about the donor of a gift; null once erased (admin token, never cached)."""
    return {"receipt": leaf_hash, "personal": charity_ledger().personal_data(leaf_hash)}, 200, {"Cache-Control": "no-store"}


@blp.delete("/receipts/<hash:leaf_hash>/personal-data")
@needs("admin")
@blp.response(200, s.Erasure)
@blp.doc(security=SECURITY)
def erase_personal_data(leaf_hash):
    """Erase what the intake sent about a donor, and the receipt salt the server kept;
    the log is untouched and still verifies (admin token)."""
    return {"receipt": leaf_hash, "erased": charity_ledger().erase_personal_data(leaf_hash)}
