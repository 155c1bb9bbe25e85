"""Group commit: appends of concurrent threads share one transaction and one
checkpoint; a refused one writes nothing and the others still land; nobody
returns before the commit that holds their entries is durable."""

from __future__ import annotations

from backends import committed
from conftest import REGISTRY

import threading
import time

import pytest

from ledger.log.entry import parse_entry
from ledger.errors import InvalidInput
from ledger.log.verify import verify_log


def _wait_until(cond, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def _committed(ledger) -> list[tuple[int, str]]:
    """(seq, text) of every committed note, read by a separate connection."""
    return [(seq, parse_entry(data, REGISTRY).body.get("text")) for seq, data in committed(ledger)]


class Held:
    """Runs ledger.in_group in threads while the first group's leader is held inside its
    work, so that everything submitted meanwhile queues for the next group."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.release = threading.Event()
        self.inside = threading.Event()
        self.results: dict[str, object] = {}
        self.threads: list[threading.Thread] = []

    def _call(self, name, work):
        try:
            self.results[name] = self.ledger.in_group(work)
        except BaseException as exc:  # noqa: BLE001 - the test inspects what each caller got
            self.results[name] = exc

    def start(self, name, work):
        t = threading.Thread(target=self._call, args=(name, work))
        t.start()
        self.threads.append(t)

    def hold_first(self):
        def blocker(w):
            self.inside.set()
            assert self.release.wait(10)
            return w.append("note", {"text": "first"})

        self.start("first", blocker)
        assert self.inside.wait(10)

    def queue(self, items: dict):
        for name, work in items.items():
            self.start(name, work)
        _wait_until(lambda: len(self.ledger._group._waiting) == len(items), "the jobs to queue")

    def finish(self):
        self.release.set()
        for t in self.threads:
            t.join(10)
        assert not any(t.is_alive() for t in self.threads)
        return self.results


def note(text):
    return lambda w: w.append("note", {"text": text})


def test_waiting_appends_commit_together_with_one_checkpoint(ledger):
    held = Held(ledger)
    held.hold_first()
    held.queue({f"n{i}": note(f"n{i}") for i in range(8)})
    results = held.finish()

    first, w_first = results["first"]
    assert w_first.checkpoint.size == first.seq + 1 == 2
    group = [results[f"n{i}"] for i in range(8)]
    writers = {id(w) for _, w in group}
    assert len(writers) == 1  # one group ...
    (w,) = {w for _, w in group}
    assert w.checkpoint.size == 10 and w.note == ledger.checkpoint()  # ... one checkpoint over all of it
    assert sorted(e.seq for e, _ in group) == list(range(2, 10))
    assert [size for size, _ in ledger.store.iter_checkpoints()] == [1, 2, 10]
    assert verify_log(ledger.store, REGISTRY).size == 10


def test_refused_job_writes_nothing_and_the_rest_of_its_group_lands(ledger):
    def refused(w):
        w.append("note", {"text": "refused"})  # appended, then refused: must vanish
        raise InvalidInput("no")

    held = Held(ledger)
    held.hold_first()
    held.queue({"a": note("a"), "bad": refused, "b": note("b")})
    results = held.finish()

    assert isinstance(results["bad"], InvalidInput)
    a, b = results["a"][0], results["b"][0]
    assert (a.seq, b.seq) == (2, 3) and b.prev == a.receipt  # the chain closes over the gap
    assert [t for _, t in _committed(ledger)] == [None, "first", "a", "b"]
    assert verify_log(ledger.store, REGISTRY).size == 4


def test_unexpected_failure_rolls_back_the_whole_group_and_reaches_every_caller(ledger):
    def broken(w):
        w.append("note", {"text": "broken"})
        raise RuntimeError("disk on fire")

    held = Held(ledger)
    held.hold_first()
    held.queue({"a": note("a"), "boom": broken, "b": note("b")})
    results = held.finish()

    assert not isinstance(results["first"], BaseException)
    for name in ("a", "boom", "b"):
        assert isinstance(results[name], RuntimeError), name
    assert [t for _, t in _committed(ledger)] == [None, "first"]
    assert ledger.checkpoint().startswith(ledger.origin + "\n2\n")
    # The lead was handed on and the log goes on from where it was.
    assert ledger.append("note", {"text": "after"}).seq == 2
    assert verify_log(ledger.store, REGISTRY).size == 3


def test_nobody_returns_before_their_entry_is_durable(ledger):
    seen = []

    def append(w):
        return w.append("note", {"text": f"t{threading.get_ident()}"})

    def worker():
        for _ in range(10):
            entry, _ = ledger.in_group(append)
            # Another connection (another process, after a crash) already sees it.
            seen.append(entry.body["text"] in {t for _, t in _committed(ledger)})

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert seen == [True] * 60
    assert verify_log(ledger.store, REGISTRY).size == 61


def test_many_threads_keep_one_chain(ledger):
    errors = []

    def worker(k):
        try:
            for i in range(25):
                if i % 5 == 0:
                    ledger.append_batch([("note", {"text": f"{k}-{i}-{j}"}) for j in range(3)])
                else:
                    ledger.append("note", {"text": f"{k}-{i}"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    texts = [t for _, t in _committed(ledger)][1:]
    assert len(texts) == len(set(texts)) == 8 * (20 + 5 * 3)
    # A batch stays contiguous inside its group.
    for k in range(8):
        for i in range(0, 25, 5):
            at = texts.index(f"{k}-{i}-0")
            assert texts[at : at + 3] == [f"{k}-{i}-{j}" for j in range(3)]
    sizes = [size for size, _ in ledger.store.iter_checkpoints()]
    assert sizes == sorted(set(sizes)) and sizes[-1] == 1 + len(texts)
    assert verify_log(ledger.store, REGISTRY).size == 1 + len(texts)


def test_group_size_is_capped(ledger, monkeypatch):
    monkeypatch.setattr(ledger._group, "max_group", 3)
    held = Held(ledger)
    held.hold_first()
    held.queue({f"n{i}": note(f"n{i}") for i in range(7)})
    results = held.finish()
    sizes = sorted({w.checkpoint.size for name, (_, w) in results.items() if name != "first"})
    assert sizes == [5, 8, 9]  # 3 + 3 + 1 after the held first group
    assert [size for size, _ in ledger.store.iter_checkpoints()] == [1, 2, 5, 8, 9]


@pytest.mark.parametrize("replays", [1, 3])
def test_a_group_that_appends_nothing_writes_no_checkpoint(ledger, replays):
    held = Held(ledger)
    held.hold_first()
    held.queue({f"r{i}": (lambda w: "nothing") for i in range(replays)})
    results = held.finish()
    assert all(results[f"r{i}"][0] == "nothing" for i in range(replays))
    assert [size for size, _ in ledger.store.iter_checkpoints()] == [1, 2]
