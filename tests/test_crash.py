"""SIGKILL a writer mid-batch: the log keeps only whole, signed batches (on every backend)."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from backends import CHILD_OPEN
from conftest import REGISTRY, open_target, target_of

from ledger.charity.service import open_charity_ledger
from ledger.log.checkpoint import open_checkpoint
from ledger.log.entry import parse_entry
from ledger.log.ledger import Ledger
from ledger.log.verify import verify_log

ROOT = Path(__file__).resolve().parent.parent
BATCH = 10_000

# The child appends batches forever.  It prints "begin <b>" before a batch,
# "staged <b>" once the rows are written inside the still-open transaction
# (then, when asked, lingers there), and "commit <b> <size>" after the commit.
CHILD = CHILD_OPEN + textwrap.dedent(
    """
    import os, sys, time
    from contextlib import contextmanager
    from ledger.charity.service import open_charity_ledger
    from ledger.log.note import Signer

    path, per, linger = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

    storage = open_database(path)
    transaction = storage.log.append_transaction

    @contextmanager
    def append_transaction():
        with transaction() as txn:
            write = txn.write
            def staged(entries, checkpoint):
                write(entries, checkpoint)
                print("staged", batch, flush=True)
                time.sleep(linger)
            txn.write = staged
            yield txn

    storage.log.append_transaction = append_transaction
    ledger = open_charity_ledger(storage, Signer.from_string(os.environ["LUODI_TEST_KEY"])).ledger
    batch = (ledger.size() - 1) // per
    while True:
        print("begin", batch, flush=True)
        ledger.append_batch([("note", {"text": f"b{batch}-{i}"}) for i in range(per)])
        print("commit", batch, ledger.size(), flush=True)
        batch += 1
    """
)


def read_line(child: subprocess.Popen, deadline: float) -> str:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("the writer stopped reporting")
        ready, _, _ = select.select([child.stdout], [], [], left)
        if ready:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"the writer exited: {child.stderr.read()}")
            return line.split()


def check_whole(path: Path | str, log_key: str) -> int:
    storage = open_target(path)
    try:
        report = verify_log(storage.log, REGISTRY, log_key)
        size = storage.log.size()
        assert report.size == size
        assert (size - 1) % BATCH == 0, f"size {size} holds part of a batch"
        latest = storage.log.checkpoint()
        assert latest is not None and latest[0] == size
        cp = open_checkpoint(latest[1], Ledger(storage.log, REGISTRY).verifier)
        assert cp.size == size and cp.root == report.root
        assert report.checkpoints == 1 + (size - 1) // BATCH
        # The last whole batch is all there, in order.
        if size > 1:
            last_batch = (size - 2) // BATCH
            first = parse_entry(storage.log.entry_bytes(size - BATCH), REGISTRY).body["text"]
            last = parse_entry(storage.log.entry_bytes(size - 1), REGISTRY).body["text"]
            assert (first, last) == (f"b{last_batch}-0", f"b{last_batch}-{BATCH - 1}")
        return size
    finally:
        storage.close()


@pytest.mark.slow
def test_sigkill_mid_batch_keeps_only_whole_batches(make_ledger, signer):
    ledger = make_ledger()
    path = target_of(ledger)
    log_key = signer.verifier.to_string()
    ledger.store.close()
    env = {**os.environ, "LUODI_TEST_KEY": signer.to_string(), "PYTHONPATH": str(ROOT)}
    rng = random.Random(9162)
    size = 1
    # (commits to wait for, where to kill): "staged" kills inside the open transaction,
    # after every row and the checkpoint are written but before COMMIT; "random" kills
    # a random moment into the next batch.
    plans = [(2, "staged"), (3, "random"), (1, "random"), (2, "staged")]
    killed_mid_batch = 0
    for commits, where in plans:
        linger = 0.5 if where == "staged" else 0.0
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(BATCH), str(linger)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        reported = size
        lines = []
        try:
            while sum(words[0] == "commit" for words in lines) < commits:
                lines.append(read_line(child, deadline))
                if lines[-1][0] == "commit":
                    reported = int(lines[-1][2])
            if where == "staged":
                while lines[-1][0] != "staged":
                    lines.append(read_line(child, deadline))
                time.sleep(0.05)
            else:
                lines.append(read_line(child, deadline))
                assert lines[-1][0] == "begin"
                time.sleep(rng.uniform(0.01, 0.08))
            child.send_signal(signal.SIGKILL)
            rest, err = child.communicate(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        assert child.returncode == -signal.SIGKILL, err
        lines += [words.split() for words in rest.split("\n")[:-1]]  # complete lines only
        if lines[-1][0] in ("begin", "staged"):
            killed_mid_batch += 1
        new_size = check_whole(path, log_key)
        # Everything the writer reported as committed survived; nothing more than
        # one further batch (whose commit it could not report) appeared.
        assert reported <= new_size <= reported + BATCH
        assert new_size >= size + commits * BATCH
        if where == "staged":
            assert new_size == reported  # the staged batch was never committed
        size = new_size
    assert killed_mid_batch >= 2
    # The store is still writable after the crashes, by a fresh writer.
    storage = open_target(path)
    try:
        open_charity_ledger(storage, signer).ledger.append_batch([("note", {"text": "after the crashes"})])
        assert verify_log(storage.log, REGISTRY, log_key).size == size + 1
    finally:
        storage.close()
