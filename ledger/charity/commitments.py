"""The hashes a donation entry holds in place of what must stay private.

Pure functions: the service computes them when it records a gift, and a
donor's receipt check (:mod:`ledger.charity.receipt_check`) recomputes the
donor commitment to show the gift is theirs.
"""

from __future__ import annotations

import hashlib


def donor_commitment(salt: bytes, donor_ref: str) -> str:
    """SHA-256(salt || donor reference), hex: lets a donor prove a gift is theirs."""
    return hashlib.sha256(salt + donor_ref.encode("utf-8")).hexdigest()


def payment_ref_hash(payment_ref: str) -> str:
    """SHA-256 of the payment reference, hex: a bank statement can be matched to it."""
    return hashlib.sha256(payment_ref.encode("utf-8")).hexdigest()
