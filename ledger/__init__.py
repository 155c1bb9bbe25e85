"""Luodi's domain core, in three parts that read top-down:

- :mod:`ledger.log`: a generic transparency log (entries, RFC 9162 Merkle
  tree, C2SP checkpoints, appends, proofs, verification).  It knows nothing
  of charities.
- :mod:`ledger.charity`: the personality on top of it (money, the charity
  entry kinds, the books' rules, fund tracing, the service, the audit).
- :mod:`ledger.stores`: storage drivers that implement the protocols of the
  other two (:mod:`ledger.stores.sqlite` now).

Nothing here imports Flask, and nothing is imported eagerly: an auditor's
verifier imports :mod:`ledger.log.merkle` without loading a database driver.
"""
