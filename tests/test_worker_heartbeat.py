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
