"""The group commit's bounds: a full queue pushes back at once (503, nothing written),
an append that waits too long for a group leaves the queue and is certainly not written,
one already taken into a commit is never abandoned, and a group closes when full or
after its short wait, so a lone append commits alone.  Commits are counted through the
checkpoints the log keeps (one per commit), never by timing."""

from __future__ import annotations

import threading
import time

from api_helpers import PROJECT, assert_problem, donation_body, make_api  # noqa: F401  (make_api is a fixture)
from conftest import REGISTRY
from test_group_commit import Held, _committed, _wait_until, note

from api import state
from ledger.errors import Unavailable
from ledger.log.verify import verify_log


def commits(ledger) -> list[int]:
    """The tree size of every commit's checkpoint, oldest first."""
    return [size for size, _ in ledger.store.iter_checkpoints()]


def test_a_full_queue_refuses_at_once_and_writes_nothing(ledger):
    ledger.bound_group_commit(max_queue=3)
    held = Held(ledger)
    held.hold_first()  # taken into a commit: no longer waiting
    held.queue({f"q{i}": note(f"q{i}") for i in range(3)})
    try:
        ledger.append("note", {"text": "pushed back"})
    except Unavailable as exc:
        refused = exc
    else:
        raise AssertionError("a fourth waiting append was accepted")
    assert refused.status == 503 and refused.retry_after == 1
    assert "nothing was written" in refused.detail
    results = held.finish()
    assert all(not isinstance(r, BaseException) for r in results.values())
    assert [t for _, t in _committed(ledger)] == [None, "first", "q0", "q1", "q2"]
    ledger.append("note", {"text": "after"})  # the queue drained: appends are taken again
    assert verify_log(ledger.store, REGISTRY).size == 6


def test_an_append_that_waits_too_long_is_refused_and_never_written(ledger):
    ledger.bound_group_commit(max_wait=0.2)
    held = Held(ledger)
    held.hold_first()
    held.start("late", note("late"))  # queues behind the held commit, and gives up
    _wait_until(lambda: "late" in held.results, "the late append to give up")
    assert isinstance(held.results["late"], Unavailable) and held.results["late"].retry_after == 1
    assert ledger._group._waiting == []  # it left the queue before any leader could take it
    results = held.finish()
    assert results["first"][0].seq == 1
    assert [t for _, t in _committed(ledger)] == [None, "first"]
    assert commits(ledger) == [1, 2]
    assert ledger.append("note", {"text": "next"}).seq == 2  # nobody is left waiting to lead
    assert verify_log(ledger.store, REGISTRY).size == 3


def test_an_append_taken_into_a_commit_is_never_abandoned(ledger):
    """Its wait bound passes while the commit that holds it runs: it waits for that
    commit and gets its entry, since answering 503 would deny a written entry."""
    ledger.bound_group_commit(max_group=2, max_wait=0.05, group_wait=60)
    held = Held(ledger)

    def first(w):
        held.inside.set()
        assert held.release.wait(10)
        return w.append("note", {"text": "first"})

    held.start("first", first)  # leads, and waits for its group to fill ...
    _wait_until(lambda: len(ledger._group._waiting) == 1, "the leader to wait")
    held.start("taken", note("taken"))  # ... which this does; both run in the held commit
    assert held.inside.wait(10)
    time.sleep(0.3)  # let the taken append's 0.05 s bound pass while its commit is held
    results = held.finish()
    entry, w = results["taken"]
    assert entry.seq == 2 and w is results["first"][1]
    assert commits(ledger) == [1, 3]  # one commit held both
    assert [t for _, t in _committed(ledger)] == [None, "first", "taken"]


def test_a_lone_append_commits_alone_without_waiting_for_a_full_group(ledger):
    ledger.bound_group_commit(max_group=256, group_wait=0.01)
    for i in range(3):
        ledger.append("note", {"text": f"lone {i}"})
    assert commits(ledger) == [1, 2, 3, 4]  # each in a commit of its own, none held for company


def test_a_group_closes_as_soon_as_it_is_full(ledger):
    """With a minute's group wait, four appends still commit at once: a full group does not wait."""
    ledger.bound_group_commit(max_group=4, group_wait=60)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def append(i):
        start.wait(10)
        try:
            ledger.append("note", {"text": f"c{i}"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)  # a generous functional bound, far below the minute's group wait
    assert not any(t.is_alive() for t in threads) and errors == []
    assert commits(ledger) == [1, 5]


def _announced_appends(ledger, n: int, start: threading.Barrier, errors: list) -> list[threading.Thread]:
    def append(i):
        with ledger.coming():
            start.wait(10)  # all have announced before any appends
            try:
                ledger.append("note", {"text": f"a{i}"})
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def test_a_group_closes_once_every_announced_append_has_joined(ledger):
    """Six requests announce their appends: the group holds all six, and closes
    without waiting out a minute's group wait for a full group of 256."""
    ledger.bound_group_commit(max_group=256, group_wait=60)
    errors: list[BaseException] = []
    threads = _announced_appends(ledger, 6, threading.Barrier(6), errors)
    for t in threads:
        t.join(30)  # a generous functional bound, far below the minute's group wait
    assert not any(t.is_alive() for t in threads) and errors == []
    assert commits(ledger) == [1, 7]  # one commit held all six
    assert verify_log(ledger.store, REGISTRY).size == 7


def test_a_group_waits_for_an_announced_append_and_not_for_one_withdrawn(ledger):
    """A request that announced an append and is still on its way holds the group
    open (within the group wait); once it leaves without appending (refused before
    its append, say), the group closes at once with what it has."""
    ledger.bound_group_commit(max_group=256, group_wait=60)
    announced, leave = threading.Event(), threading.Event()

    def refused_request():
        with ledger.coming():
            announced.set()
            assert leave.wait(30)

    other = threading.Thread(target=refused_request)
    other.start()
    assert announced.wait(10)
    done: list = []
    appender = threading.Thread(target=lambda: done.append(ledger.append("note", {"text": "waits"})))
    appender.start()
    _wait_until(lambda: ledger._group._leading and ledger._group._waiting, "the append to lead its group")
    time.sleep(0.2)
    assert done == [] and commits(ledger) == [1]  # the group still waits for the announced one
    leave.set()
    other.join(10)
    appender.join(30)
    assert not appender.is_alive() and done[0].seq == 1
    assert commits(ledger) == [1, 2]


def test_an_announced_append_that_is_pushed_back_withdraws_its_announcement(ledger):
    ledger.bound_group_commit(max_queue=1, group_wait=0.01)
    held = Held(ledger)
    held.hold_first()
    held.queue({"q": note("q")})
    with ledger.coming():
        try:
            ledger.append("note", {"text": "pushed back"})
        except Unavailable:
            pass
        else:
            raise AssertionError("a second waiting append was accepted")
    assert ledger._group._on_the_way == 0
    results = held.finish()
    assert all(not isinstance(r, BaseException) for r in results.values())


def test_concurrent_appends_share_far_fewer_commits(ledger):
    ledger.bound_group_commit(group_wait=0.05)
    n = 32
    start = threading.Barrier(n)

    def append(i):
        start.wait(10)
        ledger.append("note", {"text": f"c{i}"})

    threads = [threading.Thread(target=append, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert ledger.size() == n + 1
    assert len(commits(ledger)) - 1 <= n // 4  # far fewer commits than appends
    assert verify_log(ledger.store, REGISTRY).size == n + 1


def test_pushback_over_http_is_a_503_problem_that_writes_nothing(make_api):
    env = make_api(config={"APPEND_QUEUE": 1})
    with env.app.app_context():
        led = state.ledger()
    release, inside = threading.Event(), threading.Event()

    def blocker(w):
        inside.set()
        assert release.wait(10)

    threads = [threading.Thread(target=led.in_group, args=(blocker,))]
    threads[0].start()
    assert inside.wait(10)
    threads.append(threading.Thread(target=led.in_group, args=(lambda w: None,)))
    threads[1].start()
    _wait_until(lambda: len(led._group._waiting) == 1, "the queue to fill")
    try:
        with env.unchanged():
            resp = env.donate("pushed-back")
        body = assert_problem(resp, 503, "unavailable")
        assert resp.headers["Retry-After"] == "1" and "nothing was written" in body["detail"]
    finally:
        release.set()
        for t in threads:
            t.join(10)
    assert env.donate("pushed-back").status_code == 201  # the same key, now taken: it was never written
