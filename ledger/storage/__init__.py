"""Storage backends behind one interface (:class:`Storage`)."""

from .base import AppendTransaction, Storage
from .sqlite import SQLiteStorage

__all__ = ["AppendTransaction", "Storage", "SQLiteStorage"]
