"""Schema migrations, one folder per database: :mod:`migrations.sqlite` now,
and room for another database's beside it."""
