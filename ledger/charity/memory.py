"""A books view in plain Python dictionaries: what an auditor replays the log into.

It implements :class:`ledger.charity.store.BooksView` with no database, so
the audit's recomputation shares nothing with the server's index but the
rules themselves.  It keeps no transactions: a replay that meets a refused
entry stops there.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from .store import DERIVED, BooksView, Charity, Donation, Policy, Project


class MemoryBooks(BooksView):
    def __init__(self) -> None:
        self._applied = -1
        self._charities: dict[str, list] = {}  # charity -> [name, keys, threshold, seq]
        self._keys: dict[bytes, str] = {}
        self._projects: dict[str, list] = {}  # project -> [charity, currency, seq, closed_seq, raised, spent, refunded, n]
        self._donations: dict[bytes, list] = {}  # receipt -> [seq, project, amount, spent, refunded]
        self._allocations: dict[tuple[bytes, bytes], tuple[int, int]] = {}  # (donation, disbursement) -> (amount, seq)
        self._spent_by: dict[bytes, list[tuple[str, int]]] = {}  # donation -> [(disbursement hex, amount)] in log order
        self._queues: dict[str, list] = {}  # project -> [index of the first donation that may hold money, receipts...]
        self._nonces: set[tuple[str, str]] = set()
        self._intake: dict[tuple[str, str], bytes] = {}  # (charity, intake key) -> receipt
        self._project_entries: dict[str, list[int]] = {}  # project -> seqs, ascending
        self._charity_entries: dict[str, list[int]] = {}  # charity -> seqs, ascending
        self._private: dict[bytes, tuple[bytes, bytes, str | None]] = {}
        self._policy: Policy | None = None

    def applied(self) -> int:
        return self._applied

    def mark_applied(self, seq: int) -> None:
        self._applied = seq

    # -- reads ---------------------------------------------------------------------------

    def charity(self, charity):
        row = self._charities.get(charity)
        return None if row is None else Charity(charity, row[0], tuple(row[1]), row[2])

    def owner_of(self, public_key):
        return self._keys.get(public_key)

    def project(self, project):
        row = self._projects.get(project)
        if row is None:
            return None
        charity, currency, seq, closed_seq, *totals = row
        return Project(project, charity, currency, seq, closed_seq is not None, *totals)

    def projects(self):
        return [self.project(p) for p in sorted(self._projects, key=lambda p: self._projects[p][2])]

    def donation(self, receipt):
        row = self._donations.get(receipt)
        if row is None:
            return None
        seq, project, amount, spent, refunded = row
        return Donation(receipt.hex(), seq, project, amount, spent, refunded, self._projects[project][1])

    def allocations_of(self, receipt):
        return list(self._spent_by.get(receipt, ()))

    def project_seqs(self, project, start, limit):
        seqs = self._project_entries.get(project, [])
        i = bisect.bisect_left(seqs, start)
        return seqs[i : i + limit]

    def charity_seqs(self, charity):
        return list(self._charity_entries.get(charity, ()))

    def intake(self, charity, intake_key):
        return self._intake.get((charity, intake_key))

    def unspent(self, project) -> Iterator[tuple[bytes, int]]:
        queue = self._queues.get(project)
        if not queue:
            return
        # A donation's unspent money never grows: skip the spent ones at the front for good.
        while queue[0] < len(queue) and self._left(queue[queue[0]]) == 0:
            queue[0] += 1
        for receipt in queue[queue[0] :]:
            left = self._left(receipt)
            if left > 0:
                yield receipt, left

    def _left(self, receipt: bytes) -> int:
        _, _, amount, spent, refunded = self._donations[receipt]
        return amount - spent - refunded

    def private(self, receipt):
        return self._private.get(receipt)

    def privates(self):
        for receipt in sorted(self._private):
            yield (receipt, *self._private[receipt])

    def policy(self):
        return self._policy

    def derived(self, table):
        if table not in DERIVED:
            raise KeyError(table)
        rows = {
            "charities": lambda: [(c, n, tuple(k), t, s) for c, (n, k, t, s) in self._charities.items()],
            "charity_keys": lambda: list(self._keys.items()),
            "projects": lambda: [(p, *row) for p, row in self._projects.items()],
            "donations": lambda: [(r, *row) for r, row in self._donations.items()],
            "allocations": lambda: [(r, d, a, s) for (r, d), (a, s) in self._allocations.items()],
            "nonces": lambda: list(self._nonces),
            "intake_keys": lambda: [(c, k, r) for (c, k), r in self._intake.items()],
            "project_entries": lambda: [(p, s) for p, seqs in self._project_entries.items() for s in seqs],
            "policy": lambda: [] if self._policy is None else [(self._policy.signing_window_seconds, self._policy.seq)],
            "charity_entries": lambda: [(c, s) for c, seqs in self._charity_entries.items() for s in seqs],
        }[table]()
        return sorted(rows)

    # -- writes --------------------------------------------------------------------------

    def add_charity(self, charity, name, keys, threshold, seq):
        self._charities[charity] = [name, list(keys), threshold, seq]

    def set_keys(self, charity, keys, threshold):
        self._charities[charity][1:3] = [list(keys), threshold]

    def claim_key(self, public_key, charity):
        self._keys.setdefault(public_key, charity)

    def use_nonce(self, charity, nonce):
        if (charity, nonce) in self._nonces:
            return False
        self._nonces.add((charity, nonce))
        return True

    def add_project(self, project, charity, currency, seq):
        self._projects[project] = [charity, currency, seq, None, 0, 0, 0, 0]

    def close_project(self, project, seq):
        self._projects[project][3] = seq

    def add_intake_key(self, charity, intake_key, receipt):
        if (charity, intake_key) in self._intake:
            return False
        self._intake[(charity, intake_key)] = receipt
        return True

    def add_donation(self, receipt, seq, project, amount):
        self._donations[receipt] = [seq, project, amount, 0, 0]
        self._queues.setdefault(project, [1]).append(receipt)
        row = self._projects[project]
        row[4] += amount
        row[7] += 1

    def spend(self, donation, disbursement, amount, seq):
        self._donations[donation][3] += amount
        self._allocations[(donation, disbursement)] = (amount, seq)
        self._spent_by.setdefault(donation, []).append((disbursement.hex(), amount))

    def add_spent(self, project, amount):
        self._projects[project][5] += amount

    def refund(self, donation, project, amount):
        self._donations[donation][4] += amount
        self._projects[project][6] += amount

    def add_project_entry(self, project, seq):
        self._project_entries.setdefault(project, []).append(seq)

    def set_policy(self, signing_window_seconds, seq):
        self._policy = Policy(signing_window_seconds, seq)

    def add_charity_entry(self, charity, seq):
        self._charity_entries.setdefault(charity, []).append(seq)

    def put_private(self, receipt, salt, fingerprint, personal):
        self._private[receipt] = (salt, fingerprint, personal)
