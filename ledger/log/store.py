"""The log-store protocol: what the transparency log needs of a database.

A driver (:mod:`ledger.stores.sqlite`; a server database next) implements it.
A log store keeps two append-only collections:

- entries, as rows ``(seq, leaf hash, nodes, canonical bytes)``, where
  ``nodes`` is the hashes of the perfect Merkle subtrees the entry completes,
  packed as :func:`ledger.log.merkle.pack_nodes` defines (empty for an even
  seq).  How a driver lays them out is its own business; it answers
  :meth:`LogStore.nodes` by ``(level, index)``;
- signed checkpoints, ``(tree size, note)``, one per committed append;
- cosigned checkpoints, ``(tree size, note)``: a signed checkpoint with the
  cosignature lines of witnesses that met the log's witness policy added
  (:mod:`ledger.log.cosigning`; C2SP tlog-cosignature), at most one per size.

Reads inside :meth:`LogStore.snapshot` see one committed state, and so do the
reads of the other stores of the same driver made in that block and thread
(the books of a personality, say).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager

from .merkle import Node

Row = tuple[int, bytes, bytes, bytes]  # (seq, leaf hash, packed nodes, canonical bytes)


class LogTxn(ABC):
    """An open append: holds the log's append lock from the read of the tip to the commit.

    A personality's hook (:mod:`ledger.log.hook`) gets it too, opaque to the
    log, so that its own driver can write in the same transaction."""

    @abstractmethod
    def tip(self) -> tuple[int, bytes | None, bytes | None]:
        """(size, leaf hash of the last entry, canonical bytes of the last entry)."""

    @abstractmethod
    def nodes(self, wanted: Iterable[Node]) -> dict[Node, bytes]:
        """Perfect nodes, read inside the transaction."""

    @abstractmethod
    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        """Leaf hashes of the entries ``start <= seq < stop``, in seq order."""

    @abstractmethod
    def rows(self, start: int) -> Iterator[Row]:
        """Rows from ``start`` to the tip, read inside the transaction."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception inside undoes what the block wrote, and only that."""

    @abstractmethod
    def write(self, rows: list[Row], checkpoint: tuple[int, str]) -> None:
        """Stage entry rows and the checkpoint (tree size, signed note).  They
        are durable only when the transaction's context exits without an exception."""


class LogStore(ABC):
    @abstractmethod
    def append_transaction(self) -> AbstractContextManager[LogTxn]:
        """Serialise appends across threads and processes; commit durably on exit."""

    @abstractmethod
    def snapshot(self, streaming: bool = False) -> AbstractContextManager[None]:
        """Make the reads inside the block see one consistent state.

        ``streaming`` says the block scans the whole log once, so caching what
        it reads would only grow memory."""

    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def entry_bytes(self, seq: int) -> bytes | None: ...

    @abstractmethod
    def entry_by_hash(self, leaf_hash: bytes) -> bytes | None:
        """The canonical bytes of the entry with this leaf hash, in one lookup."""

    @abstractmethod
    def nodes(self, wanted: Iterable[Node]) -> dict[Node, bytes]:
        """Fetch perfect nodes (level 0 is the leaf hashes) in one round trip.

        Raises :class:`ledger.errors.NotFound` if any is missing."""

    @abstractmethod
    def checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The checkpoint at ``size``, or the latest one."""

    @abstractmethod
    def add_cosigned_checkpoint(self, size: int, note: str) -> bool:
        """Keep a cosigned checkpoint, durably: the log's note at ``size`` with
        cosignature lines added after its own (the driver refuses anything else).
        False, and nothing written, if one at that size is kept already."""

    @abstractmethod
    def cosigned_checkpoint(self, size: int | None = None) -> tuple[int, str] | None:
        """The cosigned checkpoint at ``size``, or the latest (largest) one; None if none."""

    @abstractmethod
    def iter_entries(self, start: int = 0) -> Iterator[Row]:
        """Rows in seq order."""

    @abstractmethod
    def iter_checkpoints(self) -> Iterator[tuple[int, str]]: ...

    @abstractmethod
    def close(self) -> None: ...
