"""A demo ledger: a few hundred public notices modelled on real giving campaigns.

Until the charity entry kinds land, the demo writes operator ``note`` entries
in several batches, so the log has many checkpoints to prove against.
"""

from __future__ import annotations

import random

from .log import Ledger

CAMPAIGNS = [
    "99 Giving Day matching campaign",
    "Online teaching for rural schools in Guizhou",
    "Livestream farm-produce sales for poverty relief in Gansu",
    "Winter relief: coats and heating for families in need",
]
EVENTS = [
    "received donation batch #{n} ({count} gifts) for {campaign}",
    "published invoice hashes for purchase order #{n} of {campaign}",
    "posted monthly report #{n} for {campaign}",
    "corrected the payee name on disbursement #{n} of {campaign}",
]


def seed_demo(ledger: Ledger, entries: int = 300, batches: int = 6, seed: int = 2026) -> int:
    """Append ``entries`` demo notes in ``batches`` batches; return how many were written."""
    rng = random.Random(seed)
    per = max(1, entries // batches)
    written = 0
    n = 0
    while written < entries:
        batch = []
        for _ in range(min(per, entries - written)):
            n += 1
            text = rng.choice(EVENTS).format(n=n, count=rng.randint(20, 900), campaign=rng.choice(CAMPAIGNS))
            batch.append(("note", {"text": text}))
        ledger.append_batch(batch)
        written += len(batch)
    return written
