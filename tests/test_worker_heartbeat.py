"""api/worker.py's heartbeat: gunicorn's master stops a worker whose heartbeat is older
than its ``timeout``.  The worker's event loop beats every second whatever its threads
do, so while a request runs the heartbeat is the time that request began: a request
that runs over the timeout still gets its worker stopped, as under sync workers."""

from __future__ import annotations

import os
import time

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from api.worker import LuodiWorker


@pytest.fixture
def worker():
    cfg = Config()
    cfg.set("threads", 2)
    made = LuodiWorker(0, os.getppid(), [], None, 30, cfg, Logger(cfg))
    yield made
    made.tmp.close()


def test_the_heartbeat_is_the_start_of_the_oldest_running_request(worker):
    worker.notify()
    assert abs(worker.tmp.last_update() - time.monotonic()) < 5
    old, newer = time.monotonic() - 100, time.monotonic() - 10
    worker.busy.update({"a": newer, "b": old})
    worker.notify()
    assert worker.tmp.last_update() == pytest.approx(old, abs=0.01)
    del worker.busy["b"]
    worker.notify()
    assert worker.tmp.last_update() == pytest.approx(newer, abs=0.01)
    worker.busy.clear()
    worker.notify()
    assert abs(worker.tmp.last_update() - time.monotonic()) < 5


def test_a_part_of_an_answer_written_counts_as_progress(worker):
    """A request that keeps writing its answer is alive: its heartbeat moves to the last
    write (checked at most once a second), and only while the request runs."""
    started = time.monotonic() - 100
    worker.busy["a"] = started
    worker.progressed("a")
    assert time.monotonic() - worker.busy["a"] < 5
    worker.notify()
    assert abs(worker.tmp.last_update() - time.monotonic()) < 5
    just = worker.busy["a"]
    worker.progressed("a")  # within a second: not taken again
    assert worker.busy["a"] == just
    worker.progressed("gone")  # a request no longer running is not brought back
    assert "gone" not in worker.busy
