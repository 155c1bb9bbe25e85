"""The seam between the log and a personality: a hook that runs inside the append transaction.

Trillian leaves "admission control" (what may enter a log, and by which
rules) to the personality on top of its log; Tessera keeps indexes that
follow the log outside its tree storage.  Here a personality hands the
:class:`ledger.log.ledger.Ledger` an :class:`AppendHook`:

- before an append takes the lock, :meth:`AppendHook.check` sees each entry's
  kind and body (already checked against its kind): what it refuses there
  needs no log state and costs no lock time;
- when a writer opens, :meth:`AppendHook.open` gets the append transaction
  (opaque to the log, so the personality's own driver can write in it) and
  returns an :class:`OpenHook`;
- the writer catches the hook up if it is behind the log (after a crash, or
  entries appended without it): it replays every stored entry after
  :meth:`OpenHook.applied`.  A stored entry the hook refuses is
  :class:`ledger.errors.LogCorrupted` at its seq;
- every entry the writer seals goes through :meth:`OpenHook.apply` before it
  is staged (or, sealed together, through :meth:`OpenHook.apply_batch`), and a
  refusal (any :class:`ledger.errors.LuodiError`) keeps it out of the log.  Every entry reaches it after :meth:`AppendHook.check` (a
  writer's own appends and the entries it catches up on are checked inside
  the lock, at the entry's time), so it need only check what depends on the log;
- on commit, :meth:`OpenHook.mark_applied` records how far the hook got, in
  the same transaction as the entries.

The log calls nothing else and knows nothing of what the hook keeps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from .entry import Entry
from .store import LogTxn


class OpenHook(ABC):
    @abstractmethod
    def applied(self) -> int:
        """The last seq this hook has applied (-1 for none)."""

    @abstractmethod
    def apply(self, entry: Entry) -> None:
        """Check ``entry`` and record it; raise to refuse it."""

    def apply_batch(self, entries: list[Entry]) -> None:
        """:meth:`apply` for consecutive entries, in order (a hook may record them with
        fewer writes); raise to refuse them all.  A hook that checks them all before
        it writes any leaves nothing behind when it refuses."""
        for entry in entries:
            self.apply(entry)

    @abstractmethod
    def mark_applied(self, seq: int) -> None:
        """Record that every entry up to ``seq`` has been applied."""


class AppendHook(ABC):
    def check(self, kind: str, body: dict, clock: Callable[[], str]) -> None:
        """Check what needs no log state, before the append lock is taken; raise to
        refuse.  ``clock()`` is the time now, as the ledger's clock says (call it
        only if needed).  By default there is nothing to check."""

    @abstractmethod
    def open(self, txn: LogTxn) -> OpenHook:
        """The hook's view of one append, inside its transaction."""
