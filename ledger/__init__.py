"""Luodi's domain core: entries, hashing, the Merkle tree, checkpoints, storage and verification.

Nothing here imports Flask; ``api/`` is the thin HTTP edge around it.
"""

from .entry import Entry
from .errors import LuodiError
from .log import Ledger

__all__ = ["Entry", "Ledger", "LuodiError"]
