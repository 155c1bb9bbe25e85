"""End to end over real HTTP: ``luodi serve`` runs gunicorn with two workers on
127.0.0.1, and a donor checks a receipt with nothing but ``ledger/``, on every
backend (the instance records its PostgreSQL URL in its folder, so the server
finds it); the access log, the refusals of an unusable folder and the HTTP
benchmark do not depend on the database and run on SQLite.

The server is started as a real process through the installed ``luodi``
console script (after ``luodi init`` and ``luodi token create``), and it is
always stopped (SIGTERM, then SIGKILL) when the module's tests are done.
:class:`LiveServer` and the small HTTP helpers here are shared with
``tests/test_charity_tools.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ledger.charity import payload as P
from ledger.charity.money import parse_amount
from ledger.errors import ProofError
from ledger.log.canonical import canonical_bytes
from ledger.log.checkpoint import open_checkpoint
from ledger.log.merkle import leaf_hash, root, verify_consistency, verify_inclusion
from ledger.log.note import Signer, Verifier

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
LUODI = shutil.which("luodi", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).parent / "luodi")
START_TIMEOUT = 20.0


# -- processes -------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child: no proxies (everything is loopback), no stray LUODI_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("LUODI_")}
    env.update(extra)
    return env


def luodi(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the installed ``luodi`` command and capture its output."""
    return subprocess.run(
        [LUODI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env or clean_env()
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """A refusal: non-zero exit, nothing on stdout, exactly one 'Error: ...' line on stderr."""
    assert done.returncode != 0, done.stdout
    assert done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: "), done.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def init_instance(instance: Path, database: str | None = None) -> tuple[Verifier, str, str]:
    """``luodi init`` (``--database`` if given: ``backend.database(name)``) plus an admin and
    an intake token: (pinned log key, admin, intake)."""
    done = luodi("init", "--instance", instance, *(["--database", database] if database else []))
    assert done.returncode == 0, done.stderr
    vkey = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("verifier:"))
    tokens = []
    for role in ("admin", "intake"):
        made = luodi("token", "create", "--instance", instance, "--role", role)
        assert made.returncode == 0, made.stderr
        tokens.append(made.stdout.strip())
    return Verifier.from_string(vkey), tokens[0], tokens[1]


# -- HTTP --------------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30) -> Answer:
    """One request; HTTP errors come back as answers, not exceptions."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return Answer(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, dict(exc.headers.items()), exc.read())


class LiveServer:
    """``luodi serve`` on a free loopback port, as a real gunicorn process tree.

    ``env`` adds settings for the server (e.g. ``LUODI_RATELIMIT_ENABLED``).
    The gunicorn control socket goes to a private directory so that servers
    running side by side do not share ``~/.gunicorn/gunicorn.ctl``.
    """

    def __init__(self, instance: Path, log_key: Verifier, workers: int = 2, env: dict | None = None, threads: int = 1):
        self.instance = Path(instance)
        self.log_key = log_key
        self.workers = workers
        self.threads = threads
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._runtime = tempfile.mkdtemp(prefix="luodi-ctl-")
        self._logs: list = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> "LiveServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        for _ in range(3):  # a free port may be taken before gunicorn binds it
            self.port = free_port()
            out = open(Path(self._runtime) / f"serve-{self.port}.out", "wb")
            err = open(Path(self._runtime) / f"serve-{self.port}.err", "wb")
            self._logs += [out, err]
            self.proc = subprocess.Popen(
                [LUODI, "serve", "--instance", str(self.instance), "--host", HOST, "--port", str(self.port),
                 "--workers", str(self.workers), "--threads", str(self.threads)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=clean_env(XDG_RUNTIME_DIR=self._runtime, **self.extra_env),
                start_new_session=True,
            )
            if self._wait_ready():
                return
            self._end()
        log = self.log()
        self.stop()
        raise AssertionError(f"luodi serve did not come up:\n{log}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                got = http("GET", self.url + "/v1/log/key", timeout=2)
            except OSError:
                time.sleep(0.1)
                continue
            if got.status != 200 or got.text.strip() != self.log_key.to_string():
                time.sleep(0.1)  # someone else's server on this port: ours will fail to bind and exit
                continue
            return http("GET", self.url + "/v1/checkpoint", timeout=5).status == 200
        return False

    def log(self) -> str:
        for f in self._logs:
            f.flush()
        return "\n".join(Path(f.name).read_text(errors="replace") for f in self._logs[-2:])

    def worker_pids(self) -> list[int]:
        """gunicorn's workers: the children of the master (the ``luodi serve`` process)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields_ = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields_[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def _end(self) -> None:
        """SIGTERM the master (gunicorn stops its workers); SIGKILL its session if that hangs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this server was started in
        proc.wait(timeout=15)

    def stop(self) -> None:
        try:
            self._end()
        finally:
            for f in self._logs:
                f.close()
            self._logs.clear()
            shutil.rmtree(self._runtime, ignore_errors=True)

    # convenience
    def get(self, path: str, **kw) -> Answer:
        return http("GET", self.url + path, **kw)

    def post(self, path: str, body, **kw) -> Answer:
        return http("POST", self.url + path, body, **kw)


# -- the scenario ---------------------------------------------------------------------------

CHARITY = "hope-foundation"
PROJECT = "school-meals"
DONATIONS = [("100.00", "donor-anna"), ("250.00", "donor-bo"), ("80.00", "donor-chen"), ("500.00", "donor-dai")]
DISBURSED = "300.00"  # FIFO: all of the first gift, 200.00 of the second


@dataclass
class Scenario:
    server: LiveServer
    admin: str
    intake: str
    signers: list[Signer]
    donations: list[dict] = field(default_factory=list)  # the POST answers, salt included
    donor_refs: list[str] = field(default_factory=list)
    disbursement: dict | None = None
    counter: int = 0

    def auth(self, token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}

    def donate(self, amount: str, donor_ref: str, key: str | None = None) -> Answer:
        self.counter += 1
        key = key or f"e2e-intake-{os.getpid()}-{self.counter:06d}"
        body = {
            "amount": amount,
            "channel": "wechat",
            "payment_ref": f"WX-{key}",
            "donor_ref": donor_ref,
            "value_date": "2026-11-29",
        }
        return self.server.post(
            f"/v1/projects/{PROJECT}/donations", body, headers={**self.auth(self.intake), "Idempotency-Key": key}
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory, module_backend):
    instance = tmp_path_factory.mktemp("e2e") / "instance"
    log_key, admin, intake = init_instance(instance, module_backend.database("e2e"))
    with LiveServer(instance, log_key) as server:
        server.tokens = (admin, intake)
        yield server


@pytest.fixture(scope="module")
def scenario(live) -> Scenario:
    admin, intake = live.tokens
    signers = [Signer.generate(f"{CHARITY}/finance-{i}") for i in (1, 2, 3)]
    sc = Scenario(live, admin, intake, signers)
    got = live.post(
        "/v1/charities",
        {"charity": CHARITY, "name": "Hope Foundation", "keys": [s.verifier.to_string() for s in signers],
         "threshold": 2},
        headers=sc.auth(admin),
    )
    assert got.status == 201, got.body
    got = live.post(
        "/v1/projects",
        {"project": PROJECT, "charity": CHARITY, "title": "School meals in Liangshan",
         "purpose": "Hot lunches for 300 pupils", "currency": "CNY", "target": "50000.00",
         "period": {"start": "2026-09-01", "end": "2027-06-30"}},
        headers=sc.auth(admin),
    )
    assert got.status == 201, got.body
    for amount, donor in DONATIONS:
        got = sc.donate(amount, donor)
        assert got.status == 201, got.body
        assert got.headers["Content-Type"].startswith("application/json")
        sc.donations.append(got.json)
        sc.donor_refs.append(donor)
    payload = P.disbursement(
        charity=CHARITY, project=PROJECT, currency="CNY", payee="Liangshan Fresh Foods Co.",
        purpose="Lunch ingredients, November", period=("2026-11-01", "2026-11-30"),
        lines=[("rice and vegetables", "220.00"), ("delivery", "80.00")], amount=DISBURSED,
        evidence=[(hashlib.sha256(b"invoice 2026-11-0042").hexdigest(), "invoice 2026-11-0042 (PDF)")],
    )
    # 2 of 3: the first and the third key sign.
    sigs = [P.sign(payload, signers[0]), P.sign(payload, signers[2])]
    got = live.post(f"/v1/projects/{PROJECT}/disbursements", {"payload": payload, "signatures": sigs})
    assert got.status == 201, got.body
    sc.disbursement = got.json
    return sc


# -- a donor's verification, with ledger/ only ------------------------------------------------


def entry_leaf(item: dict) -> bytes:
    """The RFC 8785 bytes of an entry hash to its leaf_hash, and its seq is the item's."""
    leaf = leaf_hash(canonical_bytes(item["entry"]))
    assert leaf.hex() == item["leaf_hash"]
    assert item["entry"]["seq"] == item["seq"]
    return leaf


def minor(text: str, currency: str) -> int:
    """A decimal amount in minor units; zero too (parse_amount takes only positive amounts)."""
    return 0 if text.strip("0.") == "" else parse_amount(text, currency)


def proof(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def verify_receipt(receipt: dict, *, pinned: Verifier, served_key: str, salt: str, donor_ref: str,
                   charity_keys: list[str], threshold: int) -> None:
    """Check everything in a receipt; raise on the first thing that does not hold."""
    # The log key: the one in the receipt is the one the server serves and the one pinned at init.
    assert receipt["log_key"] == served_key.strip() == pinned.to_string()
    cp = open_checkpoint(receipt["checkpoint"], Verifier.from_string(receipt["log_key"]))
    assert cp.size == receipt["tree_size"]
    # The gift: its bytes, its leaf, its place in the signed tree.
    leaf = entry_leaf(receipt["entry"])
    assert receipt["leaf_index"] == receipt["entry"]["seq"]
    verify_inclusion(leaf, receipt["leaf_index"], cp.size, proof(receipt["inclusion_proof"]), cp.root)
    entry = receipt["entry"]["entry"]
    assert entry["kind"] == "donation"
    body = entry["body"]
    # The donor's commitment opens with the salt given once and the donor's own reference.
    assert body["donor_commitment"] == hashlib.sha256(bytes.fromhex(salt) + donor_ref.encode()).hexdigest()
    # Amounts add up.
    cur = receipt["currency"]
    assert cur == body["currency"]
    amount, spent, refunded, unspent = (minor(receipt[k], cur) for k in ("amount", "spent", "refunded", "unspent"))
    assert amount == body["amount"]
    assert spent + refunded + unspent == amount
    assert sum(parse_amount(a["amount"], cur) for a in receipt["allocation"]) == spent
    # Every disbursement that spent it: its bytes, its proof, and the charity's signatures.
    keys = {Verifier.from_string(k).public_key: Verifier.from_string(k) for k in charity_keys}
    for a in receipt["allocation"]:
        d = a["disbursement"]
        d_leaf = entry_leaf(d)
        assert a["leaf_index"] == d["seq"] > receipt["leaf_index"]
        verify_inclusion(d_leaf, a["leaf_index"], cp.size, proof(a["inclusion_proof"]), cp.root)
        assert d["entry"]["kind"] == "disbursement"
        dbody = d["entry"]["body"]
        assert dbody["payload"]["project"] == body["project"] and dbody["payload"]["currency"] == cur
        signed = canonical_bytes(dbody["payload"])
        good = {
            Verifier.from_string(s["key"]).public_key
            for s in dbody["signatures"]
            if Verifier.from_string(s["key"]).public_key in keys
            and keys[Verifier.from_string(s["key"]).public_key].verify(signed, base64.b64decode(s["signature"]))
        }
        assert len(good) >= threshold


def _receipt_check_args(sc: Scenario, i: int) -> dict:
    return dict(
        pinned=sc.server.log_key,
        served_key=sc.server.get("/v1/log/key").text,
        salt=sc.donations[i]["salt"],
        donor_ref=sc.donor_refs[i],
        charity_keys=[s.verifier.to_string() for s in sc.signers],
        threshold=2,
    )


# -- tests -----------------------------------------------------------------------------------


def test_receipt_of_a_spent_gift_verifies_with_the_ledger_package_alone(scenario):
    sc = scenario
    d_seq = sc.disbursement["seq"]
    # The second gift: 200.00 of its 250.00 went to the disbursement (FIFO after the first).
    got = sc.server.get(f"/v1/receipts/{sc.donations[1]['entry']['leaf_hash']}")
    assert got.status == 200 and got.headers["Content-Type"].startswith("application/json")
    receipt = got.json
    assert [a["disbursement"]["seq"] for a in receipt["allocation"]] == [d_seq]
    assert (receipt["amount"], receipt["spent"], receipt["unspent"]) == ("250.00", "200.00", "50.00")
    verify_receipt(receipt, **_receipt_check_args(sc, 1))
    # The signed disbursement in the receipt is the very entry the POST appended.
    assert receipt["allocation"][0]["disbursement"] == sc.disbursement

    # The first gift is spent whole; the last is untouched.
    first = sc.server.get(f"/v1/receipts/{sc.donations[0]['entry']['leaf_hash']}").json
    assert (first["spent"], first["unspent"]) == ("100.00", "0.00")
    verify_receipt(first, **_receipt_check_args(sc, 0))
    last = sc.server.get(f"/v1/receipts/{sc.donations[3]['entry']['leaf_hash']}").json
    assert last["allocation"] == [] and last["unspent"] == "500.00"
    verify_receipt(last, **_receipt_check_args(sc, 3))


def test_the_receipt_given_at_donation_time_verifies_too(scenario):
    sc = scenario
    for i, answer in enumerate(sc.donations):
        assert answer["entry"]["entry"]["body"]["amount"] == parse_amount(DONATIONS[i][0], "CNY")
        verify_receipt({k: v for k, v in answer.items() if k != "salt"}, **_receipt_check_args(sc, i))


def test_tampering_is_caught_by_the_donors_checks(scenario):
    sc = scenario
    receipt = sc.server.get(f"/v1/receipts/{sc.donations[1]['entry']['leaf_hash']}").json
    args = _receipt_check_args(sc, 1)
    forged = json.loads(json.dumps(receipt))
    forged["entry"]["entry"]["body"]["amount"] += 100
    with pytest.raises(AssertionError):
        verify_receipt(forged, **args)
    # Even with a matching leaf_hash, a changed entry is not in the signed tree.
    forged["entry"]["leaf_hash"] = leaf_hash(canonical_bytes(forged["entry"]["entry"])).hex()
    forged["amount"] = "350.00"
    forged["unspent"] = "150.00"
    with pytest.raises(ProofError):
        verify_receipt(forged, **args)
    with pytest.raises(AssertionError):
        verify_receipt(receipt, **{**args, "donor_ref": "someone-else"})
    with pytest.raises(AssertionError):
        verify_receipt(receipt, **{**args, "pinned": Signer.generate("localhost/luodi").verifier})


def test_donation_replay_returns_the_same_receipt_and_a_changed_replay_conflicts(scenario):
    sc = scenario
    first = sc.donate("12.34", "donor-eve", key="e2e-replay-key-0001")
    assert first.status == 201, first.body
    size = int(sc.server.get("/v1/checkpoint").text.split("\n")[1])
    again = sc.donate("12.34", "donor-eve", key="e2e-replay-key-0001")
    assert again.status == 200, again.body
    assert again.json["entry"] == first.json["entry"] and again.json["salt"] == first.json["salt"]
    changed = sc.donate("99.99", "donor-eve", key="e2e-replay-key-0001")
    assert changed.status == 409 and changed.headers["Content-Type"] == "application/problem+json"
    missing = sc.server.post(f"/v1/projects/{PROJECT}/donations", {"amount": "1.00"}, headers=sc.auth(sc.intake))
    assert missing.status == 422
    no_token = sc.server.post(f"/v1/projects/{PROJECT}/donations", {}, headers={"Idempotency-Key": "e2e-abcdefgh"})
    assert no_token.status == 401 and no_token.headers["WWW-Authenticate"].startswith("Bearer")
    assert int(sc.server.get("/v1/checkpoint").text.split("\n")[1]) == size  # nothing written


def test_consistency_between_checkpoints_before_and_after_more_appends(scenario):
    sc = scenario
    key = sc.server.log_key
    before = open_checkpoint(sc.server.get("/v1/checkpoint").text, key)
    for n in range(3):
        assert sc.donate(f"{n + 1}.00", f"donor-late-{n}").status == 201
    after = open_checkpoint(sc.server.get("/v1/checkpoint").text, key)
    assert after.size == before.size + 3
    got = sc.server.get(f"/v1/proofs/consistency?first={before.size}&second={after.size}")
    assert got.status == 200, got.body
    answer = got.json
    assert (answer["first"], answer["second"]) == (before.size, after.size)
    verify_consistency(before.size, after.size, before.root, after.root, proof(answer["consistency"]))
    # A proof at a fixed size is immutable and says so.
    assert "immutable" in got.headers["Cache-Control"] and got.headers["ETag"]
    with pytest.raises(ProofError):
        verify_consistency(before.size, after.size, before.root, hashlib.sha256(b"forged").digest(),
                           proof(answer["consistency"]))
    # An inclusion proof at the old size still verifies against the old root.
    leaf = sc.donations[0]["entry"]["leaf_hash"]
    old = sc.server.get(f"/v1/proofs/inclusion?leaf_hash={leaf}&tree_size={before.size}").json
    verify_inclusion(bytes.fromhex(leaf), old["leaf_index"], before.size, proof(old["audit_path"]), before.root)


def test_export_lines_are_the_hashed_entries(scenario):
    sc = scenario
    key = sc.server.log_key
    cp_before = open_checkpoint(sc.server.get("/v1/checkpoint").text, key)
    got = sc.server.get("/v1/export")
    cp_after = open_checkpoint(sc.server.get("/v1/checkpoint").text, key)
    assert got.status == 200 and got.headers["Content-Type"].startswith("application/x-ndjson")
    assert cp_before == cp_after  # nothing was appended meanwhile
    assert got.body.endswith(b"\n")
    lines = got.body[:-1].split(b"\n")
    assert len(lines) == cp_after.size
    page = sc.server.get(f"/v1/entries?start=0&limit={len(lines)}").json
    assert page["next_start"] is None and len(page["entries"]) == len(lines)
    leaves = []
    for line, item in zip(lines, page["entries"]):
        assert canonical_bytes(json.loads(line)) == line  # each line is its canonical bytes
        leaves.append(leaf_hash(line))
        assert leaves[-1].hex() == item["leaf_hash"] and json.loads(line) == item["entry"]
    # The export alone rebuilds the signed root, and the chain links hold.
    assert root(leaves) == cp_after.root
    for prev, line in zip(leaves, lines[1:]):
        assert json.loads(line)["prev"] == prev.hex()


@pytest.mark.sqlite_only("looks for luodi.sqlite among each worker's open files")
def test_both_gunicorn_workers_serve(live):
    workers = live.worker_pids()
    assert len(workers) == 2, live.log()

    def opened_db(pid: int) -> bool:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd).endswith("luodi.sqlite"):
                    return True
            except OSError:
                continue
        return False

    # Each worker opens the database on its first request that needs it.
    with ThreadPoolExecutor(8) as pool:
        for _ in range(20):
            answers = list(pool.map(lambda _: live.get("/v1/checkpoint").status, range(64)))
            assert answers == [200] * 64
            if all(opened_db(pid) for pid in workers):
                break
    assert all(opened_db(pid) for pid in workers), workers
    assert live.worker_pids() == workers  # no worker died on the way


def test_threaded_workers_commit_concurrent_donations_and_every_receipt_verifies(tmp_path, backend):
    """--threads: a worker's concurrent donations may share a commit; each 201 is
    durable and proven against the checkpoint that covers it."""
    instance = tmp_path / "instance"
    log_key, admin, intake = init_instance(instance, backend.database())
    signers = [Signer.generate(f"{CHARITY}/finance-{i}") for i in (1, 2)]
    with LiveServer(instance, log_key, workers=1, threads=4) as server:
        sc = Scenario(server, admin, intake, signers)
        assert server.post("/v1/charities", {"charity": CHARITY, "name": "Hope Foundation", "threshold": 1,
                                             "keys": [s.verifier.to_string() for s in signers]},
                           headers=sc.auth(admin)).status == 201
        assert server.post("/v1/projects", {"project": PROJECT, "charity": CHARITY, "title": "School meals",
                                            "purpose": "Hot lunches", "currency": "CNY"},
                           headers=sc.auth(admin)).status == 201
        donors = [f"donor-{i:03d}" for i in range(32)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda d: sc.donate("12.50", d, key=f"threaded-{d}"), donors))
        assert [a.status for a in answers] == [201] * len(donors), [a.body for a in answers if a.status != 201]
        served_key = server.get("/v1/log/key").text
        for answer, donor in zip(answers, donors):
            verify_receipt(answer.json, pinned=log_key, served_key=served_key, salt=answer.json["salt"],
                           donor_ref=donor, charity_keys=[s.verifier.to_string() for s in signers], threshold=1)
        seqs = sorted(a.json["leaf_index"] for a in answers)
        assert seqs == list(range(seqs[0], seqs[0] + len(donors)))
    done = luodi("verify", "--instance", instance)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("access_log", [False, True])
def test_serve_writes_an_access_log_only_when_asked(tmp_path, access_log):
    """Off by default (a front proxy keeps one); ``--access-log`` (or LUODI_ACCESS_LOG)
    writes a line per request to standard output."""
    instance = tmp_path / "instance"
    log_key, _, _ = init_instance(instance)
    env = {"LUODI_ACCESS_LOG": "true"} if access_log else {}
    with LiveServer(instance, log_key, workers=1, env=env) as server:
        for _ in range(3):
            assert server.get("/v1/ping?access-log-probe").status == 200
        deadline = time.monotonic() + 10
        while access_log and server.log().count("access-log-probe") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the line is written just after the answer
        logged = server.log()
    assert logged.count('"GET /v1/ping?access-log-probe HTTP/1.1" 200') == (3 if access_log else 0), logged


@pytest.mark.parametrize("case", ["missing", "no-database", "open-key"])
def test_serve_refuses_an_unusable_instance_with_one_line(tmp_path, case):
    instance = tmp_path / "instance"
    if case == "no-database":
        instance.mkdir()
    elif case == "open-key":
        assert luodi("init", "--instance", instance).returncode == 0
        (instance / "log.key").chmod(0o644)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = luodi("serve", "--instance", instance, "--host", HOST, "--port", free_port(), timeout=30)
    line = one_line_error(done)
    assert {"missing": "no instance folder", "no-database": "no database", "open-key": "readable by others"}[case] in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created
    assert "serving" not in done.stdout


@pytest.mark.parametrize("loadgen", ["auto", "python"])  # auto: wrk if installed, else Python
def test_http_benchmark_runs_at_a_tiny_size(tmp_path, loadgen):
    """benchmarks/http.py end to end at 2,000 donations; no timing is asserted."""
    env = clean_env(LUODI_BENCH_OUT=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "http.py", "--entries", "2000", "--seconds", "1", "--workers", "2", "--loadgen", loadgen],
        cwd=BENCH, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# ") and "target" in done.stdout
    assert ("load from wrk" in lines[0]) == (loadgen == "auto" and shutil.which("wrk") is not None)
    for start in ("ping (GET", "donation POST", "receipt GET", "ping, sync workers", "baseline: CRUD app"):
        matching = [line for line in lines if line.startswith(start)]
        assert len(matching) == 1, done.stdout
        cells = matching[0].split(" | ")
        assert cells[2].endswith("/s") and int(cells[1].replace(",", "")) > 0
        assert cells[-2] == "0", done.stdout  # every answer was the expected 200 / 201
        assert cells[-4].endswith(" us") and cells[-3].endswith(" us"), done.stdout  # CPU per request
        if start in ("ping (GET", "donation POST", "receipt GET"):
            assert "x " in cells[3] and ">= " in cells[4], done.stdout  # against its baseline, in the same run
        assert (cells[-1] != "-") == (start == "donation POST"), done.stdout  # commits and the average group
    assert not list(tmp_path.glob("*.building*"))
