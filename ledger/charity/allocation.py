"""Fund tracing: which disbursements spent which donations (FIFO, as the genesis entry names).

:func:`allocate_fifo` is the one rule: a disbursement takes from the oldest
unspent donations of its project first.  The server calls it on its index
(:mod:`ledger.charity.books`) when it appends a disbursement; :func:`trace_fifo`
calls it while folding over the entries alone, which is what an auditor
recomputes.  The two must agree, and ``luodi audit`` checks that they do.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import Overspend
from ..log.entry import Entry


def allocate_fifo(unspent: Iterable[tuple[object, int]], amount: int) -> list[tuple[object, int]]:
    """Take ``amount`` from ``(donation, unspent)`` pairs, oldest first.

    Returns ``(donation, taken)`` pairs; raises :class:`Overspend` if the
    pairs do not hold enough.
    """
    takes = []
    left = amount
    for donation, available in unspent:
        if left == 0:
            break
        if available <= 0:
            continue
        take = min(available, left)
        takes.append((donation, take))
        left -= take
    if left:
        raise Overspend(f"needs {amount} minor units but only {amount - left} are unspent")
    return takes


@dataclass
class DonationTrace:
    receipt: str
    project: str
    currency: str
    amount: int
    spent: list[tuple[str, int]] = field(default_factory=list)  # (disbursement receipt, amount)
    refunded: int = 0

    @property
    def spent_total(self) -> int:
        return sum(a for _, a in self.spent)

    @property
    def unspent(self) -> int:
        return self.amount - self.spent_total - self.refunded


def trace_fifo(entries: Iterable[Entry]) -> dict[str, DonationTrace]:
    """Recompute every donation's allocation from the sequence of entries alone.

    A pure fold: memory grows with the number of donations, not entries.
    Entries are assumed valid (run whole-log verification first); a refund or
    disbursement the books could not cover raises :class:`Overspend`.
    """
    donations: dict[str, DonationTrace] = {}
    queues: dict[str, deque[DonationTrace]] = {}
    for entry in entries:
        body = entry.body
        if entry.kind == "donation":
            d = DonationTrace(entry.receipt, body["project"], body["currency"], body["amount"])
            donations[d.receipt] = d
            queues.setdefault(d.project, deque()).append(d)
        elif entry.kind == "disbursement":
            payload = body["payload"]
            queue = queues.setdefault(payload["project"], deque())
            for d, take in allocate_fifo(((d, d.unspent) for d in queue), payload["amount"]):
                d.spent.append((entry.receipt, take))
            while queue and queue[0].unspent == 0:
                queue.popleft()
        elif entry.kind == "refund":
            d = donations[body["donation"]]
            if body["amount"] > d.unspent:
                raise Overspend(f"refund at seq {entry.seq} exceeds the donation's unspent money")
            d.refunded += body["amount"]
    return donations


def pro_rata(traces: Iterable[DonationTrace]) -> dict[str, int]:
    """A report, not a rule: each donation's share, in minor units, of its
    project's spending if that spending were spread over all its donations in
    proportion to their amounts (largest-remainder rounding, so the shares of a
    project add up to exactly what it spent)."""
    by_project: dict[str, list[DonationTrace]] = {}
    for t in traces:
        by_project.setdefault(t.project, []).append(t)
    shares: dict[str, int] = {}
    for group in by_project.values():
        raised = sum(t.amount for t in group)
        spent = sum(t.spent_total for t in group)
        exact = [(t, t.amount * spent) for t in group]
        floor = {t.receipt: q // raised for t, q in exact}
        short = spent - sum(floor.values())
        for t, _ in sorted(exact, key=lambda tq: (-(tq[1] % raised), tq[0].receipt))[:short]:
            floor[t.receipt] += 1
        shares.update(floor)
    return shares
