"""Shared by the ``luodi db copy`` tests: a source instance that holds one of
everything, and what two stores must hold alike once one is a copy of the other."""

from __future__ import annotations

from pathlib import Path

from api_helpers import PROJECT, ApiFactory
from factories import CHARITY

from api.instance import open_instance
from ledger.charity import payload as P
from ledger.charity.audit import audit_books
from ledger.charity.kinds import registry
from ledger.charity.store import DERIVED, Stores
from ledger.log.verify import verify_log


def rich_instance(tmp_path: Path, name: str = "source", demo: int = 60) -> tuple[Path, dict]:
    """An instance with charities, projects (one closed), single and batch donations
    (with personal data), signed disbursements, a refund, a key rotation, an erased
    donor, and admin and intake tokens (scoped and with a rate)."""
    factory = ApiFactory(tmp_path)
    path, known = factory.instance(name, demo=demo)
    cl = open_instance(path)
    try:
        items = [
            {"amount": f"{10 + i}.00", "channel": "bank_transfer", "payment_ref": f"BATCH-{i}", "donor_ref": f"batch-donor-{i}",
             "value_date": "2026-11-29", "intake_key": f"batch-intake-{i:03d}",
             "personal": {"name": f"捐赠者 {i}", "email": f"d{i}@example.org"}}
            for i in range(7)
        ]
        done = cl.record_donations(PROJECT, items)
        assert all(not isinstance(d, Exception) for d in done), done
        keys = known["keys"]
        payload = P.disbursement(
            charity=CHARITY, project=PROJECT, currency="CNY", payee="Gansu Quilt Works", purpose="Quilts",
            period=("2026-11-01", "2026-11-30"), lines=[("quilts", "60.00")], amount="60.00",
        )
        cl.disburse(payload, [P.sign(payload, s) for s in keys[:2]])
        rotation = P.rotation(charity=CHARITY, keys=[k.verifier.to_string() for k in keys[1:]], threshold=2)
        cl.rotate_keys(rotation, [P.sign(rotation, s) for s in keys[:2]])
        assert cl.erase_personal_data(done[0].entry.receipt)
        known["erased"] = done[0].entry.receipt
        known["batch"] = [d.entry.receipt for d in done]
    finally:
        cl.stores.close()
    return path, known


def contents(stores: Stores) -> dict:
    """Everything a database holds for an instance, read through the protocols."""
    with stores.log.snapshot():
        view = stores.books.view()
        return {
            "rows": [tuple(r) for r in stores.log.iter_entries()],
            "checkpoints": [tuple(c) for c in stores.log.iter_checkpoints()],
            "cosigned": [tuple(c) for c in stores.log.iter_cosigned_checkpoints()],
            "applied": view.applied(),
            "derived": {table: view.derived(table) for table in DERIVED},
            "privates": [tuple(p) for p in view.privates()],
            "tokens": sorted(tuple(t) for t in stores.tokens.all()),
        }


def audited(stores: Stores) -> tuple[int, bytes]:
    """Whole-log verification and the books' audit, as ``luodi audit`` runs them: (size, root)."""
    report = verify_log(stores.log, registry())
    audit_books(stores)
    return report.size, report.root
