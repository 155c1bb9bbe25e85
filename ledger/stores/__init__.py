"""Storage drivers: each database is one folder implementing the log store
(:mod:`ledger.log.store`), the books store and the token store
(:mod:`ledger.charity.store`).  Only these drivers write SQL or import a
database module."""
