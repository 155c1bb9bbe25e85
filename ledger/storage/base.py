"""The storage interface the ledger core is written against.

SQLite (:mod:`ledger.storage.sqlite`) is the embedded default; a server
database later implements the same methods.  A store keeps two append-only
collections: entries, as rows ``(seq, leaf hash, tree, canonical bytes)``,
and signed checkpoints, one per committed batch.  ``tree`` is the hashes of
the perfect Merkle subtrees that the entry completes (levels 1, 2, ...), so
the node ``(level, index)`` lives in the row ``seq = ((index + 1) << level) - 1``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ..merkle import Node

if TYPE_CHECKING:
    from ..books import Books


class AppendTransaction(ABC):
    """Holds the log's append lock from the read of the tip to the commit."""

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
    def books(self, window_seconds: int) -> "Books":
        """The accounting index, read and written inside this transaction."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception inside undoes what the block wrote, and only that."""

    @abstractmethod
    def add_token(self, token_hash: bytes, role: str, charity: str | None, created: str) -> None:
        """Store a bearer token's hash (never the token)."""

    @abstractmethod
    def tokens(self) -> list[tuple[bytes, str, str | None, str]]:
        """Every bearer token as (hash, role, charity, created), oldest first."""

    @abstractmethod
    def remove_token(self, token_hash: bytes) -> None:
        """Delete a token (revocation)."""

    @abstractmethod
    def write(
        self,
        entries: list[tuple[int, bytes, bytes, bytes]],
        checkpoint: tuple[int, str],
    ) -> None:
        """Stage entries (seq, leaf hash, tree, canonical) and the checkpoint
        (tree size, signed note).  They are durable only when the transaction's
        context exits without an exception."""


class Storage(ABC):
    @abstractmethod
    def append_transaction(self) -> AbstractContextManager[AppendTransaction]:
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
    def seq_of(self, leaf_hash: bytes) -> int | None: ...

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
    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        """Rows (seq, leaf hash, tree, canonical) in seq order."""

    @abstractmethod
    def iter_checkpoints(self) -> Iterator[tuple[int, str]]: ...

    @abstractmethod
    def books(self, window_seconds: int) -> "Books":
        """The accounting index, for reads outside an append."""

    @abstractmethod
    def token(self, token_hash: bytes) -> tuple[bytes, str, str | None] | None:
        """(hash, role, charity) of a bearer token, looked up by its hash."""

    @abstractmethod
    def tokens(self) -> list[tuple[bytes, str, str | None, str]]:
        """Every bearer token as (hash, role, charity, created), oldest first."""

    @abstractmethod
    def scrub(self) -> None:
        """Make deleted rows unrecoverable from the files (after an erasure)."""

    @abstractmethod
    def close(self) -> None: ...
