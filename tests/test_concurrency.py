"""Several processes (and threads) appending to one database keep one whole chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from backends import CHILD_OPEN
from conftest import REGISTRY, notes, open_target, target_of

from ledger.charity.service import open_charity_ledger
from ledger.log.entry import parse_entry
from ledger.log.verify import verify_log

ROOT = Path(__file__).resolve().parent.parent

PROCS = 3
BATCHES = 40
PER_BATCH = 25
SINGLES = 10

CHILD = CHILD_OPEN + textwrap.dedent(
    """
    import json, os, sys, time
    from ledger.charity.service import open_charity_ledger
    from ledger.log.note import Signer

    name, path, procs, batches, per, singles = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    storage = open_database(path)
    # open_charity_ledger checks the signer against the genesis entry.
    ledger = open_charity_ledger(storage, Signer.from_string(os.environ["LUODI_TEST_KEY"])).ledger
    report = []
    for b in range(batches):
        got = ledger.append_batch([("note", {"text": f"{name}-b{b}-{i}"}) for i in range(per)])
        report.append([f"{name}-b{b}", got[0].seq, got[-1].seq])
        if b == 0:
            # Wait until every process has committed its first batch, so the
            # rest of the run is guaranteed to interleave.
            deadline = time.monotonic() + 60
            while ledger.size() < 1 + procs * per:
                if time.monotonic() > deadline:
                    sys.exit("the other writers never started")
                time.sleep(0.002)
        if b % (batches // singles) == 0:
            e = ledger.append("note", {"text": f"{name}-s{b}"})
            report.append([f"{name}-s{b}", e.seq, e.seq])
    storage.close()
    print(json.dumps(report))
    """
)


def test_processes_append_concurrently(make_ledger, signer):
    ledger = make_ledger()
    path = target_of(ledger)
    env = {**os.environ, "LUODI_TEST_KEY": signer.to_string(), "PYTHONPATH": str(ROOT)}
    names = [f"p{n}" for n in range(PROCS)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, name, str(path), str(PROCS), str(BATCHES), str(PER_BATCH), str(SINGLES)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    reports = {}
    for name, child in zip(names, children):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        reports[name] = json.loads(out)

    batches_per_proc = BATCHES + SINGLES
    total = PROCS * (BATCHES * PER_BATCH + SINGLES)
    report = verify_log(ledger.store, REGISTRY)
    assert report.size == ledger.size() == 1 + total
    assert report.checkpoints == 1 + PROCS * batches_per_proc

    # Every text written by any process is present exactly once.
    texts = [parse_entry(row[3], REGISTRY).body.get("text") for row in ledger.store.iter_entries(1)]
    expected = {f"{n}-b{b}-{i}" for n in names for b in range(BATCHES) for i in range(PER_BATCH)}
    expected |= {f"{n}-s{b}" for n in names for b in range(0, BATCHES, BATCHES // SINGLES)}
    assert len(expected) == total
    assert len(texts) == len(set(texts)) == total
    assert set(texts) == expected

    # Each batch landed as one contiguous run of seqs, with a checkpoint at its end,
    # and the runs of all processes tile [1, size) exactly.
    checkpoints = {size for size, _ in ledger.store.iter_checkpoints()}
    runs = sorted((first, last) for rep in reports.values() for _, first, last in rep)
    assert len(runs) == PROCS * batches_per_proc
    assert runs[0][0] == 1 and runs[-1][1] == total
    for (_, last), (first, _) in zip(runs, runs[1:]):
        assert first == last + 1
    assert checkpoints == {1} | {last + 1 for _, last in runs}
    for rep in reports.values():
        for label, first, last in rep:
            if "-b" in label:
                assert last - first + 1 == PER_BATCH
                assert [texts[s - 1] for s in (first, last)] == [f"{label}-0", f"{label}-{PER_BATCH - 1}"]
            else:
                assert texts[first - 1] == label

    # The writers really interleaved: every process waited for all first batches, so
    # the seqs of every process but (at most) the last to start are not one block.
    spans = [max(last for _, _, last in rep) - min(first for _, first, _ in rep) + 1 for rep in reports.values()]
    own = BATCHES * PER_BATCH + SINGLES
    assert sum(span > own for span in spans) >= PROCS - 1, spans


def test_threads_share_one_ledger_and_separate_connections(make_ledger, signer):
    ledger = make_ledger()
    path = target_of(ledger)
    other_storages = [open_target(path) for _ in range(2)]
    ledgers = [ledger, ledger, *(open_charity_ledger(s, signer).ledger for s in other_storages)]
    errors = []
    start = threading.Barrier(len(ledgers))

    def work(n, lg):
        try:
            start.wait()
            for b in range(15):
                lg.append_batch(notes(10, f"t{n}-b{b}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, lg)) for n, lg in enumerate(ledgers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        report = verify_log(ledger.store, REGISTRY)
        assert report.size == 1 + len(ledgers) * 15 * 10
        # The two threads on one Ledger may share group commits; the others cannot.
        assert 1 + (len(ledgers) - 1) * 15 <= report.checkpoints <= 1 + len(ledgers) * 15
        texts = [parse_entry(row[3], REGISTRY).body["text"] for row in ledger.store.iter_entries(1)]
        assert len(set(texts)) == len(texts) == len(ledgers) * 150
        for start_at in range(0, len(texts), 10):  # each batch stays whole and in order
            batch = texts[start_at : start_at + 10]
            assert batch == [f"{batch[0].rsplit(' ', 1)[0]} {i}" for i in range(10)]
    finally:
        for s in other_storages:
            s.close()
