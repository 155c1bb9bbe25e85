"""The charity tooling, run as the installed ``luodi`` command: ``keygen``,
``token create`` and ``disburse`` against a live gunicorn server on 127.0.0.1.

Refusals print one ``Error:`` line, exit non-zero and write nothing.

SQLite only: the token tests read the database file's bytes (only a token's hash
is stored; a refusal leaves every byte as it was), and ``disburse`` is a client
of the HTTP API, whose storage the API and e2e tests run on every backend.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from test_e2e_gunicorn import LiveServer, free_port, http, init_instance, luodi, one_line_error

from api.instance import open_instance
from ledger.charity.tokens import token_hash
from ledger.log.canonical import canonical_bytes
from ledger.log.merkle import leaf_hash
from ledger.log.note import Signer, Verifier

CHARITY = "hope-foundation"
PROJECT = "village-library"
OTHER_CHARITY = "river-aid"
OTHER_PROJECT = "clean-wells"


def instance_bytes(instance: Path) -> bytes:
    """Everything the database holds on disk (WAL mode: the main file, the WAL and its index)."""
    return b"".join(p.read_bytes() for p in sorted(instance.glob("luodi.sqlite*")))


def keygen(tmp: Path, name: str) -> tuple[Path, str]:
    out = tmp / f"{name.replace('/', '-')}.key"
    done = luodi("keygen", "--name", name, "--out", out)
    assert done.returncode == 0, done.stderr
    return out, done.stdout.strip()


# -- keygen ------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_0600_and_prints_the_verifier(tmp_path):
    out = tmp_path / "finance-1.key"
    done = luodi("keygen", "--name", f"{CHARITY}/finance-1", "--out", out)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    verifier = Verifier.from_string(lines[0])
    assert verifier.name == f"{CHARITY}/finance-1"
    signer = Signer.from_string(out.read_text())
    assert signer.verifier == verifier
    assert "PRIVATE" not in done.stdout + done.stderr  # the private key is never printed
    # The key signs what the verifier checks.
    assert verifier.verify(b"payload", signer.sign(b"payload"))
    # Two runs make two different keys.
    _, other = keygen(tmp_path, f"{CHARITY}/finance-2")
    assert Verifier.from_string(other).public_key != verifier.public_key


@pytest.mark.parametrize("existing", ["a key", "something else"])
def test_keygen_never_overwrites_a_file(tmp_path, existing):
    out = tmp_path / "finance-1.key"
    if existing == "a key":
        keygen_done = luodi("keygen", "--name", f"{CHARITY}/finance-1", "--out", out)
        assert keygen_done.returncode == 0
    else:
        out.write_text("my notes\n")
    before = (out.read_bytes(), stat.S_IMODE(out.stat().st_mode))
    line = one_line_error(luodi("keygen", "--name", f"{CHARITY}/finance-9", "--out", out))
    assert "already exists" in line and str(out) in line
    assert (out.read_bytes(), stat.S_IMODE(out.stat().st_mode)) == before


def test_keygen_refuses_a_bad_name_and_writes_nothing(tmp_path):
    out = tmp_path / "bad.key"
    line = one_line_error(luodi("keygen", "--name", "hope foundation", "--out", out))
    assert "key name" in line
    assert not out.exists()


def test_keygen_into_a_missing_folder_is_a_one_line_error(tmp_path):
    """BUG (api/cli.py, keygen): only FileExistsError is caught around os.open, so a
    missing folder (or a read-only one) ends in a FileNotFoundError traceback."""
    out = tmp_path / "no-such-folder" / "finance-1.key"
    line = one_line_error(luodi("keygen", "--name", f"{CHARITY}/finance-1", "--out", out))
    assert str(out) in line
    assert not out.parent.exists()


# -- tokens ------------------------------------------------------------------------------------


@pytest.fixture
def instance(tmp_path):
    """An instance whose log has registered CHARITY (a token may be scoped only to a charity that exists)."""
    path = tmp_path / "instance"
    assert luodi("init", "--instance", path).returncode == 0
    cl = open_instance(path)
    try:
        cl.register_charity(CHARITY, "Hope Foundation", [Signer.generate(f"{CHARITY}/finance-1").verifier.to_string()], 1)
    finally:
        cl.stores.close()
    return path


@pytest.mark.parametrize("args", [["--role", "admin"], ["--role", "intake"], ["--role", "intake", "--charity", CHARITY]])
def test_token_is_printed_once_and_only_its_hash_is_stored(instance, args):
    done = luodi("token", "create", "--instance", instance, *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and done.stderr == ""
    token = lines[0]
    assert re.fullmatch(r"luodi_[A-Za-z0-9_-]{43}", token)
    stored = instance_bytes(instance)
    assert token_hash(token) in stored  # the row is there ...
    assert token.encode() not in stored  # ... but not the token
    assert token[len("luodi_"):].encode() not in stored
    again = luodi("token", "create", "--instance", instance, *args).stdout.strip()
    assert again != token


@pytest.mark.parametrize(
    "args, exit_code, message",
    [
        (["--role", "root"], 2, "Invalid value for '--role'"),
        (["--role", "Admin"], 2, "Invalid value for '--role'"),
        ([], 2, "Missing option '--role'"),
        (["--role", "admin", "--charity", CHARITY], 1, "only intake tokens are scoped to a charity"),
    ],
)
def test_token_refusals_write_nothing(instance, args, exit_code, message):
    before = instance_bytes(instance)
    done = luodi("token", "create", "--instance", instance, *args)
    assert done.returncode == exit_code
    assert done.stdout == "" and message in done.stderr
    if exit_code == 1:
        one_line_error(done)
    assert instance_bytes(instance) == before


def test_token_create_needs_an_instance(tmp_path):
    line = one_line_error(luodi("token", "create", "--instance", tmp_path / "nowhere", "--role", "admin"))
    assert "no instance folder" in line
    assert not (tmp_path / "nowhere").exists()


def test_token_list_shows_ids_roles_and_scope_but_never_the_tokens(instance):
    made = {}
    for args in (["--role", "admin"], ["--role", "intake", "--charity", CHARITY]):
        made[args[1]] = luodi("token", "create", "--instance", instance, *args).stdout.strip()
    done = luodi("token", "list", "--instance", instance)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line, (role, token) in zip(sorted(lines, key=lambda x: x.split()[1]), sorted(made.items())):
        token_id, shown_role, charity, created, rate = line.split(maxsplit=4)
        assert token_id == token_hash(token).hex()[:12] and shown_role == role and rate == "-"  # the role's default
        assert charity == (CHARITY if role == "intake" else "-")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", created)
        assert token not in done.stdout and token[len("luodi_"):] not in done.stdout


def test_token_revoke_removes_exactly_that_token(instance):
    keep = luodi("token", "create", "--instance", instance, "--role", "admin").stdout.strip()
    gone = luodi("token", "create", "--instance", instance, "--role", "intake", "--charity", CHARITY).stdout.strip()
    gone_id = token_hash(gone).hex()[:12]
    done = luodi("token", "revoke", "--instance", instance, gone_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"revoked {gone_id} (intake, {CHARITY})"
    stored = instance_bytes(instance)
    assert token_hash(gone) not in stored and token_hash(keep) in stored
    listed = luodi("token", "list", "--instance", instance).stdout
    assert gone_id not in listed and token_hash(keep).hex()[:12] in listed


@pytest.mark.parametrize(
    "token_id, exit_code, message",
    [
        ("0" * 12, 1, "no token with id 000000000000"),
        ("abc", 1, "a token id is at least 12 lowercase hex digits"),
        ("ABCDEF012345", 1, "a token id is at least 12 lowercase hex digits"),
        ("luodi_abcdefghijk", 1, "a token id is at least 12 lowercase hex digits"),
    ],
)
def test_token_revoke_refusals_write_nothing(instance, token_id, exit_code, message):
    luodi("token", "create", "--instance", instance, "--role", "admin")
    before = instance_bytes(instance)
    done = luodi("token", "revoke", "--instance", instance, token_id)
    assert done.returncode == exit_code and done.stdout == ""
    assert message in one_line_error(done)
    assert instance_bytes(instance) == before


def test_token_revoke_refuses_an_id_two_tokens_share(instance):
    import sqlite3

    with sqlite3.connect(instance / "luodi.sqlite") as conn:  # two hashes with the same first 12 digits
        for last in (b"\x01", b"\x02"):
            conn.execute(
                "INSERT INTO tokens (token_hash, role, charity, created) VALUES (?, 'admin', NULL, '2026-11-29T00:00:00.000Z')",
                (bytes.fromhex("ab" * 6) + b"\x00" * 25 + last,),
            )
    conn.close()
    before = instance_bytes(instance)
    line = one_line_error(luodi("token", "revoke", "--instance", instance, "ab" * 6))
    assert "2 tokens have ids starting abababababab: give more digits" in line
    assert instance_bytes(instance) == before
    longer = (bytes.fromhex("ab" * 6) + b"\x00" * 25 + b"\x02").hex()
    assert luodi("token", "revoke", "--instance", instance, longer).returncode == 0
    assert luodi("token", "list", "--instance", instance).stdout.count("abababababab") == 1


# -- disburse against a live server -------------------------------------------------------------


@pytest.fixture(scope="module")
def charity_server(tmp_path_factory):
    """A live server with a 2-of-3 charity whose keys come from ``luodi keygen``, a project
    holding 1,000.00 CNY, and a second charity (whose key must never count for the first)."""
    root = tmp_path_factory.mktemp("tools")
    instance = root / "instance"
    log_key, admin, intake = init_instance(instance)
    keys = [keygen(root, f"{CHARITY}/finance-{i}") for i in (1, 2, 3)]
    stranger = keygen(root, f"{OTHER_CHARITY}/finance-1")
    with LiveServer(instance, log_key) as server:
        auth = {"Authorization": f"Bearer {admin}"}
        for charity, vkeys, threshold in ((CHARITY, [v for _, v in keys], 2), (OTHER_CHARITY, [stranger[1]], 1)):
            got = server.post(
                "/v1/charities",
                {"charity": charity, "name": charity.title(), "keys": vkeys, "threshold": threshold},
                headers=auth,
            )
            assert got.status == 201, got.body
        for project, charity in ((PROJECT, CHARITY), (OTHER_PROJECT, OTHER_CHARITY)):
            got = server.post(
                "/v1/projects",
                {"project": project, "charity": charity, "title": f"{project} title", "purpose": "Books",
                 "currency": "CNY"},
                headers=auth,
            )
            assert got.status == 201, got.body
        for i, amount in enumerate(("400.00", "600.00")):
            got = server.post(
                f"/v1/projects/{PROJECT}/donations",
                {"amount": amount, "channel": "alipay", "payment_ref": f"ALI-{i}", "donor_ref": f"donor-{i}",
                 "value_date": "2026-11-29"},
                headers={"Authorization": f"Bearer {intake}", "Idempotency-Key": f"tools-intake-{i:04d}"},
            )
            assert got.status == 201, got.body
        server.root = root
        server.keys = keys
        server.stranger = stranger
        server.tokens = (admin, intake)
        yield server


def log_size(server: LiveServer) -> int:
    return int(server.get("/v1/checkpoint").text.split("\n")[1])


def disburse(server: LiveServer, keys: list[Path], *extra, amount="120.50", url=None):
    return luodi(
        "disburse", *[a for k in keys for a in ("--key", k)], "--url", url or server.url, "--project", PROJECT,
        "--amount", amount, "--payee", "Xinhua Bookstore", "--purpose", "Books for the village library", *extra,
    )


def test_disburse_signs_with_two_keys_and_posts(charity_server):
    server = charity_server
    invoice = server.root / "invoice-2026-11-0042.pdf"
    invoice.write_bytes(os.urandom(5000))
    contract = server.root / "contract.txt"
    contract.write_text("Supply of 300 books, delivered by 30 November.\n")
    before = server.get(f"/v1/projects/{PROJECT}").json
    k1, k3 = server.keys[0][0], server.keys[2][0]
    done = disburse(server, [k1, k3], "--period", "2026-11-01", "2026-11-30", "--evidence", invoice,
                    "--evidence", contract)
    assert done.returncode == 0, done.stderr
    m = re.fullmatch(r"disbursement appended at seq (\d+), receipt ([0-9a-f]{64})\n", done.stdout)
    assert m, done.stdout
    seq, receipt = int(m.group(1)), m.group(2)

    item = server.get(f"/v1/entries/{seq}").json
    assert item["leaf_hash"] == receipt == leaf_hash(canonical_bytes(item["entry"])).hex()
    assert item["entry"]["kind"] == "disbursement"
    payload = item["entry"]["body"]["payload"]
    assert payload["evidence"] == [
        {"sha256": hashlib.sha256(invoice.read_bytes()).hexdigest(), "description": invoice.name},
        {"sha256": hashlib.sha256(contract.read_bytes()).hexdigest(), "description": contract.name},
    ]
    assert (payload["charity"], payload["project"], payload["amount"], payload["currency"]) == (
        CHARITY, PROJECT, 12050, "CNY")
    assert payload["period"] == {"start": "2026-11-01", "end": "2026-11-30"}
    assert payload["payee"] == {"name": "Xinhua Bookstore"}
    # Signed by exactly the two keys given, over the canonical payload.
    signed = canonical_bytes(payload)
    sigs = item["entry"]["body"]["signatures"]
    assert [s["key"] for s in sigs] == [server.keys[0][1], server.keys[2][1]]
    for s in sigs:
        assert Verifier.from_string(s["key"]).verify(signed, base64.b64decode(s["signature"]))
    after = server.get(f"/v1/projects/{PROJECT}").json
    assert (before["spent"], after["spent"]) == ("0.00", "120.50")
    assert after["balance"] == "879.50"


def test_disburse_without_evidence_defaults_the_period_to_today(charity_server):
    server = charity_server
    done = disburse(server, [server.keys[1][0], server.keys[2][0]], amount="10.00")
    assert done.returncode == 0, done.stderr
    seq = int(re.search(r"seq (\d+)", done.stdout).group(1))
    payload = server.get(f"/v1/entries/{seq}").json["entry"]["body"]["payload"]
    today = payload["signed_at"][:10]
    assert payload["evidence"] == [] and payload["period"] == {"start": today, "end": today}


@pytest.mark.parametrize(
    "which, message",
    [
        ("one key", "1 distinct key(s) signed; charity hope-foundation needs 2"),
        ("the same key twice", "the same key signed twice"),
        ("a stranger's key", "is by a key of charity river-aid"),
    ],
)
def test_disburse_refuses_too_few_good_signatures_and_writes_nothing(charity_server, which, message):
    server = charity_server
    k1 = server.keys[0][0]
    keys = {"one key": [k1], "the same key twice": [k1, k1], "a stranger's key": [k1, server.stranger[0]]}[which]
    size = log_size(server)
    line = one_line_error(disburse(server, keys))
    assert "Signature verification failed" in line and message in line
    assert log_size(server) == size


def test_disburse_refuses_an_overspend_and_writes_nothing(charity_server):
    server = charity_server
    size = log_size(server)
    line = one_line_error(disburse(server, [server.keys[0][0], server.keys[1][0]], amount="100000.00"))
    assert "409" in line and "Not enough unspent money" in line
    assert log_size(server) == size


def test_disburse_refuses_an_unknown_project(charity_server):
    server = charity_server
    size = log_size(server)
    done = luodi("disburse", "--key", server.keys[0][0], "--key", server.keys[1][0], "--url", server.url,
                 "--project", "no-such-project", "--amount", "1.00", "--payee", "X", "--purpose", "Y")
    line = one_line_error(done)
    assert "404" in line and "no-such-project" in line
    assert log_size(server) == size


def test_disburse_refuses_a_key_file_readable_by_others(charity_server, tmp_path):
    server = charity_server
    src = server.keys[0][0]
    leaky = tmp_path / "leaky.key"
    leaky.write_text(src.read_text())
    leaky.chmod(0o644)
    size = log_size(server)
    line = one_line_error(disburse(server, [leaky, server.keys[1][0]]))
    assert "readable by others" in line
    assert log_size(server) == size


def test_disburse_to_an_unreachable_server_is_one_line(charity_server):
    server = charity_server
    port = free_port()  # nothing listens here
    line = one_line_error(disburse(server, [server.keys[0][0], server.keys[1][0]], url=f"http://127.0.0.1:{port}"))
    assert f"cannot reach http://127.0.0.1:{port}" in line


def test_tokens_made_by_the_cli_work_on_the_live_server(charity_server):
    """A token printed by ``luodi token create`` authenticates at once; a scoped intake
    token may only take gifts for its own charity's projects."""
    server = charity_server
    scoped = luodi("token", "create", "--instance", server.instance, "--role", "intake", "--charity", OTHER_CHARITY)
    assert scoped.returncode == 0, scoped.stderr
    token = scoped.stdout.strip()
    body = {"amount": "5.00", "channel": "cash", "payment_ref": "CASH-1", "donor_ref": "donor-x",
            "value_date": "2026-11-29"}
    size = log_size(server)
    mine = http("POST", f"{server.url}/v1/projects/{OTHER_PROJECT}/donations", body,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "tools-scoped-0001"})
    assert mine.status == 201, mine.body
    theirs = http("POST", f"{server.url}/v1/projects/{PROJECT}/donations", body,
                  headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "tools-scoped-0002"})
    assert theirs.status == 403, theirs.body
    # An intake token is not an admin token, and a made-up token is nobody's.
    for bearer, status in ((token, 403), ("luodi_" + "A" * 43, 401)):
        got = http("POST", f"{server.url}/v1/charities", {"charity": "x", "name": "X", "keys": [], "threshold": 1},
                   headers={"Authorization": f"Bearer {bearer}"})
        assert got.status == status, got.body
    assert log_size(server) == size + 1
    # Revoked, the same token is refused at once by every worker.
    assert luodi("token", "revoke", "--instance", server.instance, token_hash(token).hex()[:12]).returncode == 0
    for n in range(4):
        again = http("POST", f"{server.url}/v1/projects/{OTHER_PROJECT}/donations", body,
                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"tools-revoked-{n:04d}"})
        assert again.status == 401, again.body
    assert log_size(server) == size + 1
