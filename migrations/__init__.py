"""Schema migrations, one folder per database: :mod:`migrations.sqlite` for the
embedded default and :mod:`migrations.postgres` for the server database."""
