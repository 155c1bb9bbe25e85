"""What the donor pages show, each read in one snapshot: the home page's
projects and latest checkpoint, and one project's whole history.

These are questions, like :meth:`CharityLedger.projects_at`, with the names a
person reads beside the ids: a project's title (from its ``project.opened``
entry) and its charity's name (from ``charity.registered``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..log.entry import Entry
from .service import CharityLedger
from .store import Project

# A project page reads at most this many entries (the newest ones): a page is for a person.
HISTORY_LIMIT = 5000


@dataclass(frozen=True)
class Titled:
    """A project's totals with its title, purpose and its charity's name."""

    project: Project
    title: str
    purpose: str
    charity_name: str


@dataclass(frozen=True)
class Overview:
    projects: list[Titled]
    tree_size: int
    root: bytes
    checkpoint: str  # the signed note
    last_time: str | None  # the time of the checkpoint's last entry (None for an empty log)


@dataclass(frozen=True)
class History:
    titled: Titled
    entries: list[Entry]  # the project's entries in seq order (the newest HISTORY_LIMIT)
    truncated: bool  # older entries exist beyond what ``entries`` holds


def _titled(books: CharityLedger, project: Project) -> Titled:
    opening = books.ledger.entry(project.seq).body
    charity = books.books.charity(project.charity)
    name = charity.name if charity is not None else project.charity
    return Titled(project, opening.get("title", project.project), opening.get("purpose", ""), name)


def overview(books: CharityLedger) -> Overview:
    """Every project with its totals and names, and the latest checkpoint with the time of its last entry."""
    with books.ledger.snapshot():
        projects = [_titled(books, p) for p in books.projects()]
        note, cp = books.ledger.latest_checkpoint_note()
        last = books.ledger.entry(cp.size - 1).time if cp.size else None
    return Overview(projects, cp.size, cp.root, note, last)


def history(books: CharityLedger, project: str, limit: int | None = HISTORY_LIMIT) -> History:
    """A project's totals, names and entries (the newest ``limit``, or all for None), in one snapshot;
    :class:`~ledger.errors.NotFound` for an unknown project."""
    with books.ledger.snapshot():
        found = books.project(project)
        titled = _titled(books, found)
        seqs = books.books.project_seqs(project, 0, 10**9)
        kept = seqs if limit is None else seqs[-limit:]
        entries = [books.ledger.entry(seq) for seq in kept]
    return History(titled, entries, len(kept) < len(seqs))
