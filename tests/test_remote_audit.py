"""``luodi audit --url``: a clean log passes; a hostile server fails, naming the seq or the part.

The server is real (the Flask app of a real instance, served over HTTP by
werkzeug in a thread); a WSGI layer in front of it tampers with its answers
the way a dishonest or broken operator could.  Every failure must exit 1 (a
verification failure) and never 0; transport and usage problems exit 2.

SQLite only (the default database): the audit reads the server over HTTP only, so which
database serves it does not matter here; the storage, service, API and end-to-end tests
run on every backend.
"""

from __future__ import annotations

import json
import random

import pytest
from remote_servers import run_audit, servers  # noqa: F401 (a fixture)

from api.remote import HttpSource
from ledger.charity.remote_audit import audit_remote
from ledger.log.checkpoint import Checkpoint, parse_checkpoint
from ledger.log.note import Signer, open_note


@pytest.fixture
def served(servers):
    return servers()


def _failed(result, *needles: str) -> str:
    """The audit exited 1 and its message holds every needle."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert "audit FAILED" in result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    return result.output


def _audit(served, *extra: str):
    return run_audit("--url", served.url, "--log-key", served.log_key, "--receipts", "all", *extra)


# -- a clean log -----------------------------------------------------------------------------


def test_clean_log_passes_and_checks_every_published_figure(served):
    report = audit_remote(HttpSource(served.url), served.log_key, receipts=None, rng=random.Random(1))
    with open_note_size(served) as size:
        assert report.entries == report.tree_size == size
    assert report.projects == 7
    assert report.donations == report.receipts_checked > 40
    assert report.disbursements == 1 and report.proofs_checked == min(100, report.entries)
    result = _audit(served)
    assert result.exit_code == 0, result.output
    assert f"ok: {report.entries} entries verified" in result.output
    assert f"{report.receipts_checked} receipts" in result.output


class open_note_size:
    def __init__(self, served):
        self.served = served

    def __enter__(self):
        from api.instance import open_instance

        cl = open_instance(self.served.path, with_key=False)
        try:
            return cl.ledger.size()
        finally:
            cl.stores.close()

    def __exit__(self, *exc):
        return False


def test_json_report(served):
    result = _audit(served, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["exit"] == 0 and doc["mode"] == "url"
    assert doc["entries"] == doc["checkpoint"]["tree_size"] and doc["receipts_checked"] == doc["donations"]
    verifier = served.signer().verifier
    assert parse_checkpoint(open_note(doc["checkpoint"]["note"], verifier).text).size == doc["entries"]


def test_json_report_of_a_failure(served):
    served.tamper_json("/v1/projects", lambda doc, q: doc["projects"][0].update(raised="1.00"))
    result = _audit(served, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["exit"] == 1 and doc["error"]["type"] == "misreported"
    assert doc["error"]["part"] == "projects.raised" and "raised" in doc["error"]["detail"]


# -- tampered proofs ---------------------------------------------------------------------------


def _flip(h: str) -> str:
    b = bytearray(bytes.fromhex(h))
    b[0] ^= 1
    return b.hex()


PROOF_TAMPERS = {
    "too short": lambda p: p[:-1],
    "too long": lambda p: p + [p[0]],
    "reordered": lambda p: [p[1], p[0], *p[2:]],
    "bit-flipped": lambda p: [_flip(p[0]), *p[1:]],
}


@pytest.mark.parametrize("how", PROOF_TAMPERS)
def test_inclusion_proof_tampered(served, how):
    hit = {}

    def tamper(doc, query):
        if not hit and len(doc["audit_path"]) >= 2:
            hit["seq"] = doc["leaf_index"]
            doc["audit_path"] = PROOF_TAMPERS[how](doc["audit_path"])

    served.tamper_json("/v1/proofs/inclusion", tamper)
    out = _failed(_audit(served), "inclusion proof of seq")
    assert f"seq {hit['seq']}" in out


@pytest.mark.parametrize("how", PROOF_TAMPERS)
def test_receipt_inclusion_proof_tampered(served, how):
    hit = {}

    def tamper(doc, query):
        if not hit and len(doc["inclusion_proof"]) >= 2:
            hit["receipt"], hit["seq"] = doc["entry"]["leaf_hash"], doc["leaf_index"]
            doc["inclusion_proof"] = PROOF_TAMPERS[how](doc["inclusion_proof"])

    served.tamper_json("/v1/receipts/", tamper)
    out = _failed(_audit(served), "inclusion_proof")
    assert hit["receipt"] in out and f"(seq {hit['seq']})" in out


def test_proof_that_is_not_hex(served):
    served.tamper_json("/v1/proofs/inclusion", lambda doc, q: doc["audit_path"].__setitem__(0, "zz" * 32))
    _failed(_audit(served), "inclusion proof of seq", "is not a 64-digit lowercase hex hash")


def test_inclusion_answer_for_another_tree_size(served):
    served.tamper_json("/v1/proofs/inclusion", lambda doc, q: doc.update(tree_size=doc["tree_size"] - 1))
    _failed(_audit(served), "inclusion proof of seq", "tree_size")


def test_receipt_with_a_wrong_tree_size(served):
    served.tamper_json("/v1/receipts/", lambda doc, q: doc.update(tree_size=doc["tree_size"] + 1))
    _failed(_audit(served), "says tree size", "but its checkpoint is at")


# -- checkpoints ----------------------------------------------------------------------------


def _resign(served, note: bytes, signer: Signer, change) -> bytes:
    text = note.decode().split("\n\n")[0] + "\n"
    cp = parse_checkpoint(text)
    return change(cp).sign(signer).encode()


def test_checkpoint_signed_by_another_key(served):
    other = Signer.generate(served.signer().name)  # the same name, another key
    served.tamper("/v1/checkpoint", lambda body, q: _resign(served, body, other, lambda cp: cp))
    _failed(_audit(served), "the checkpoint does not verify with the pinned log key")


def test_checkpoint_whose_root_does_not_match_the_entries(served):
    signer = served.signer()
    flip = lambda cp: Checkpoint(cp.origin, cp.size, bytes([cp.root[0] ^ 1]) + cp.root[1:])  # noqa: E731
    served.tamper("/v1/checkpoint", lambda body, q: _resign(served, body, signer, flip))
    size = parse_checkpoint(_resign(served, _note(served), signer, lambda cp: cp).decode().split("\n\n")[0] + "\n").size
    _failed(_audit(served), f"seq {size - 1}", "root that does not match the entries")


def _note(served) -> bytes:
    import urllib.request

    with urllib.request.urlopen(served.url + "/v1/checkpoint") as r:
        return r.read()


def test_checkpoint_that_is_not_a_note(served):
    served.tamper("/v1/checkpoint", lambda body, q: b"not a checkpoint\n")
    _failed(_audit(served), "checkpoint")


def test_the_wrong_log_key(served):
    other = Signer.generate(served.signer().name).verifier.to_string()
    result = run_audit("--url", served.url, "--log-key", other)
    _failed(result, "the checkpoint does not verify with the pinned log key")


# -- the entries --------------------------------------------------------------------------------


def _lines(fn):
    def rewrite(body: bytes, query: dict) -> bytes:
        lines = body.split(b"\n")[:-1]
        start = int(query.get("start", 0))
        return b"".join(line + b"\n" for line in fn(lines, start))

    return rewrite


def test_a_byte_changed_in_an_exported_entry(served):
    def change(lines, start):
        lines[7] = lines[7].replace(b'"kind":"', b'"kind": "', 1)
        return lines

    served.tamper("/v1/export", _lines(change))
    _failed(_audit(served), "seq 7 (receipt ", "not the RFC 8785 canonical form")


def test_a_deleted_entry(served):
    served.tamper("/v1/export", _lines(lambda lines, start: lines[:7] + lines[8:]))
    _failed(_audit(served), "seq 7 (receipt ", "says seq 8")


def test_swapped_entries(served):
    served.tamper("/v1/export", _lines(lambda lines, start: [*lines[:7], lines[8], lines[7], *lines[9:]]))
    _failed(_audit(served), "seq 7 (receipt ", "says seq 8")


def test_an_export_that_stops_short(served):
    served.tamper("/v1/export", _lines(lambda lines, start: lines[:-3]))
    _failed(_audit(served), "the export ended at seq")


def test_an_export_that_sends_more(served):
    served.tamper("/v1/export", _lines(lambda lines, start: lines + [lines[-1]]))
    _failed(_audit(served), "more entries than")


# -- the books ------------------------------------------------------------------------------------


def test_misreported_project_totals(served):
    def change(doc, q):
        p = doc["projects"][1]
        p["spent"] = "0.01" if p["spent"] != "0.01" else "0.02"

    served.tamper_json("/v1/projects", change)
    _failed(_audit(served), "project ", "the server says spent")


def test_a_project_left_out(served):
    served.tamper_json("/v1/projects", lambda doc, q: doc["projects"].pop())
    _failed(_audit(served), "the server does not list it")


def test_misreported_receipt_allocation(served):
    hit = {}

    def change(doc, q):
        if doc["allocation"] and not hit:
            hit["receipt"] = doc["entry"]["leaf_hash"]
            doc["allocation"][0]["amount"] = "0.01" if doc["allocation"][0]["amount"] != "0.01" else "0.02"

    served.tamper_json("/v1/receipts/", change)
    out = _failed(_audit(served), "allocation differs from the FIFO replay at allocation[0]")
    assert hit["receipt"] in out


def test_misreported_receipt_figures(served):
    served.tamper_json("/v1/receipts/", lambda doc, q: doc.update(unspent="999999.00"))
    _failed(_audit(served), "the server says unspent")


# -- a live server that grows ----------------------------------------------------------------------


def test_a_log_that_grows_during_the_audit_is_caught_up(served):
    grown = {}

    def grow(body, query):
        if not grown:
            grown["done"] = True
            served.append_notes(5, "while auditing")
            import urllib.request

            with urllib.request.urlopen(served.url + "/v1/projects") as r:  # the answer after the growth
                return r.read()
        return body

    served.tamper("/v1/projects", grow)
    report = audit_remote(HttpSource(served.url), served.log_key, receipts=10, rng=random.Random(2))
    assert report.catch_ups >= 1
    assert report.kinds["note"] == 1 + 5 and report.tree_size == report.entries


# -- transport and usage: exit 2 ---------------------------------------------------------------------


def test_non_json_answer_exits_2(served):
    served.tamper("/v1/projects", lambda body, q: b"<html>oops</html>")
    result = _audit(served)
    assert result.exit_code == 2 and "is not JSON" in result.output


def test_unreachable_server_exits_2(served, servers):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_audit("--url", f"http://127.0.0.1:{port}", "--log-key", served.log_key)
    assert result.exit_code == 2 and "cannot reach" in result.output


def test_malformed_key_string_exits_2(served):
    result = run_audit("--url", served.url, "--log-key", "not-a-key")
    assert result.exit_code == 2 and "--log-key is not a verifier key" in result.output


def test_url_needs_a_log_key(served):
    result = run_audit("--url", served.url)
    assert result.exit_code == 2 and "--url needs --log-key" in result.output


def test_misuse_of_the_flags_exits_2(served, tmp_path):
    assert run_audit("--url", served.url, "--db", str(tmp_path / "x"), "--log-key", served.log_key).exit_code == 2
    assert run_audit("--db", str(tmp_path / "x"), "--log-key", served.log_key, "--state", "s").exit_code == 2
    assert run_audit("--url", served.url, "--log-key", served.log_key, "--receipts", "many").exit_code == 2
    assert run_audit("--url", "ftp://x", "--log-key", served.log_key).exit_code == 2


def test_an_http_error_answer_exits_2(served):
    served.tamper("/v1/export", lambda body, q: body)  # keep the app's own answer
    result = run_audit("--url", served.url + "/nothing-here", "--log-key", served.log_key)
    assert result.exit_code == 2 and "was answered 404" in result.output


# -- an operator who rewrote history and re-signed it -------------------------------------------


def _rewritten(served, change_at) -> tuple[list[bytes], bytes]:
    """The server's log with entry ``change_at(envelopes)`` changed and every later entry
    re-chained, and a checkpoint over it signed with the log's own key: a history the
    operator rewrote consistently, as only the holder of the key can."""
    import urllib.request

    from ledger.log.canonical import canonical_bytes
    from ledger.log.entry import load_entry
    from ledger.log.merkle import leaf_hash, root

    with urllib.request.urlopen(served.url + "/v1/export") as r:
        original = r.read().split(b"\n")[:-1]
    envelopes = [load_entry(line).envelope() for line in original]
    seq = change_at(envelopes)
    lines, prev, renamed = [], None, {}
    for env, old in zip(envelopes, original):
        if prev is not None and env["seq"] > seq:
            env["prev"] = prev
            if env["kind"] == "refund":  # a refund names its donation by receipt: keep it pointing there
                env["body"]["donation"] = renamed.get(env["body"]["donation"], env["body"]["donation"])
        data = canonical_bytes(env)
        lines.append(data)
        prev = renamed[leaf_hash(old).hex()] = leaf_hash(data).hex()
    signer = served.signer()
    note = Checkpoint(signer.name, len(lines), root(leaf_hash(x) for x in lines)).sign(signer).encode()
    return lines, note


def _serve_history(served, lines: list[bytes], note: bytes) -> None:
    def export(body, query):
        start, end = int(query.get("start", 0)), int(query.get("tree_size", len(lines)))
        return b"".join(line + b"\n" for line in lines[start:end])

    served.tamper("/v1/export", export)
    served.tamper("/v1/checkpoint", lambda body, q: note)


def test_a_rewritten_disbursement_whose_signature_no_longer_matches(served):
    import base64

    def change(envelopes):
        d = next(e for e in envelopes if e["kind"] == "disbursement")
        sig = bytearray(base64.b64decode(d["body"]["signatures"][0]["signature"]))
        sig[5] ^= 1
        d["body"]["signatures"][0]["signature"] = base64.b64encode(bytes(sig)).decode()
        return d["seq"]

    lines, note = _rewritten(served, change)
    seq = next(i for i, line in enumerate(lines) if b'"kind":"disbursement"' in line)
    _serve_history(served, lines, note)
    from ledger.log.merkle import leaf_hash

    _failed(_audit(served), f"seq {seq} (receipt {leaf_hash(lines[seq]).hex()})",
            "the accounting rules refuse this entry", "does not verify over the payload")


def test_a_rewritten_donation_amount_is_caught_by_the_published_figures(served):
    """History rewritten consistently and re-signed: every entry checks out, but the
    server's own index still publishes the old figures."""

    def change(envelopes):
        d = next(e for e in envelopes if e["kind"] == "donation" and e["body"]["project"] == "autumn-drive")
        d["body"]["amount"] += 100
        for p in d["body"]["postings"]:
            p["amount"] += 100 if p["amount"] > 0 else -100
        return d["seq"]

    lines, note = _rewritten(served, change)
    _serve_history(served, lines, note)
    # /v1/projects still comes with the server's real checkpoint: two histories signed by one key
    _failed(_audit(served), f"seq {len(lines) - 1} (receipt ", "has a root that does not match the entries")
    served.tamper_json("/v1/projects", lambda doc, q: doc.update(checkpoint=note.decode()))
    out = _failed(_audit(served), "project 'autumn-drive'")
    assert "the server says raised" in out or "the server says balance" in out


def test_a_receipt_that_fails_the_donors_offline_check(served):
    """The figures and the gift's own proof are right, but the proof of the charity's
    registration that the receipt carries is not: the donor's check refuses it."""
    hit = {}

    def change(doc, query):
        reg = doc["charity"]["registration"]
        if not hit and len(reg["inclusion_proof"]) >= 2:
            hit["receipt"] = doc["entry"]["leaf_hash"]
            reg["inclusion_proof"] = PROOF_TAMPERS["reordered"](reg["inclusion_proof"])

    served.tamper_json("/v1/receipts/", change)
    out = _failed(_audit(served), "charity.registration")
    assert hit["receipt"] in out
