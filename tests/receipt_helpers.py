"""A real receipt from a real ledger, for the receipt-check tests.

:func:`spent_gift` builds an instance (the API test instance: CHARITY with
PROJECT and three seed gifts), records a fresh gift over HTTP (so its salt is
known), spends it with a disbursement signed by the charity's first keys,
rotates the keys, spends more of it with the new keys, refunds a part, and
returns the gift's JSON receipt and tlog-proof as the server serves them.

:func:`forge` re-writes one entry as a dishonest operator holding the log key
would: a new leaf, every proof recomputed and the checkpoint re-signed, so
that only the forged part can fail.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path

from api_helpers import ApiEnv, signed
from factories import CHARITY, charity_signers, vkeys

from ledger.charity import payload as P
from ledger.log.canonical import canonical_bytes
from ledger.log.checkpoint import Checkpoint
from ledger.log.keyfile import read_key_file
from ledger.log.merkle import leaf_hash, node_hash
from ledger.log.note import Signer

GIFT = "60.00"
DONOR_REF = "donor-receipt-check"


@dataclass
class SpentGift:
    env: ApiEnv
    receipt: str  # the gift's leaf hash, hex
    salt: str
    doc: dict  # the JSON receipt
    tlog: str  # the .tlog-proof text
    log_key: str
    log_signer: Signer
    new_keys: list[Signer]


def spent_gift(env: ApiEnv) -> SpentGift:
    resp = env.donate("receipt-check-0001", amount=GIFT, donor_ref=DONOR_REF, payment_ref="PAY-RC-1")
    assert resp.status_code == 201, resp.get_json()
    receipt, salt = resp.get_json()["entry"]["leaf_hash"], resp.get_json()["salt"]
    # 175.00 of seed gifts first (FIFO), then 15.00 of this one, signed by the first keys
    first = env.disbursement((("winter coats", "190.00"),), evidence=[(hashlib.sha256(b"inv-1").hexdigest(), "invoice 1")])
    assert env.disburse(first).status_code == 201
    new = charity_signers(CHARITY, 3, first=4)
    rot = P.rotation(charity=CHARITY, keys=vkeys(new), threshold=2)
    assert env.post(f"/v1/charities/{CHARITY}/key-rotations", signed(rot, *env.keys[:2])).status_code == 201
    second = env.disbursement((("quilts", "30.00"),), payee="Dingxi Quilt Works", purpose="Quilts for the winter")
    assert env.disburse(second, *new[:2]).status_code == 201
    refund = env.post(f"/v1/receipts/{receipt}/refunds", {"amount": "5.00", "reason": "asked back"}, "intake")
    assert refund.status_code == 201, refund.get_json()
    doc = env.client.get(f"/v1/receipts/{receipt}").get_json()
    tlog = env.client.get(f"/v1/receipts/{receipt}.tlog-proof").get_data(as_text=True)
    key = read_key_file(Path(env.path) / "log.key")
    return SpentGift(env, receipt, salt, doc, tlog, doc["log_key"], key, new)


# -- a forger with the log key -------------------------------------------------------------------


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_root(leaves[:k]), _root(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), written out from the RFC."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return _path(m, leaves[:k]) + [_root(leaves[k:])]
    return _path(m - k, leaves[k:]) + [_root(leaves[:k])]


def forge(gift: SpentGift, change) -> dict:
    """A copy of the receipt in which ``change(doc)`` edited entries; every edited entry's
    leaf hash, every proof and the checkpoint are recomputed and re-signed with the log key."""
    doc = copy.deepcopy(gift.doc)
    change(doc)
    leaves = [row[1] for row in gift.env.reader.store.iter_entries()][: doc["tree_size"]]
    items = [doc["entry"], doc["project_opening"], doc["charity"]["registration"], *doc["charity"]["key_rotations"]]
    items += [a["disbursement"] for a in doc["allocation"]]
    for it in items:
        h = leaf_hash(canonical_bytes(it["entry"]))
        it["leaf_hash"] = h.hex()
        leaves[it["seq"]] = h
    proven = [doc, doc["project_opening"], doc["charity"]["registration"], *doc["charity"]["key_rotations"], *doc["allocation"]]
    for p in proven:
        p["inclusion_proof"] = [h.hex() for h in _path(p["leaf_index"], leaves)]
    origin = gift.log_signer.name
    doc["checkpoint"] = Checkpoint(origin, len(leaves), _root(leaves)).sign(gift.log_signer)
    return doc

