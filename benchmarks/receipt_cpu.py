"""CPU time of a receipt GET against a ping, in the app itself: no server, no load generator.

The HTTP benchmark (http.py) measures rates on a machine shared by the server
and its load, which are noisy; this one calls the Flask app's WSGI entry point
in one process, on the same ledger http.py builds, and times each request's
CPU, a ping and a receipt of a random gift (from a pool of --receipts, like
http.py) one after the other, so that both see the same machine.  The
server's own cost per request (HTTP parsing, the worker) comes on top of both.

Target (issue 12): receipt GETs at >= 60% of the ping rate, that is a receipt
costing at most 1/0.6 = 1.67 pings of CPU (here without the server's share,
which is the same for both, so this ratio is the harder one).

    python benchmarks/receipt_cpu.py [--entries 100000] [--requests 3000] [--receipts 10000]
"""

from __future__ import annotations

import os
import sys

# The folder holds http.py: keep it off the path while the standard library's
# http package loads (as http.py itself does).
_HERE = os.path.dirname(os.path.abspath(__file__))
_saved_path = list(sys.path)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]
import http.client  # noqa: E402,F401
import http.server  # noqa: E402,F401

sys.path[:] = _saved_path

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import row, workdir  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from api import create_app  # noqa: E402
from api.instance import open_instance  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_http", Path(__file__).with_name("http.py"))
bench_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_http)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=3000, help="pings and receipt GETs timed, each")
    ap.add_argument("--receipts", type=int, default=10_000, help="random gifts whose receipts are asked")
    args = ap.parse_args()
    source = bench_http.cached_instance(args.entries)
    with workdir() as scratch:
        instance = scratch / "instance"
        shutil.copytree(source, instance)
        books = open_instance(instance, with_key=False)
        lo, hi = books.stores.db.conn.execute("SELECT min(seq), max(seq) FROM donations").fetchone()
        rng = random.Random(args.entries)
        pool = [f"/v1/receipts/{books.ledger.entry(rng.randint(lo, hi)).receipt}" for _ in range(args.receipts)]
        books.stores.close()
        app = create_app({"INSTANCE": str(instance), "RATELIMIT_ENABLED": False})

        def environ(path: str) -> dict:
            return EnvironBuilder(path=path, headers={"Host": "127.0.0.1"}).get_environ()

        def start_response(status, headers, exc_info=None):
            if not status.startswith("200"):
                raise SystemExit(f"unexpected answer {status}")

        def call(env: dict) -> None:
            body = app(dict(env), start_response)
            b"".join(body)
            body.close()

        for path in pool:  # warm up, as http.py's warm-up phase does: every gift asked once
            call(environ(path))
        ping = environ("/v1/ping")
        gets = [environ(rng.choice(pool)) for _ in range(args.requests)]
        clock = time.process_time_ns
        spent = {"ping": 0, "get": 0}
        for env in gets:
            t0 = clock()
            call(ping)
            t1 = clock()
            call(env)
            spent["ping"] += t1 - t0
            spent["get"] += clock() - t1
        app.extensions["luodi"]["books"].stores.close()
    ping_us, get_us = (spent[k] / args.requests / 1000 for k in ("ping", "get"))
    print(f"# app CPU per request at {args.entries:,} donations, WSGI in one process (no server), "
          f"{args.requests:,} of each, interleaved; receipts of {len(pool):,} random gifts")
    print("# target: receipt GETs >= 60% of the ping rate (a receipt <= 1.67 pings of CPU)")
    row("request", "CPU/req", "vs ping")
    row("ping (GET /v1/ping)", f"{ping_us:.0f} us", "1.00x")
    row("receipt GET (random gift)", f"{get_us:.0f} us", f"{get_us / ping_us:.2f}x ({ping_us / get_us:.0%} of the ping rate)")


if __name__ == "__main__":
    main()
