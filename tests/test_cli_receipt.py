"""``luodi verify-receipt``: a donor's check of a receipt file or URL, in plain words or JSON,
with the exit codes of the audit: 0 checked, 1 a verification failure naming the part,
2 a usage or network error."""

from __future__ import annotations

import copy
import json

import pytest
from api_helpers import make_api  # noqa: F401
from click.testing import CliRunner
from receipt_helpers import DONOR_REF, forge, spent_gift
from test_e2e_gunicorn import LiveServer, clean_env, free_port, luodi

from api.cli import main
from ledger.log.note import Signer


@pytest.fixture
def gift(make_api, tmp_path):
    g = spent_gift(make_api())
    (tmp_path / "gift.json").write_text(json.dumps(g.doc))
    (tmp_path / "gift.tlog-proof").write_text(g.tlog)
    (tmp_path / "misnamed.json").write_text(g.tlog)  # the form is known by its first line, not its name
    return g


def verify(*args):
    return CliRunner().invoke(main, ["verify-receipt", *map(str, args)])


def test_a_json_receipt_file_checks_out_in_plain_words(gift, tmp_path):
    done = verify(tmp_path / "gift.json", "--log-key", gift.log_key, "--salt", gift.salt, "--donor-ref", DONOR_REF)
    assert done.exit_code == 0, done.output
    out = done.output
    assert out.startswith(f"ok: the receipt checks out against log key {gift.log_key}\n")
    assert f"gift: 60.00 CNY to project winter-coats, entry seq {gift.doc['leaf_index']}, receipt {gift.receipt}" in out
    assert "donor commitment: matches your salt and donor reference (the gift is yours)" in out
    d0, d1 = (a["disbursement"] for a in gift.doc["allocation"])
    assert (
        "  15.00 CNY of a 190.00 CNY payment to Lanzhou Warm Textiles Co., Ltd.: Winter coats for families in Dingxi "
        f"(2026-09-01 to 2026-09-30); disbursement seq {d0['seq']}, receipt {d0['leaf_hash']}"
    ) in out
    assert f"    evidence {d0['entry']['body']['payload']['evidence'][0]['sha256']}  invoice 1" in out
    assert f"  30.00 CNY of a 30.00 CNY payment to Dingxi Quilt Works: Quilts for the winter" in out
    assert out.rstrip().endswith("spent 45.00 CNY, refunded 5.00 CNY, unspent 10.00 CNY")


def test_the_json_report(gift, tmp_path):
    done = verify(tmp_path / "gift.json", "--log-key", gift.log_key, "--json")
    assert done.exit_code == 0, done.output
    r = json.loads(done.output)
    assert r["ok"] and r["form"] == "json" and not r["inclusion_only"] and r["donor_commitment"] == "not checked"
    assert (r["receipt"], r["amount"], r["spent"], r["refunded"], r["unspent"]) == (gift.receipt, "60.00", "45.00", "5.00", "10.00")
    assert [(a["seq"], a["amount"], a["payee"]) for a in r["allocations"]] == [
        (gift.doc["allocation"][0]["leaf_index"], "15.00", "Lanzhou Warm Textiles Co., Ltd."),
        (gift.doc["allocation"][1]["leaf_index"], "30.00", "Dingxi Quilt Works"),
    ]
    assert r["tree_size"] == gift.doc["tree_size"] and r["charity"] == "hope-foundation"


@pytest.mark.parametrize("name", ["gift.tlog-proof", "misnamed.json"])
def test_a_tlog_proof_proves_inclusion_only_and_says_so(gift, tmp_path, name):
    done = verify(tmp_path / name, "--log-key", gift.log_key, "--salt", gift.salt, "--donor-ref", DONOR_REF)
    assert done.exit_code == 0, done.output
    assert "ok: the tlog-proof checks out" in done.output and "the gift is yours" in done.output
    assert "proves the donation's inclusion in the log only" in done.output
    assert "needs the JSON receipt" in done.output and "paid for" not in done.output
    r = json.loads(verify(tmp_path / name, "--log-key", gift.log_key, "--json").output)
    assert r["form"] == "tlog-proof" and r["inclusion_only"] and r["spent"] is None and r["allocations"] == []


def test_verification_failures_exit_1_naming_the_part(gift, tmp_path):
    other = Signer.generate(gift.log_signer.name).verifier.to_string()
    for source in ("gift.json", "gift.tlog-proof"):
        done = verify(tmp_path / source, "--log-key", other)
        assert done.exit_code == 1, done.output
        part = "log_key" if source == "gift.json" else "checkpoint"
        assert done.output.startswith(f"receipt invalid: {part}: ")
        r = json.loads(verify(tmp_path / source, "--log-key", other, "--json").output)
        assert r == {"ok": False, "error": "verification", "part": part, "detail": r["detail"]}
    done = verify(tmp_path / "gift.json", "--log-key", gift.log_key, "--salt", gift.salt, "--donor-ref", "not-me")
    assert done.exit_code == 1 and "receipt invalid: donor_commitment: " in done.output
    # a disbursement whose signature no longer matches, in a log the operator re-signed
    forged = forge(gift, lambda d: d["allocation"][0]["disbursement"]["entry"]["body"]["payload"].update(purpose="Cars"))
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    done = verify(tmp_path / "forged.json", "--log-key", gift.log_key)
    assert done.exit_code == 1
    assert done.output.startswith("receipt invalid: allocation[0].signatures[0]: signature 0 by hope-foundation/finance-")


def test_each_altered_field_exits_1_through_the_command(gift, tmp_path):
    changes = {
        "leaf_index": lambda d: d.update(leaf_index=d["leaf_index"] + 1),
        "tree_size": lambda d: d.update(tree_size=d["tree_size"] - 1),
        "inclusion_proof": lambda d: d["inclusion_proof"].reverse(),
        "entry": lambda d: d["entry"]["entry"]["body"].update(amount=6001),
        "allocation[1].amount": lambda d: d["allocation"][1].update(amount="31.00"),
        "charity.key_rotations[0]": lambda d: d["charity"]["key_rotations"][0]["entry"].update(time="2026-01-01T00:00:00.000Z"),
    }
    for part, change in changes.items():
        doc = copy.deepcopy(gift.doc)
        change(doc)
        (tmp_path / "altered.json").write_text(json.dumps(doc))
        done = verify(tmp_path / "altered.json", "--log-key", gift.log_key)
        assert done.exit_code == 1 and done.output.startswith(f"receipt invalid: {part}"), (part, done.output)


def test_usage_errors_exit_2_saying_which(gift, tmp_path):
    (tmp_path / "not.json").write_text("<html>hello</html>")
    cases = [
        ((tmp_path / "missing.json", "--log-key", gift.log_key), "usage error: cannot read"),
        ((tmp_path / "gift.json", "--log-key", "not-a-key"), "usage error: --log-key: "),
        ((tmp_path / "not.json", "--log-key", gift.log_key), "usage error: the file is neither JSON nor a tlog-proof"),
        ((tmp_path / "gift.json", "--log-key", gift.log_key, "--salt", gift.salt), "usage error: --salt and --donor-ref go together"),
        ((tmp_path / "gift.json", "--log-key", gift.log_key, "--salt", "zz", "--donor-ref", "x"), "usage error: the salt must be hex"),
        ((f"http://127.0.0.1:{free_port()}/v1/receipts/{gift.receipt}", "--log-key", gift.log_key), "network error: cannot reach"),
    ]
    for args, said in cases:
        done = verify(*args)
        assert done.exit_code == 2 and done.output.startswith(said), (args, done.output)
    assert verify(tmp_path / "gift.json").exit_code == 2  # --log-key is required
    r = json.loads(verify(tmp_path / "not.json", "--log-key", gift.log_key, "--json").output)
    assert r["ok"] is False and r["error"] == "usage"


def test_a_receipt_url_from_a_real_server(gift):
    """Over real HTTP from `luodi serve` (gunicorn): both forms check out; a receipt that does
    not exist is a network error (404), and the wrong key a verification failure."""
    log_key = gift.log_key
    with LiveServer(gift.env.path, gift.env.reader.verifier) as server:
        url = f"{server.url}/v1/receipts/{gift.receipt}"
        done = luodi("verify-receipt", url, "--log-key", log_key, "--salt", gift.salt, "--donor-ref", DONOR_REF, env=clean_env())
        assert done.returncode == 0, done.stderr
        assert "the gift is yours" in done.stdout and "spent 45.00 CNY, refunded 5.00 CNY, unspent 10.00 CNY" in done.stdout
        done = luodi("verify-receipt", url + ".tlog-proof", "--log-key", log_key, "--json", env=clean_env())
        assert done.returncode == 0 and json.loads(done.stdout)["inclusion_only"] is True, done.stderr
        done = luodi("verify-receipt", f"{server.url}/v1/receipts/{'0' * 64}", "--log-key", log_key, env=clean_env())
        assert done.returncode == 2 and "network error:" in done.stderr and "answered 404" in done.stderr
        other = Signer.generate(gift.log_signer.name).verifier.to_string()
        done = luodi("verify-receipt", url, "--log-key", other, env=clean_env())
        assert done.returncode == 1 and done.stderr.startswith("receipt invalid: log_key: ")


def test_a_server_that_answers_with_another_gifts_receipt_or_not_json(gift):
    """A real (hostile) HTTP server: the receipt of another gift than the one asked for fails
    naming leaf_hash; an answer that is neither JSON nor a tlog-proof is exit 2."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = {"/v1/receipts/" + "ab" * 32: json.dumps(gift.doc).encode(), "/html": b"<html>hi</html>"}

    class Hostile(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = answers[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        done = verify(f"{base}/v1/receipts/{'ab' * 32}", "--log-key", gift.log_key)
        assert done.exit_code == 1 and done.output.startswith(
            f"receipt invalid: leaf_hash: the server sent the receipt of {gift.receipt}, not {'ab' * 32}"
        ), done.output
        done = verify(f"{base}/html", "--log-key", gift.log_key)
        assert done.exit_code == 2 and done.output.startswith("network error: the server's answer is neither JSON nor a tlog-proof"), done.output
    finally:
        server.shutdown()
        server.server_close()
