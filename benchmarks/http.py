"""HTTP rates of `luodi serve` on a 1,000,000-donation ledger, beside a trivial
JSON endpoint of the same server.

Targets: donation POSTs (each committed durably, WAL + synchronous=FULL,
before its 201) at >= 50% of the rate of ``GET /v1/ping``, and receipt GETs
(random donations: entry, inclusion proof, checkpoint, allocations) at >= 60%.

The ledger is a real charity log (genesis, a charity with 2-of-3 keys, a
project, N donations with their salts and intake keys, and one signed
disbursement that spent the earliest gifts), built once under
benchmarks/out/ and copied for each run so that every run starts from the
same N.  The server is the real thing: ``luodi serve`` (gunicorn with
api/worker.py) on 127.0.0.1, rate limits off.  Load comes from ``wrk`` when it is
installed, else from Python processes, one blocking keep-alive
``http.client`` connection each.  All phases run in one run, one after the
other, with the same load generator and concurrency; each is bounded in time
(and the Python fallback also in count).

    python benchmarks/http.py [--entries 1000000] [--seconds 10] [--workers 2]
                              [--connections 4] [--loadgen auto|wrk|python]
"""

from __future__ import annotations

import os
import sys

# This script is called http.py: keep its folder off the path while the standard
# library's http package loads, or ``import http.client`` would find this file.
_HERE = os.path.dirname(os.path.abspath(__file__))
_saved_path = list(sys.path)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]
import http.client  # noqa: E402

sys.path[:] = _saved_path

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import OUT, Timer, row, workdir  # noqa: E402

from api.instance import DB_NAME, init_instance, open_instance, upgrade_database  # noqa: E402
from ledger.charity import payload as P  # noqa: E402
from ledger.charity.money import format_amount  # noqa: E402
from ledger.charity.tokens import create_token  # noqa: E402
from ledger.log.note import Signer  # noqa: E402

HOST = "127.0.0.1"
BATCH = 10_000
CHARITY = "bench-charity"
PROJECT = "bench-project"
CHANNELS = ("wechat", "alipay", "unionpay", "bank_transfer")
LUODI = str(Path(sys.executable).parent / "luodi")
if not os.path.exists(LUODI):
    LUODI = shutil.which("luodi") or LUODI


# -- the ledger ------------------------------------------------------------------------------


def _build(path: Path, n: int) -> None:
    """A charity ledger with n donations, appended 10,000 per transaction."""
    books = init_instance(path, "bench.luodi.example/log").charity
    populate(books, n)
    books.stores.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    books.stores.close()


def populate(books, n: int) -> None:
    """A charity with 2-of-3 keys, a project, n donations (10,000 per transaction) and a
    signed disbursement, in a new log (on whichever database ``books`` is)."""
    ledger = books.ledger
    signers = [Signer.generate(f"{CHARITY}/finance-{i}") for i in (1, 2, 3)]
    books.register_charity(CHARITY, "Benchmark Charity", [s.verifier.to_string() for s in signers], 2)
    books.open_project(PROJECT, CHARITY, "Winter relief (benchmark)", "Coats and coal", "CNY")
    rng = random.Random(n)
    first_amounts = []
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        with ledger.writer() as w:
            for i in range(done, done + k):
                amount = rng.choice((1000, 2000, 5000, 9900, 10000, 20000, 50000, 100000))
                channel = CHANNELS[i % 4]
                books.record_donation_in(
                    w, PROJECT, format_amount(amount, "CNY"), channel, f"PAY-{i:010d}",
                    f"donor-{rng.getrandbits(40):012x}", "2026-11-29", f"bench-intake-{i:010d}",
                )
                if len(first_amounts) < max(1, n // 1000):
                    first_amounts.append(amount)
        done += k
    # One disbursement, signed 2-of-3, spends the earliest 0.1% of the gifts (FIFO),
    # so that some receipts carry an allocation and its proof.
    total = sum(first_amounts)
    payload = P.disbursement(
        charity=CHARITY, project=PROJECT, currency="CNY", payee="Gansu Coal Supply", purpose="Heating coal",
        period=("2026-11-01", "2026-11-30"), lines=[("coal", f"{total // 100}.{total % 100:02d}")],
    )
    books.disburse(payload, [P.sign(payload, signers[0]), P.sign(payload, signers[1])])


def cached_instance(n: int) -> Path:
    """The instance folder of an n-donation ledger under benchmarks/out/, built once."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"http-instance-{n}"
    if not (path / DB_NAME).exists():
        tmp = OUT / f"http-instance-{n}.building"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)
        with Timer() as t:
            _build(tmp, n)
        print(f"# built {path.name} in {t.seconds:.0f} s", file=sys.stderr)
        tmp.rename(path)
    upgrade_database(path)  # a ledger built by an older version gets its migrations once
    return path


# -- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("LUODI_")}
    env.update(extra)
    return env


# Today's server with gunicorn's plain sync workers (one request at a time per process, the
# model before issue 9), for the ping baseline of the worker-model target.
SYNC_SERVER = (
    "import sys; from api.server import Server; "
    "Server(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), 1, {'worker_class': 'sync'}).run()"
)


class Server:
    """A server in its own process group, on a free port, started and waited for.

    ``kind`` is ``luodi`` (``luodi serve``), ``sync`` (the same app under sync
    workers) or ``crud`` (benchmarks/crud_app.py under gunicorn, 2 gthread workers)."""

    def __init__(self, instance: Path, workers: int, threads: int, scratch: Path, kind: str = "luodi",
                 extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.kind = kind
        self.err = open(scratch / f"serve-{kind}-{self.port}.err", "wb")
        runtime = scratch / f"run-{self.port}"
        runtime.mkdir()
        env = _env(LUODI_RATELIMIT_ENABLED="false", XDG_RUNTIME_DIR=str(runtime))
        if kind != "crud":
            env.update(extra_env or {})
        if kind == "luodi":
            cmd = [LUODI, "serve", "--instance", str(instance), "--host", HOST, "--port", str(self.port),
                   "--workers", str(workers), "--threads", str(threads)]
            ready = "/v1/checkpoint"
        elif kind == "sync":
            env["LUODI_WORKERS"] = str(workers)
            cmd = [sys.executable, "-c", SYNC_SERVER, str(instance), HOST, str(self.port), str(workers)]
            ready = "/v1/checkpoint"
        else:
            env["CRUD_DB"] = str(scratch / f"crud-{self.port}.sqlite")
            shutil.copy(Path(_HERE) / "crud_app.py", runtime / "crud_app.py")
            cmd = [str(Path(sys.executable).parent / "gunicorn"), "-w", str(workers), "-k", "gthread",
                   "--threads", str(threads), "-b", f"{HOST}:{self.port}", "--chdir", str(runtime), "crud_app:create_app()"]
            ready = "/ping"
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=self.err, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
            cwd=runtime,  # not this folder, whose http.py would hide the standard library's http
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if get(self.port, ready)[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{kind} server did not start:\n{Path(self.err.name).read_text()}")

    def rss_mib(self) -> float:
        """Anonymous resident memory of the server's processes (arbiter and workers), in MiB."""
        return group_rss_kib(self.proc.pid) / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.err.close()


def _group_members(pgid: int):
    """(pid, /proc/<pid>/stat fields after the name) of every live process in a process group."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5, pgrp
            yield pid, fields


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (from /proc), in seconds."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in _group_members(pgid))  # utime, stime: fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def group_rss_kib(pgid: int) -> int:
    """The anonymous resident memory (RssAnon: heap and stacks) of a process group.  Not
    the whole RSS, which also counts the database's pages SQLite maps and drops as the
    file grows."""
    total = 0
    for pid, _ in _group_members(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("RssAnon:"))
        except (OSError, StopIteration):
            continue
    return total


def children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- load: wrk ----------------------------------------------------------------------------------

LUA_DONE = r"""
threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"seconds":%.6f,"errors":%d,"unexpected":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, bad,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""

LUA_POST = LUA_DONE + r"""
bad = 0
counter = 0
function init(args)
  run, token, path = args[1], args[2], args[3]
  pause = tonumber(args[4] or "0")  -- ms between a connection's requests (the soak's pacing)
  math.randomseed(tid * 7919 + counter)
end
function delay()
  return pause
end
function request()
  counter = counter + 1
  local key = string.format("%s-%d-%d", run, tid, counter)
  local body = string.format(
    '{"amount":"%d.%02d","channel":"wechat","payment_ref":"PAY-%s","donor_ref":"donor-%s","value_date":"2026-11-29"}',
    math.random(1, 2000), math.random(0, 99), key, key)
  return wrk.format("POST", path, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token,
                                   ["Idempotency-Key"] = key}, body)
end
function response(status, headers, body)
  if status ~= 201 then bad = bad + 1 end
end
"""

LUA_GET = LUA_DONE + r"""
bad = 0
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(tid * 104729)
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
"""

LUA_PING = LUA_DONE + r"""
bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
"""


def wrk(url: str, lua: str, scratch: Path, seconds: float, connections: int, args: list[str] = ()) -> dict:
    script = scratch / f"load-{abs(hash(lua))}.lua"
    script.write_text(lua)
    threads = min(connections, max(1, os.cpu_count() or 1))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
           "--timeout", "30s", "-s", str(script), url]
    if args:
        cmd += ["--", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(line[len("WRKJSON "):])


# -- load: Python processes -------------------------------------------------------------------


def _python_client(port, kind, arg, seconds, max_requests, seed, out):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    lat, bad, n = [], 0, 0
    stop = time.perf_counter() + seconds
    want = {"ping": 200, "get": 200, "post": 201}[kind]
    while n < max_requests:
        t0 = time.perf_counter()
        if t0 >= stop:
            break
        if kind == "post":
            key = f"{arg[0]}-{seed}-{n}"
            body = json.dumps({"amount": f"{rng.randint(1, 2000)}.{rng.randint(0, 99):02d}", "channel": "wechat",
                               "payment_ref": f"PAY-{key}", "donor_ref": f"donor-{key}", "value_date": "2026-11-29"})
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {arg[1]}", "Idempotency-Key": key}
            method, path = "POST", arg[2]
        else:
            body, headers, method = None, {}, "GET"
            path = "/v1/ping" if kind == "ping" else rng.choice(arg)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            conn.close()
            status = 0
        lat.append(time.perf_counter() - t0)
        bad += status != want
        n += 1
    conn.close()
    out.put((n, bad, lat))


def python_load(port: int, kind: str, arg, seconds: float, connections: int, max_requests: int) -> dict:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    per = max(1, max_requests // connections)
    procs = [ctx.Process(target=_python_client, args=(port, kind, arg, seconds, per, seed, out))
             for seed in range(connections)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    lat = sorted(x for _, _, ls in results for x in ls)
    n = sum(r[0] for r in results)
    return {
        "requests": n,
        "seconds": elapsed,
        "errors": 0,
        "unexpected": sum(r[1] for r in results),
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else 0.0,
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0,
    }


# -- the run ------------------------------------------------------------------------------------

NAMES = {
    "ping": "ping (GET /v1/ping)",
    "post": "donation POST (durable 201)",
    "get": "receipt GET (random gift)",
    "sync-ping": "ping, sync workers (before)",
    "crud-post": "baseline: CRUD app POST",
}
# phase: (its baseline, the target ratio to it)
TARGETS = {"post": ("crud-post", 1.2), "get": ("ping", 0.6), "ping": ("sync-ping", 0.9)}
P99_MAX_MS = 100.0  # the single POST's p99 bound


def commits_and_size(db: Path) -> tuple[int, int]:
    """Checkpoints (one per commit) and entries in the log, read beside the running server."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cps = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        size = conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM entries").fetchone()[0]
        return cps, size
    finally:
        conn.close()


class Bench:
    def __init__(self, args, scratch: Path, token: str, paths_file: Path, receipts: list[str], db: Path):
        self.args, self.scratch, self.token, self.db = args, scratch, token, db
        self.paths_file, self.receipts = paths_file, receipts
        self.connections = args.connections
        self.run_id = f"bench-{int(time.time()) & 0xFFFFFF:06x}"
        self.warm = min(2.0, max(1.0, args.seconds / 5))
        self.results: dict[str, dict] = {}

    def load(self, server: Server, kind: str, seconds: float, label: str, pause_ms: float = 0) -> dict:
        run = f"{self.run_id}-{server.kind}-{label}"  # every POST carries a new Idempotency-Key
        post_path = f"/v1/projects/{PROJECT}/donations" if server.kind != "crud" else f"/projects/{PROJECT}/donations"
        if self.args.loadgen == "wrk":
            lua, extra = {"ping": (LUA_PING, []), "post": (LUA_POST, [run, self.token, post_path, f"{pause_ms:.3f}"]),
                          "get": (LUA_GET, [str(self.paths_file)])}[kind]
            path = {"ping": "/v1/ping" if server.kind != "crud" else "/ping"}.get(kind, "/")
            return wrk(server.url + path, lua, self.scratch, seconds, self.connections, extra)
        if pause_ms:
            raise SystemExit("the soak needs wrk")
        arg = {"ping": None, "post": (run, self.token, post_path), "get": self.receipts}[kind]
        return python_load(server.port, kind, arg, seconds, self.connections, self.args.max_requests)

    def phase(self, server: Server, kind: str, name: str) -> None:
        self.load(server, kind, self.warm, "w" + name)  # warm up: first requests open the database
        server0, load0 = group_cpu_seconds(server.proc.pid), children_cpu_seconds()
        before = commits_and_size(self.db) if server.kind == "luodi" else None
        result = self.load(server, kind, self.args.seconds, name)
        result["server_cpu"] = group_cpu_seconds(server.proc.pid) - server0
        result["load_cpu"] = children_cpu_seconds() - load0
        if before is not None:
            after = commits_and_size(self.db)
            result["commits"], result["appended"] = after[0] - before[0], after[1] - before[1]
        self.results[name] = result

    def soak(self, server: Server, seconds: float, rate: float, window: float = 30.0) -> list[dict]:
        """POSTs at ``rate`` for ``seconds``, in windows: each window's rate, latency,
        errors and the server's memory after it."""
        cycle = 1000 * self.connections / rate  # ms between one connection's requests at that rate
        pause = max(0.0, cycle - self.results["post"]["p50_ms"])  # less the time a request takes
        windows, done = [], 0.0
        while done < seconds:
            length = min(window, seconds - done)
            cpu0 = group_cpu_seconds(server.proc.pid)
            if windows:  # wrk closes its loop: pace the next window by what the last one took
                last = windows[-1]
                took = 1000 * self.connections * last["seconds"] / max(1, last["requests"]) - pause
                pause = max(0.0, (pause + cycle - took) / 2)  # halfway: the wait moves with the load
            r = self.load(server, "post", length, f"soak{len(windows)}", pause_ms=pause)
            r["server_cpu"] = group_cpu_seconds(server.proc.pid) - cpu0
            r["rss_mib"] = server.rss_mib()
            windows.append(r)
            done += length
        return windows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000, help="donations in the ledger (default 1000000)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (every server)")
    ap.add_argument("--threads", type=int, default=8, help="threads per worker (luodi serve's and the CRUD app's)")
    ap.add_argument("--connections", type=int, default=64, help="concurrent connections (default 64)")
    ap.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--max-requests", type=int, default=200_000, help="cap per phase for the Python load generator")
    ap.add_argument("--receipts", type=int, default=10_000, help="random donations whose receipts are asked")
    ap.add_argument("--phases", default="ping,post,get,sync-ping,crud-post",
                    help="which phases, comma-separated (default all): " + ", ".join(NAMES))
    ap.add_argument("--soak", type=float, default=0.0, help="then POST for this many seconds at --soak-load of the peak")
    ap.add_argument("--soak-load", type=float, default=0.8, help="the soak's rate as a fraction of the POST peak")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment of Luodi's servers, e.g. LUODI_GROUP_WAIT_MS=0 (repeatable)")
    args = ap.parse_args()
    if args.loadgen == "auto":
        args.loadgen = "wrk" if shutil.which("wrk") else "python"
    elif args.loadgen == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed")
    phases = [p for p in args.phases.split(",") if p]
    if unknown := set(phases) - set(NAMES):
        raise SystemExit(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.soak and "post" not in phases:
        raise SystemExit("the soak runs at a fraction of the POST phase's rate: include the post phase")

    extra_env = dict(kv.split("=", 1) for kv in args.server_env)
    source = cached_instance(args.entries)
    with workdir() as scratch:
        instance = scratch / "instance"
        shutil.copytree(source, instance)  # every run starts from the same ledger
        books = open_instance(instance, with_key=False)
        ledger = books.ledger
        token = create_token(books.stores.tokens, "intake")
        lo, hi = books.stores.db.conn.execute("SELECT min(seq), max(seq) FROM donations").fetchone()
        rng = random.Random(args.entries)
        seqs = [rng.randint(lo, hi) for _ in range(args.receipts)]
        receipts = [f"/v1/receipts/{ledger.entry(q).receipt}" for q in seqs]
        size_before = ledger.size()
        books.stores.close()
        paths_file = scratch / "receipts.txt"
        paths_file.write_text("\n".join(receipts) + "\n")
        bench = Bench(args, scratch, token, paths_file, receipts, instance / DB_NAME)
        soak: list[dict] = []
        log_size = size_before
        for kind, mine in (("luodi", ("ping", "post", "get")), ("sync", ("sync-ping",)), ("crud", ("crud-post",))):
            todo = [p for p in mine if p in phases]
            if not todo and not (kind == "luodi" and args.soak):
                continue
            server = Server(instance, args.workers, args.threads, scratch, kind, extra_env)
            try:
                for name in todo:
                    bench.phase(server, name.split("-")[-1], name)
                if kind == "luodi":
                    log_size = commits_and_size(bench.db)[1]
            finally:
                server.stop()
        if args.soak:
            server = Server(instance, args.workers, args.threads, scratch, "luodi", extra_env)
            try:
                soak = bench.soak(server, args.soak, args.soak_load * bench.results["post"]["requests"]
                                  / bench.results["post"]["seconds"])
            finally:
                server.stop()
    report(args, bench.results, soak, size_before, log_size)


def report(args, results: dict, soak: list[dict], size_before: int, log_size: int) -> None:
    rates = {k: r["requests"] / r["seconds"] for k, r in results.items()}
    gen = f"wrk, {min(args.connections, os.cpu_count() or 1)} threads" if args.loadgen == "wrk" else "Python processes"
    print(f"# HTTP at {args.entries:,} donations ({size_before:,} entries): luodi serve, gunicorn {args.workers} "
          f"workers x {args.threads} threads (api/worker.py) on {HOST}; load from {gen}, {args.connections} "
          f"connections; {args.seconds:g} s per phase after a warm-up; {os.cpu_count()} cores shared by server "
          "and load")
    print("# targets: POST >= 1.2x the CRUD app (1.5x excellent) with p99 <= 100 ms; receipt GET >= 0.6x ping; "
          "ping >= 0.9x the sync workers' ping")
    row("phase", "requests", "rate", "vs baseline", "target", "p50", "p99", "server CPU/req", "load CPU/req",
        "non-2xx/errors", "commits (avg group)")
    for name, r in results.items():
        rate = rates[name]
        base, want = TARGETS.get(name, (None, None))
        if base in rates and rates[base]:
            ratio = rate / rates[base]
            met = ratio >= want and (name != "post" or r["p99_ms"] <= P99_MAX_MS)
            vs, target = f"{ratio:.2f}x {base}", f">= {want:g}x ({'met' if met else 'NOT met'})"
        else:
            vs = target = "-"
        commits = f"{r['commits']:,} ({r['appended'] / r['commits']:.1f})" if r.get("commits") else "-"
        row(NAMES[name], f"{r['requests']:,}", f"{rate:,.0f}/s", vs, target, f"{r['p50_ms']:.2f} ms",
            f"{r['p99_ms']:.2f} ms", f"{1e6 * r['server_cpu'] / max(1, r['requests']):.0f} us",
            f"{1e6 * r['load_cpu'] / max(1, r['requests']):.0f} us", f"{r['errors'] + r['unexpected']:,}", commits)
    if soak:
        total = sum(w["requests"] for w in soak)
        bad = sum(w["errors"] + w["unexpected"] for w in soak)
        print(f"# soak: {sum(w['seconds'] for w in soak):.0f} s of POSTs at {args.soak_load:.0%} of the peak "
              f"({args.soak_load * rates['post']:,.0f}/s asked): {total:,} requests, {bad:,} errors")
        row("window", "rate", "p50", "p99", "server CPU/req", "server RssAnon", "errors")
        for n, w in enumerate(soak):
            row(str(n + 1), f"{w['requests'] / w['seconds']:,.0f}/s", f"{w['p50_ms']:.2f} ms",
                f"{w['p99_ms']:.2f} ms", f"{1e6 * w['server_cpu'] / max(1, w['requests']):.0f} us",
                f"{w['rss_mib']:.0f} MiB", f"{w['errors'] + w['unexpected']:,}")
    print(f"# the log grew by {log_size - size_before:,} entries in the timed server's phases (warm-ups included)")


if __name__ == "__main__":
    main()
