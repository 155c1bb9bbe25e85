"""Group commit: appends that arrive together share one transaction, one
checkpoint and one fsync.

A durable commit costs a WAL write and an fsync, and each batch signs a
checkpoint; paid once per request, that caps a busy server.  So, as
Certificate Transparency logs sequence submissions in batches (Trillian's
sequencer, Tessera's and Sunlight's pools), the threads of one process that
append at the same time are committed together:

- each caller hands in ``work``, a function of the open writer (any batch
  with a ``savepoint()``, such as :class:`ledger.log.writer.Writer`), and
  ``open_writer``, which opens one (:meth:`ledger.log.ledger.Ledger.writer`);
- the first caller to arrive while no commit is under way leads: it takes
  every waiting job (up to ``max_group``), runs each in its own savepoint when
  there are several (so a refused one writes nothing and the others still
  land), commits once and wakes the rest;
- whoever arrived meanwhile waits for the next group, led by the first of them.

No caller returns before the commit that holds its entries is durable, and
each gets the checkpoint signed with it, so "201 means durable" still holds.
Across processes, groups queue on the storage's append lock as single appends
did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Generic, Protocol, TypeVar

from ..errors import LuodiError

T = TypeVar("T")
MAX_GROUP = 256


class Batch(Protocol):
    def savepoint(self) -> AbstractContextManager[None]: ...


W = TypeVar("W", bound=Batch)


class _Job(Generic[T, W]):
    __slots__ = ("work", "result", "error", "writer", "finished", "wake")

    def __init__(self, work: Callable[[W], T]):
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.writer: W | None = None
        self.finished = False  # else, when woken, it leads the next group
        self.wake = threading.Event()


class GroupCommit(Generic[W]):
    """The group commits of one ledger.  The leader opens the group's writer
    with the ``open_writer`` it was handed, so the two do not keep each other alive."""

    def __init__(self, max_group: int = MAX_GROUP):
        self.max_group = max_group
        self._mutex = threading.Lock()
        self._waiting: list[_Job] = []
        self._leading = False

    def run(self, open_writer: Callable[[], AbstractContextManager[W]], work: Callable[[W], T]) -> tuple[T, W]:
        """Run ``work(writer)`` in the next group commit; return its result and
        the (committed) writer, whose ``note`` and ``checkpoint`` cover it.

        A :class:`ledger.errors.LuodiError` from ``work`` undoes that job only,
        and is raised here; any other failure rolls back the whole group and is
        raised to every caller in it."""
        job = _Job(work)
        with self._mutex:
            self._waiting.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.wake.wait()
        if not job.finished:
            self._lead(open_writer)
        if job.error is not None:
            raise job.error
        return job.result, job.writer

    def _lead(self, open_writer: Callable[[], AbstractContextManager[W]]) -> None:
        with self._mutex:
            group = self._waiting[: self.max_group]
            del self._waiting[: len(group)]
        try:
            with open_writer() as w:
                if len(group) == 1:  # alone, a failure rolls back the whole transaction anyway
                    group[0].result = group[0].work(w)
                else:
                    for job in group:
                        try:
                            with w.savepoint():  # costs a sub-journal of every page it changes
                                job.result = job.work(w)
                        except LuodiError as exc:
                            job.error = exc
        except BaseException as exc:  # the commit itself failed: nothing of the group landed
            for job in group:
                job.result, job.error = None, job.error or exc
        else:
            for job in group:
                job.writer = w
        finally:
            with self._mutex:
                if self._waiting:
                    self._waiting[0].wake.set()  # the first who waited leads the next group
                else:
                    self._leading = False
            for job in group:
                job.finished = True
                job.wake.set()
