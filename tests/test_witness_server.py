"""``luodi witness serve`` over real HTTP: a gunicorn process tree with two workers on
127.0.0.1, its key made by ``luodi witness keygen``.

Every status code of C2SP tlog-witness's add-checkpoint with its body and
content type; the monitoring endpoint; requests racing with one old size
across both workers (exactly one wins); a split view shown to the witness and
still refused after a ``kill -9`` and a restart; a witness killed mid-stream
that comes back with every checkpoint it acknowledged; and the CLI's refusals.

:class:`WitnessProcess` is the helper other tests can start a witness with
(``tests/test_witness_server.py`` is imported the way test_e2e_gunicorn is).
"""

from __future__ import annotations

from http.client import HTTPException

import os
import signal
import stat
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_e2e_gunicorn import HOST, LUODI, START_TIMEOUT, clean_env, free_port, http
from storage_faults import held_lock
from witness_helpers import ToyLog, bad_signature

from api.cli import main
from ledger.log.add_checkpoint import SIZE_CONTENT_TYPE, format_add_checkpoint
from ledger.log.checkpoint import Checkpoint, open_checkpoint
from ledger.log.cosignature import Cosigner, CosignatureVerifier, verify_cosignatures
from ledger.log.keyfile import write_key_file
from ledger.log.note import Signer, sign_note
from ledger.log.witness import origin_hash

TEXT = "text/plain; charset=utf-8"
PROBLEM = "application/problem+json"


class WitnessProcess:
    """``luodi witness serve`` on a free loopback port; ``kill9`` (``stop``) ends its whole
    process tree at once, as a power cut would, and ``start`` brings it back on the same file."""

    def __init__(self, key: Path, logs: list[Signer], db: Path, workers: int = 2, threads: int = 4, lock_timeout=5.0):
        self.key, self.logs, self.db = key, logs, db
        self.workers, self.threads, self.lock_timeout = workers, threads, lock_timeout
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._runtime = tempfile.mkdtemp(prefix="luodi-witness-")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> "WitnessProcess":
        for _ in range(3):  # a free port may be taken before gunicorn binds it
            self.port = free_port()
            out = open(Path(self._runtime) / f"serve-{self.port}.log", "wb")
            logs = [arg for s in self.logs for arg in ("--log", s.verifier.to_string())]
            self.proc = subprocess.Popen(
                [LUODI, "witness", "serve", "--key", str(self.key), *logs, "--db", str(self.db), "--host", HOST,
                 "--port", str(self.port), "--workers", str(self.workers), "--threads", str(self.threads),
                 "--lock-timeout", str(self.lock_timeout)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=clean_env(XDG_RUNTIME_DIR=self._runtime), start_new_session=True,
            )
            out.close()
            if self._ready():
                return self
            self.stop()
        raise AssertionError(f"luodi witness serve did not come up:\n{self.log()}")

    def _ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                got = http("GET", f"{self.url}/{'0' * 64}/checkpoint", timeout=2)
            except OSError:
                time.sleep(0.1)
                continue
            if got.status == 404 and got.headers.get("Content-Type") == PROBLEM and "never cosigned" in got.text:
                return True
            time.sleep(0.1)  # someone else's server on this port: ours will fail to bind and exit
        return False

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(Path(self._runtime).glob("*.log")))

    def add(self, body: bytes, timeout: float = 30):
        return http("POST", self.url + "/add-checkpoint", body, timeout=timeout)

    def checkpoint(self, origin: str):
        return http("GET", f"{self.url}/{origin_hash(origin)}/checkpoint")

    def kill9(self) -> None:
        """SIGKILL to the session it was started in, master and workers at once.  It is
        also how the tests stop it: a witness must lose nothing it answered to that
        (test_split_view_refused_and_state_kept_through_kill_9), and it is quick."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)

    stop = kill9


def keygen(folder: Path, name: str = "witness.example/w1") -> tuple[Path, CosignatureVerifier]:
    """``luodi witness keygen`` (in process): the key file and the verifier key it printed."""
    key = folder / "witness.key"
    done = CliRunner().invoke(main, ["witness", "keygen", "--name", name, "--out", str(key)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return key, CosignatureVerifier.from_string(done.stdout.strip())


LOG = Signer.generate("log.example/statuses")
FRESH = Signer.generate("log.example/fresh")  # followed, never cosigned
RACE = Signer.generate("log.example/race")
BUSY = Signer.generate("log.example/busy")
A = ToyLog(LOG)
FORK = ToyLog(LOG, fork=b" fork", common=4)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("witness")
    key, vkey = keygen(folder)
    server = WitnessProcess(key, [LOG, FRESH, RACE, BUSY], folder / "witness.sqlite", lock_timeout=1).start()
    try:
        first = server.add(A.body(0, 8))
        assert first.status == 200, first.text
        server.vkey, server.first = vkey, first
        yield server
    finally:
        server.stop()


def test_keygen_writes_a_private_key_and_prints_its_0x04_verifier_key(served):
    assert stat.S_IMODE(served.key.stat().st_mode) == 0o600
    assert Cosigner.from_string(served.key.read_text()).verifier == served.vkey
    assert served.vkey.to_string().split("+")[2].startswith("B")  # base64 of 0x04 || key


def test_200_is_the_cosignature_line_as_text(served):
    got = served.first
    assert got.headers["Content-Type"] == TEXT
    assert got.text.startswith("\u2014 witness.example/w1 ") and got.text.count("\n") == 1
    assert served.vkey in verify_cosignatures(A.checkpoint(8) + got.text, [served.vkey])


def _note_size_zero(root: bytes) -> str:
    return sign_note(Checkpoint(FRESH.name, 0, root).text(), FRESH)


REFUSED = {  # after the witness cosigned A at 8: request -> status
    "malformed": (b"old 8\nnot base64\n\n" + A.checkpoint(12).encode(), 400),
    "old size above the size": (A.body(8, 8, proof=[]).replace(b"old 8", b"old 12"), 400),
    "unknown origin": (ToyLog(Signer.generate("log.example/unknown")).body(0, 4), 404),
    "no trusted signature": (A.body(8, 12, note=A.checkpoint(12, Signer.generate(LOG.name))), 403),
    "a trusted key's bad signature": (A.body(8, 12, note=bad_signature(A.checkpoint(12))), 403),
    "stale old size": (A.body(4, 12), 409),
    "bad proof": (A.body(8, 12, proof=[bytes(32)]), 422),
    "proof with old size 0": (format_add_checkpoint(0, [bytes(32)], ToyLog(FRESH).checkpoint(4)), 422),
    "size 0 with another root": (format_add_checkpoint(0, [], _note_size_zero(bytes(32))), 422),
    "same size, other root": (FORK.body(8, 8, proof=[]), 422),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_refusal_over_http(case, served):
    body, status = REFUSED[case]
    got = served.add(body)
    assert got.status == status, got.text
    if status == 409:  # tlog-witness: the size it holds, a newline, as text/x.tlog.size
        assert got.headers["Content-Type"] == SIZE_CONTENT_TYPE and got.body == b"8\n"
    else:  # the spec names only the status: problem+json, like the rest of Luodi's API
        assert got.headers["Content-Type"] == PROBLEM
        assert got.json["status"] == status and got.json["instance"] == "/add-checkpoint"
    assert served.checkpoint(LOG.name).text == A.checkpoint(8) + served.first.text


def test_http_refusals_of_the_edge(served):
    too_big = served.add(b"old 0\n\n" + b"x" * (64 * 1024))
    assert too_big.status == 413 and too_big.headers["Content-Type"] == PROBLEM
    wrong_method = http("GET", served.url + "/add-checkpoint")
    assert wrong_method.status == 405 and "POST" in wrong_method.headers["Allow"]


def test_a_write_lock_held_by_another_process_is_a_503_and_reads_go_on(served):
    """Another process holds SQLite's write lock on the witness's file: an add-checkpoint
    waits --lock-timeout (1 s here), then is refused with 503 and Retry-After, having
    written nothing; the monitoring endpoint still answers (WAL readers do not wait);
    once the lock is let go, the same request is cosigned."""
    body = ToyLog(BUSY).body(0, 2)
    with held_lock("exclusive", served.db):
        busy = served.add(body)
        assert busy.status == 503 and busy.headers["Content-Type"] == PROBLEM, busy.text
        assert busy.headers["Retry-After"] == "1"
        assert served.checkpoint(LOG.name).status == 200
    assert served.checkpoint(BUSY.name).status == 404
    assert served.add(body).status == 200


def test_the_monitoring_endpoint_serves_what_was_cosigned(served):
    got = served.checkpoint(LOG.name)
    assert got.status == 200 and got.headers["Content-Type"] == TEXT
    assert open_checkpoint(got.text, LOG.verifier).size == 8
    assert list(verify_cosignatures(got.text, [served.vkey])) == [served.vkey]
    for path in (f"/{origin_hash(FRESH.name)}/checkpoint", f"/{origin_hash(LOG.name).upper()}/checkpoint"):
        never = http("GET", served.url + path)
        assert never.status == 404 and never.headers["Content-Type"] == PROBLEM, path


def test_racing_requests_with_one_old_size_one_wins_the_others_get_409(served):
    """12 requests at a time, each from the size the witness holds to a different new
    size, across both workers: exactly one is cosigned and the rest are told its size;
    over four rounds the witness only moves forward."""
    log, held, seen = ToyLog(RACE, size=64), 0, []
    assert served.add(log.body(0, 1)).status == 200
    held = 1
    with ThreadPoolExecutor(12) as pool:
        for _ in range(4):
            targets = list(range(held + 1, held + 13))
            bodies = [log.body(held, n) for n in targets]
            start = threading.Barrier(len(bodies))

            def send(body):
                start.wait()
                return served.add(body)

            answers = list(pool.map(send, bodies))
            won = [n for n, a in zip(targets, answers) if a.status == 200]
            assert len(won) == 1, [(a.status, a.body) for a in answers]
            assert sorted(a.status for a in answers) == [200] + [409] * 11
            assert {a.body for a in answers if a.status == 409} == {f"{won[0]}\n".encode()}
            latest = served.checkpoint(RACE.name)
            assert open_checkpoint(latest.text, RACE.verifier).size == won[0]
            seen.append(won[0])
            held = won[0]
    assert seen == sorted(seen) and len(set(seen)) == 4


def test_split_view_refused_and_state_kept_through_kill_9(tmp_path, served):
    """Fork A is cosigned at 8, fork B (the same key, another history after 4 leaves) is
    refused; the witness is killed with SIGKILL while a client streams checkpoints one
    leaf at a time; it comes back on its file holding the last one it acknowledged (or
    the one in flight, persisted before its answer was lost), serving it unchanged, and
    fork B is still refused."""
    server = WitnessProcess(served.key, [LOG], tmp_path / "witness.sqlite").start()
    try:
        assert server.add(A.body(0, 8)).status == 200
        assert server.add(FORK.body(8, 8, proof=[])).status == 422
        assert server.add(FORK.body(8, 12)).status == 422
        acked, stop = [8], threading.Event()

        def stream():
            while not stop.is_set() and acked[-1] < 60:
                try:
                    got = server.add(A.body(acked[-1], acked[-1] + 1), timeout=5)
                except (OSError, HTTPException):  # refused, reset, or cut off mid-answer by the kill
                    return
                if got.status != 200:
                    return
                acked.append(acked[-1] + 1)

        client = threading.Thread(target=stream)
        client.start()
        while len(acked) < 12 and client.is_alive():
            time.sleep(0.01)
        server.kill9()
        stop.set()
        client.join()
        assert len(acked) >= 12
        before = acked[-1]
        server.start()
        kept = server.checkpoint(LOG.name)
        size = open_checkpoint(kept.text, LOG.verifier).size
        assert size in (before, before + 1), (size, before)
        assert server.add(A.body(size, size, proof=[])).status == 200  # the same tree, cosigned anew
        assert server.add(A.body(0, size)).body == f"{size}\n".encode()
        for body in (FORK.body(8, 8, proof=[]), FORK.body(size, size, proof=[]), FORK.body(0, 12), FORK.body(size, 40)):
            assert server.add(body).status in (409, 422)
        assert server.add(A.body(size, 64)).status == 200
        assert open_checkpoint(server.checkpoint(LOG.name).text, LOG.verifier).size == 64
    finally:
        server.stop()
    shown = _run("show", "--db", tmp_path / "witness.sqlite", "--key", served.key)
    assert f"witness {served.vkey.to_string()}" in shown.stdout
    assert f"{LOG.name}: size 64" in shown.stdout and "refused log.example/statuses size 8 (old 8, held 8)" in shown.stdout


# -- the CLI's refusals: one line, exit 2, nothing served (in process: none gets as far as gunicorn) --------------------------------------------

def _run(*args):
    """A ``luodi witness`` command run in process (click's runner) that must succeed."""
    result = CliRunner().invoke(main, ["witness", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("witness-keys")
    key, vkey = keygen(folder, "witness.example/w2")
    loose = folder / "loose.key"
    loose.write_text(key.read_text())
    os.chmod(loose, 0o644)
    junk = folder / "junk.key"
    junk.write_text("PRIVATE+KEY+nonsense\n")
    os.chmod(junk, 0o600)
    log_key = folder / "log.key"
    write_key_file(log_key, LOG)  # a log's (0x01) key is not a witness key
    return folder, key, vkey, loose, junk, log_key


def _refused(*args) -> str:
    """A ``luodi witness`` command run in process (click's runner) that must refuse: one
    ``Error: ...`` line on stderr, nothing on stdout, exit 2."""
    result = CliRunner().invoke(main, ["witness", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def _serve(key, *logs, db=None) -> str:
    extra = ["--db", db] if db else []
    return _refused("serve", "--key", key, *[a for v in logs for a in ("--log", v)], *extra, "--port", free_port())


def test_cli_refusals(keys, tmp_path):
    folder, key, vkey, loose, junk, log_key = keys
    log = LOG.verifier.to_string()
    assert "already exists" in _refused("keygen", "--name", "w.example/x", "--out", key)
    assert "name" in _refused("keygen", "--name", "has space", "--out", tmp_path / "new.key")
    assert not (tmp_path / "new.key").exists()
    assert "no witness key" in _serve(folder / "missing.key", log)
    assert "readable by others" in _serve(loose, log)
    assert "valid signer key" in _serve(junk, log)
    assert "0x04" in _serve(log_key, log)  # a log's (0x01) key is not a witness key
    assert "--log" in _serve(key, "log.example/x+00000000+AAAA")
    assert "--log" in _serve(key, vkey.to_string())  # a witness's key is not a log's
    assert "no witness database" in _refused("show", "--db", tmp_path / "none.sqlite")
    db = tmp_path / "loose.sqlite"
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    assert "others may read" in _serve(key, log, db=db)
    assert not any(tmp_path.glob("loose.sqlite-*"))


def test_show_prints_the_key_and_each_log(served):
    shown = _run("show", "--db", served.db)
    assert f"{LOG.name}: size 8" in shown.stdout and f"/{origin_hash(LOG.name)}/checkpoint" in shown.stdout
