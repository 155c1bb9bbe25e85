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

Three bounds keep a burst from hurting anyone (docs/operations.md):

- **latency**: a leader waits at most ``group_wait`` seconds (a few
  milliseconds) for its group to fill to ``max_group``, then closes it with
  whatever came, so a lone append is never held back for company.  A caller
  can say an append is on its way before it has one to hand in
  (:meth:`GroupCommit.coming`: a server does so as a write request begins,
  before parsing it); once anyone has, a leader closes its group as soon as
  every announced append has joined or withdrawn, without waiting out
  ``group_wait`` for appends that cannot come.  With a bounded number of
  request threads that is what keeps a group's wait short;
- **pushback**: at most ``max_queue`` appends wait at once; the next one is
  refused at once with :class:`~ledger.errors.Unavailable` (503 and
  ``Retry-After``) and writes nothing;
- **wait**: an append that has waited ``max_wait`` seconds without a leader
  taking it into a group leaves the queue, under the same lock a leader takes
  its group with, and is refused the same way: it is certainly not written.
  Once taken, it is in a commit under way and waits for that commit's outcome.

No caller returns before the commit that holds its entries is durable, and
each gets the checkpoint signed with it, so "201 means durable" still holds.
Across processes, groups queue on the storage's append lock as single appends
did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Generic, Protocol, TypeVar

from ..errors import LuodiError, Unavailable

T = TypeVar("T")
MAX_GROUP = 256
MAX_QUEUE = 4096  # appends waiting at once, as Tessera pushes back beyond 4,096 outstanding
MAX_WAIT = 10.0  # seconds an append may wait for a group to take it
# Seconds a leader waits for its group to fill: none by default, since one thread appending
# alone (the CLI, a test) gains nothing by it; a server sets a few ms (GROUP_WAIT_MS).
GROUP_WAIT = 0.0
RETRY_AFTER = 1  # seconds, in the 503 of a refused append


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

    def __init__(
        self,
        max_group: int = MAX_GROUP,
        *,
        max_queue: int = MAX_QUEUE,
        max_wait: float = MAX_WAIT,
        group_wait: float = GROUP_WAIT,
    ):
        if max_group < 1 or max_queue < 1 or max_wait <= 0 or group_wait < 0:
            raise ValueError("group commit bounds must be positive")
        self.max_group = max_group
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.group_wait = group_wait
        self._mutex = threading.Lock()
        self._arrived = threading.Condition(self._mutex)  # a leader waits on it for its group to fill
        self._waiting: list[_Job] = []
        self._leading = False
        self._announcing = False  # once anyone announces, announcements decide the groups' waits
        self._on_the_way = 0  # announced appends that have not joined the queue (nor withdrawn) yet
        self._mine = threading.local()  # this thread's announcement, until its append joins

    @contextmanager
    def coming(self) -> Iterator[None]:
        """Announce that this thread is about to append (once) within the block.  A
        leader then waits for it (at most ``group_wait``) rather than for a full group."""
        with self._mutex:
            self._announcing = True
            self._on_the_way += 1
        self._mine.pending = True
        try:
            yield
        finally:
            with self._mutex:
                if self._mine.pending:  # it never appended (refused first, say): stop waiting for it
                    self._mine.pending = False
                    self._on_the_way -= 1
                    self._arrived.notify()

    def _complete(self) -> bool:
        """Under the mutex: may a leader close its group now?"""
        if len(self._waiting) >= self.max_group:
            return True
        return self._announcing and self._on_the_way == 0

    def run(self, open_writer: Callable[[], AbstractContextManager[W]], work: Callable[[W], T]) -> tuple[T, W]:
        """Run ``work(writer)`` in the next group commit; return its result and
        the (committed) writer, whose ``note`` and ``checkpoint`` cover it.

        A :class:`ledger.errors.LuodiError` from ``work`` undoes that job only,
        and is raised here; any other failure rolls back the whole group and is
        raised to every caller in it."""
        job = _Job(work)
        with self._mutex:
            if len(self._waiting) >= self.max_queue:
                raise Unavailable(
                    f"{len(self._waiting)} appends are already waiting to be written; nothing was written",
                    retry_after=RETRY_AFTER,
                )
            self._waiting.append(job)
            if getattr(self._mine, "pending", False):
                self._mine.pending = False
                self._on_the_way -= 1
            lead = not self._leading
            self._leading = True
            self._arrived.notify()
        if not lead and not job.wake.wait(self.max_wait):
            with self._mutex:
                # wake is set under this lock for a job chosen to lead, and a leader takes its
                # group under it: a job still waiting unwoken has been taken by nobody.
                gave_up = not job.wake.is_set() and job in self._waiting
                if gave_up:
                    self._waiting.remove(job)
            if gave_up:
                raise Unavailable(
                    f"the append waited {self.max_wait:g} s for a group commit; nothing was written",
                    retry_after=RETRY_AFTER,
                )
            job.wake.wait()  # taken into a commit under way, or chosen to lead the next one
        if not job.finished:
            self._lead(open_writer)
        if job.error is not None:
            raise job.error
        return job.result, job.writer

    def _lead(self, open_writer: Callable[[], AbstractContextManager[W]]) -> None:
        with self._mutex:
            if self.group_wait:
                # The group closes when full, or when no announced append is still on its way,
                # or after group_wait, whatever has come by then.
                self._arrived.wait_for(self._complete, self.group_wait)
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
