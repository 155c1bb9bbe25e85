"""Golden vectors of a charity log as ``luodi init`` starts it today: ``tests/golden/ledger_v2.json``.

Since the signing window is recorded in the log, a new log starts with its
genesis entry *and* a ``policy.recorded`` entry, so it starts differently
from the log ``ledger_v1.json`` pins (which stays valid, and still verifies
and audits: see the end of this file).  This ledger holds one of every money
kind: a charity with 2-of-2 keys, a project, three donations with known
salts and donor references, a signed disbursement and a refund.  Every value
comes from fixed inputs (seeded keys, a fixed clock, fixed salts, nonce and
``signed_at``; Ed25519 signatures are deterministic), so every byte is pinned.

The file was computed once from the code (:func:`build`) and is checked here
against independent derivations (``rfc8785``, ``hashlib``, the naive RFC 9162
reference of ``tests/test_merkle.py``, ``cryptography``'s Ed25519), and then
replayed by the auditor's own code from the file alone.  Never regenerate it
to make a test pass: a change here is a format break.  An independent
verifier (the browser's, say) can test itself against it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from conftest import REGISTRY, FixedClock, open_target, stores_of
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_golden import GOLDEN as V1
from test_golden import build as build_v1
from test_merkle import MTH, PATH

from ledger.charity import payload as P
from ledger.charity.allocation import trace_fifo
from ledger.charity.audit import audit_books
from ledger.charity.books import Books, verify_signed
from ledger.charity.kinds import postings_for
from ledger.charity.memory import MemoryBooks
from ledger.charity.service import donor_commitment, open_charity_ledger, payment_ref_hash
from ledger.log.checkpoint import open_checkpoint
from ledger.log.entry import parse_entry
from ledger.log.merkle import Frontier, pack_nodes, verify_inclusion
from ledger.log.note import Signer, Verifier
from ledger.log.verify import verify_log, verify_stream

GOLDEN_PATH = Path(__file__).parent / "golden" / "ledger_v2.json"
ORIGIN = "golden.luodi.example/charity-log"
START_MS = 1_790_000_000_000  # 2026-09-21T14:13:20.000Z
CHARITY, PROJECT = "golden-charity", "golden-project"
DONATIONS = [("100.00", "donor-a"), ("50.00", "donor-b"), ("25.00", "donor-c")]


def seed(name: str) -> bytes:
    return hashlib.sha256(b"luodi golden v2\n" + name.encode()).digest()


def signer(name: str) -> Signer:
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed(name)))


def salt(i: int) -> bytes:
    return hashlib.sha256(f"luodi golden v2 salt {i}".encode()).digest()


def _donation(i: int, amount: str, donor: str) -> dict:
    minor = int(amount.replace(".", ""))
    body = {
        "project": PROJECT, "amount": minor, "currency": "CNY", "channel": "wechat",
        "payment_ref_hash": payment_ref_hash(f"GOLDEN-PAY-{i}"), "donor_commitment": donor_commitment(salt(i), donor),
        "value_date": "2026-09-21", "intake_key": f"golden-intake-{i:04d}",
    }  # fmt: skip
    body["postings"] = postings_for("donation", body)
    return body


def build(path: Path | str):
    """The golden charity ledger, from fixed inputs only, as ``luodi init`` starts a log
    (in a SQLite file or a PostgreSQL URL)."""
    stores = open_target(path, upgrade=True)
    cl = open_charity_ledger(stores, signer(ORIGIN), clock=FixedClock(START_MS), create=True)
    cl.record_policy(600)
    keys = [signer(f"{CHARITY}/finance-{i}") for i in (1, 2)]
    cl.register_charity(CHARITY, "Golden Charity", [k.verifier.to_string() for k in keys], 2)
    cl.open_project(PROJECT, CHARITY, "Golden project", "Pinned bytes for every verifier", "CNY")
    for i, (amount, donor) in enumerate(DONATIONS):
        cl.ledger.append("donation", _donation(i, amount, donor))
    payload = P.disbursement(
        charity=CHARITY, project=PROJECT, currency="CNY", payee="Golden Supplies Ltd.", purpose="Winter coats",
        period=("2026-09-01", "2026-09-30"), lines=[("coats", "120.00")],
        evidence=[(hashlib.sha256(b"invoice 1").hexdigest(), "invoice 1")],
        nonce="golden-nonce-0001", signed_at="2026-09-21T14:13:20.000Z",
    )  # fmt: skip
    cl.disburse(payload, [P.sign(payload, k) for k in keys])
    first = cl.ledger.entry(4).receipt  # gift a is spent whole; the refund is of gift c
    assert cl.trace(first).unspent == 0
    cl.refund(cl.ledger.entry(6).receipt, "5.00", "returned at the donor's request")
    return stores, cl


def _totals(p) -> dict:
    return {"project": p.project, "raised": p.raised, "spent": p.spent, "refunded": p.refunded, "donations": p.donations}


def golden_values(cl) -> dict:
    """What the file pins, read from a built ledger (used once to write it, then to compare)."""
    ledger = cl.ledger
    size = ledger.size()
    entries = [ledger.entry(s) for s in range(size)]
    return {
        "comment": "Golden vectors of tests/test_golden_v2.py: computed once from the code, "
        "cross-checked there; never regenerate to make a test pass.",
        "origin": ORIGIN,
        "verifier_key": ledger.verifier.to_string(),
        "charity_keys": [signer(f"{CHARITY}/finance-{i}").verifier.to_string() for i in (1, 2)],
        "donors": [{"seq": 4 + i, "donor_ref": d, "salt": salt(i).hex()} for i, (_, d) in enumerate(DONATIONS)],
        "entries": [
            {"seq": e.seq, "leaf_hash": e.receipt, "canonical": e.canonical.decode("utf-8")} for e in entries
        ],
        "checkpoint": ledger.checkpoint(),
        "inclusion": [
            {"index": s, "size": size, "proof": [h.hex() for h in ledger.inclusion_proof(s, size)]} for s in range(size)
        ],
        "projects": [
            _totals(p) for p in cl.projects()
        ],
        "allocations": {
            e.receipt: {"spent": cl.trace(e.receipt).spent, "refunded": cl.trace(e.receipt).refunded}
            for e in entries
            if e.kind == "donation"
        },
    }


GOLDEN = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
CANONICAL = [e["canonical"].encode("utf-8") for e in GOLDEN["entries"]]


@pytest.fixture
def built(backend):
    stores, cl = build(backend.target("golden"))
    yield cl
    stores.close()


# -- the code reproduces the file ------------------------------------------------------------


def test_the_code_reproduces_every_pinned_value(built):
    got = golden_values(built)
    assert json.loads(json.dumps(got)) == GOLDEN  # (pairs come back from JSON as lists)


def test_a_new_log_starts_with_genesis_then_its_policy():
    kinds = [json.loads(c)["kind"] for c in CANONICAL]
    assert kinds == ["genesis", "policy.recorded", "charity.registered", "project.opened",
                     "donation", "donation", "donation", "disbursement", "refund"]  # fmt: skip
    assert json.loads(CANONICAL[1])["body"] == {"signing_window_seconds": 600}


# -- the file is right (independent derivations) ---------------------------------------------


def test_bytes_hashes_and_chain_are_rfc8785_and_sha256():
    prev = "0" * 64
    for seq, data in enumerate(CANONICAL):
        parsed = json.loads(data)
        assert rfc8785.dumps(parsed) == data, seq
        assert parsed["seq"] == seq and parsed["prev"] == prev
        prev = hashlib.sha256(b"\x00" + data).hexdigest()
        assert GOLDEN["entries"][seq]["leaf_hash"] == prev


def test_root_and_proofs_match_the_reference():
    text, _, _ = GOLDEN["checkpoint"].partition("\n\n")
    origin, size, root = text.split("\n")
    assert (origin, int(size)) == (ORIGIN, len(CANONICAL))
    assert base64.b64decode(root) == MTH(CANONICAL)
    for case in GOLDEN["inclusion"]:
        assert [h.hex() for h in PATH(case["index"], CANONICAL)] == case["proof"]


def test_checkpoint_and_disbursement_signatures_verify_with_cryptography_alone():
    log_key = Ed25519PrivateKey.from_private_bytes(seed(ORIGIN)).public_key()
    text, _, sig_line = GOLDEN["checkpoint"].partition("\n\n")
    raw = base64.b64decode(sig_line.rstrip("\n").rsplit(" ", 1)[1])
    log_key.verify(raw[4:], (text + "\n").encode())  # raises InvalidSignature if wrong
    disbursement = json.loads(CANONICAL[7])["body"]
    for sig, i in zip(disbursement["signatures"], (1, 2), strict=True):
        key = Ed25519PrivateKey.from_private_bytes(seed(f"{CHARITY}/finance-{i}")).public_key()
        key.verify(base64.b64decode(sig["signature"]), rfc8785.dumps(disbursement["payload"]))
        assert sig["key"] == GOLDEN["charity_keys"][i - 1]


def test_donor_commitments_open_with_the_pinned_salts():
    for donor in GOLDEN["donors"]:
        body = json.loads(CANONICAL[donor["seq"]])["body"]
        want = hashlib.sha256(bytes.fromhex(donor["salt"]) + donor["donor_ref"].encode()).hexdigest()
        assert body["donor_commitment"] == want


# -- the auditor's code, from the file alone --------------------------------------------------


def test_the_file_verifies_and_replays_with_the_auditors_code():
    leaf = [bytes.fromhex(e["leaf_hash"]) for e in GOLDEN["entries"]]
    # Stored tree nodes are a store's business: recompute them as the store would, then verify.
    frontier, full = Frontier(), []
    for seq, (h, data) in enumerate(zip(leaf, CANONICAL, strict=True)):
        full.append((seq, h, pack_nodes(frontier.append(h)), data))
    report = verify_stream(full, [(len(CANONICAL), GOLDEN["checkpoint"])], REGISTRY, GOLDEN["verifier_key"])
    assert report.size == len(CANONICAL)
    cp = open_checkpoint(GOLDEN["checkpoint"], Verifier.from_string(GOLDEN["verifier_key"]))
    for case in GOLDEN["inclusion"]:
        proof = [bytes.fromhex(h) for h in case["proof"]]
        verify_inclusion(leaf[case["index"]], case["index"], case["size"], proof, cp.root)
    books = Books(MemoryBooks())
    entries = []
    for data in CANONICAL:
        entry = parse_entry(data, REGISTRY)
        verify_signed(entry.kind, entry.body)
        books.apply(entry)
        entries.append(entry)
    assert books.view.policy().signing_window_seconds == 600
    assert [_totals(p) for p in books.view.projects()] == GOLDEN["projects"]
    traces = trace_fifo(entries)
    assert {r: {"spent": [list(p) for p in t.spent], "refunded": t.refunded} for r, t in traces.items()} == GOLDEN[
        "allocations"
    ]


# -- the old golden ledger still verifies and audits ------------------------------------------


def test_the_v1_golden_ledger_still_verifies_and_audits(make_ledger):
    """ledger_v1.json's log (genesis, then notes: no policy entry) is still a valid log
    today: it verifies against its pinned key and audits with the default window."""
    ledger = build_v1(make_ledger)
    report = verify_log(ledger.store, REGISTRY, V1["verifier_key"])
    assert (report.size, base64.b64encode(report.root).decode()) == (11, V1["checkpoints"][-1]["root"])
    assert audit_books(stores_of(ledger)).entries == 11
