"""benchmarks/postgres.py's HTTP part: donation POSTs with one ``luodi serve`` against
two on one PostgreSQL database, and SQLite's one server beside them for reference.

Each configuration gets a fresh copy of the cached instance's database
(``CREATE DATABASE … TEMPLATE``) and each server its own instance folder (the
same log.key, a database.url naming that copy), as servers on two machines
would have.  Load comes from two wrk processes at once, each with half the
connections (for one server, both at it; for two, one at each), so that the
load generator is the same in every row.  The CPU per request adds the servers'
processes (from /proc, by process group), the copy's PostgreSQL backends (by
``pg_stat_activity.datname``) and, in its own column, PostgreSQL's shared
processes (WAL writer, checkpointer, background writer), which on this
machine's shared cluster also serve whatever else runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import OUT, Timer, pg_admin, pg_create, pg_drop, pg_exists, row, schema_tag, workdir

from api.instance import DB_NAME, KEY_NAME, open_instance
from ledger.charity.tokens import create_token

_spec = importlib.util.spec_from_file_location("bench_http", Path(__file__).resolve().parent / "http.py")
bench_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_http)

URL_NAME = "database.url"
SHARED = ("walwriter", "checkpointer", "background writer")


def write_url(folder: Path, url: str) -> None:
    fd = os.open(folder / URL_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(url + "\n")


def cached_pg_instance(server: str, prefix: str, n: int) -> tuple[str, Path]:
    """(database name, instance folder) of an n-donation instance on PostgreSQL, built
    once by ``luodi init --database`` and benchmarks/http.py's ``populate`` (named
    with :func:`_common.schema_tag`, as the cached ledger is)."""
    name = f"{prefix}_http_{n}_{schema_tag()}"
    folder = OUT / f"{name}-instance"
    if not ((folder / "built").exists() and pg_exists(server, name)):
        shutil.rmtree(folder, ignore_errors=True)
        OUT.mkdir(exist_ok=True)
        url = pg_create(server, name)
        subprocess.run([bench_http.LUODI, "init", "--instance", str(folder), "--database", url,
                        "--origin", "bench.luodi.example/log"], check=True, env=bench_http._env(),
                       stdout=subprocess.DEVNULL)
        books = open_instance(folder)
        with Timer() as t:
            bench_http.populate(books, n)
        books.stores.close()
        (folder / "built").write_text("")
        print(f"# built {name} ({n:,} donations) in {t.seconds:.0f} s", file=sys.stderr)
    return name, folder


def pg_cpu(url: str) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds so far of the database's backends, and of the cluster's shared processes, by pid."""
    with pg_admin(url) as conn:
        rows = conn.execute("SELECT pid, datname = current_database(), backend_type FROM pg_stat_activity "
                            "WHERE (datname = current_database() OR backend_type = ANY(%s)) AND pid <> pg_backend_pid()",
                            (list(SHARED),)).fetchall()
    ours, shared = {}, {}
    for pid, mine, _ in rows:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        (ours if mine else shared)[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return ours, shared


def grown(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def pg_commits(url: str) -> tuple[int, int]:
    with pg_admin(url) as conn:
        return (conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0],
                conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM entries").fetchone()[0])


def load(servers: list, scratch: Path, args, token: str, label: str, seconds: float) -> dict:
    """Two wrk processes at once, half the connections each: the requests summed, the worse p99."""
    path = f"/v1/projects/{bench_http.PROJECT}/donations"
    half = max(1, args.connections // 2)

    def one(k: int) -> dict:
        where = scratch / f"wrk-{label}-{k}"
        where.mkdir()
        s = servers[k % len(servers)]
        run = f"{label}-{k}-{int(time.time() * 1000) & 0xFFFFFFF:x}"  # every POST a new Idempotency-Key
        lua = bench_http.LUA_POST
        return bench_http.wrk(s.url + "/", lua, where, seconds, half, [run, token, path, "0"])

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(one, (0, 1))
    return {"requests": a["requests"] + b["requests"], "seconds": max(a["seconds"], b["seconds"]),
            "bad": a["errors"] + a["unexpected"] + b["errors"] + b["unexpected"], "p99_ms": max(a["p99_ms"], b["p99_ms"]),
            "p50_ms": (a["p50_ms"] + b["p50_ms"]) / 2}


def phase(servers: list, scratch: Path, args, token: str, label: str, url: str | None, db: Path | None) -> dict:
    load(servers, scratch, args, token, "w" + label, min(2.0, max(1.0, args.seconds / 5)))
    count = (lambda: pg_commits(url)) if url else (lambda: bench_http.commits_and_size(db))
    cpu0 = [bench_http.group_cpu_seconds(s.proc.pid) for s in servers]
    pg0 = pg_cpu(url) if url else ({}, {})
    c0 = count()
    r = load(servers, scratch, args, token, label, args.seconds)
    c1 = count()
    pg1 = pg_cpu(url) if url else ({}, {})
    r["server_cpu"] = sum(bench_http.group_cpu_seconds(s.proc.pid) - c for s, c in zip(servers, cpu0, strict=True))
    r["pg_cpu"], r["shared_cpu"] = grown(pg0[0], pg1[0]), grown(pg0[1], pg1[1])
    r["commits"], r["appended"] = c1[0] - c0[0], c1[1] - c0[1]
    return r


def http_part(args) -> None:
    n = args.http_entries
    template, source = cached_pg_instance(args.server, args.prefix, n)
    sqlite_source = bench_http.cached_instance(n)
    results = []
    with workdir() as scratch:
        # SQLite's one server, for reference
        instance = scratch / "sqlite"
        shutil.copytree(sqlite_source, instance)
        books = open_instance(instance, with_key=False)
        token = create_token(books.stores.tokens, "intake")
        books.stores.close()
        server = bench_http.Server(instance, 2, args.threads, scratch)
        try:
            results.append(("SQLite, 1 server x 2 workers", phase([server], scratch, args, token, "sqlite", None,
                                                                  instance / DB_NAME)))
        finally:
            server.stop()
        for label, count, workers in (("1 server x 2 workers", 1, 2), ("2 servers x 2 workers", 2, 2),
                                      ("2 servers x 1 worker", 2, 1)):
            run_name = f"{args.prefix}_http_run"
            url = pg_create(args.server, run_name, template=template)
            folders = []
            for k in range(count):
                folder = scratch / f"pg-{label[0]}-{workers}-{k}"
                folder.mkdir(mode=0o700)
                shutil.copy2(source / KEY_NAME, folder / KEY_NAME)
                write_url(folder, url)
                folders.append(folder)
            books = open_instance(folders[0], with_key=False)
            token = create_token(books.stores.tokens, "intake")
            books.stores.close()
            servers = []
            try:
                for folder in folders:
                    servers.append(bench_http.Server(folder, workers, args.threads, scratch))
                results.append((f"PostgreSQL, {label}", phase(servers, scratch, args, token, f"pg{count}{workers}",
                                                              url, None)))
            finally:
                for s in servers:
                    s.stop()
                pg_drop(args.server, run_name)
    print(f"\n# donation POSTs (durable 201) at {n:,} donations: luodi serve, {args.threads} threads per worker, on "
          f"127.0.0.1; two wrk processes at once, {args.connections} connections in all; {args.seconds:g} s after a "
          f"warm-up; {os.cpu_count()} cores shared by servers, PostgreSQL and load")
    print("# no target: what a second server gives when servers and the database share the cores")
    row("| POSTs", "requests", "rate", "vs 1 server", "p50", "p99", "server CPU/req", "PG backends CPU/req",
        "PG shared CPU/req", "CPU/req in all", "commits (avg group)", "non-201/errors |")
    row("|---", "---", "---", "---", "---", "---", "---", "---", "---", "---", "---", "--- |")
    base = next((r["requests"] / r["seconds"] for name, r in results if name.startswith("PostgreSQL, 1 server")), None)
    for name, r in results:
        rate = r["requests"] / r["seconds"]
        per = lambda cpu: 1e6 * cpu / max(1, r["requests"])  # noqa: E731
        vs = f"{rate / base:.2f}x" if base and name.startswith("PostgreSQL") else "-"
        groups = f"{r['commits']:,} ({r['appended'] / r['commits']:.1f})" if r["commits"] else "-"
        row(f"| {name}", f"{r['requests']:,}", f"{rate:,.0f}/s", vs, f"{r['p50_ms']:.1f} ms", f"{r['p99_ms']:.1f} ms",
            f"{per(r['server_cpu']):,.0f} us", f"{per(r['pg_cpu']):,.0f} us", f"{per(r['shared_cpu']):,.0f} us",
            f"{per(r['server_cpu'] + r['pg_cpu'] + r['shared_cpu']):,.0f} us", groups, f"{r['bad']:,} |")
