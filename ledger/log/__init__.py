"""The generic transparency log: it stores entries of kinds a :class:`~ledger.log.kinds.Registry`
names, and knows nothing of what they mean.

- pure, for any verifier: :mod:`.canonical` (RFC 8785), :mod:`.clock`,
  :mod:`.fields`, :mod:`.entry`, :mod:`.kinds`, :mod:`.merkle` (RFC 9162),
  :mod:`.note` and :mod:`.checkpoint` (C2SP), :mod:`.verify`;
- witnessing, for any verifier and for witnesses: :mod:`.cosignature`
  (C2SP tlog-cosignature), :mod:`.add_checkpoint` (tlog-witness's wire
  format), :mod:`.policy` (tlog-policy);
- the appending side: :mod:`.store` (the log-store protocol), :mod:`.hook`
  (what a personality runs inside an append), :mod:`.writer`,
  :mod:`.group_commit`, :mod:`.ledger`, :mod:`.keyfile`.

Nothing is imported here, so that importing one module loads only what it needs.
"""
