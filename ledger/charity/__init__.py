"""The charity personality on top of the log (as Trillian's personalities sit on its log):

- what entries mean: :mod:`.money` (ISO 4217), :mod:`.kinds` (the entry kinds and
  their :func:`~.kinds.registry`), :mod:`.payload` (what charities sign);
- the rules that need the log so far: :mod:`.books` (on the books-store protocol
  of :mod:`.store`), applied by :class:`~.books.BooksHook` inside every append;
  :mod:`.allocation` (FIFO);
- the calls donors, charities and auditors make: :mod:`.service`,
  :mod:`.receipts`, :mod:`.audit`, :mod:`.tokens`, :mod:`.demo`;
- :mod:`.memory`, a books store in plain Python for the audit's replay.
"""
