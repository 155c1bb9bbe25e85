"""Choosing the database: ``luodi init --database postgresql://…`` records the URL in
the instance folder (``database.url``, mode 0600), ``LUODI_DATABASE_URL`` overrides it,
SQLite stays the default, and no message ever shows a password.

The refusals need no server; the tests that open a PostgreSQL database use the
test server (``postgres_server``, see tests/backends.py), each in a schema of
its own.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from backends import PostgresBackend
from click.testing import CliRunner
from test_cli import refused, run

from api.cli import main
from api.database_url import ENV_VAR, URL_NAME, database_url, redact
from api.instance import DB_NAME, KEY_NAME, init_instance, open_instance, open_stores, upgrade_database
from ledger.errors import InstanceError

SECRET = "s3cret-Pa55"


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)  # whatever the caller's shell says
    return CliRunner()


@pytest.fixture
def schema(postgres_server):
    """A URL of the test server with a schema of its own, dropped afterwards."""
    pg = PostgresBackend(postgres_server)
    yield pg.target("choice")
    pg.drop()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def record(folder: Path, url: str, file_mode: int = 0o600) -> Path:
    """An instance folder that records ``url`` (as ``luodi init --database`` leaves it)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / URL_NAME
    path.write_text(url + "\n")
    path.chmod(file_mode)
    return path


# -- redaction -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"postgresql://luodi:{SECRET}@db.example:5432/luodi", "postgresql://luodi:***@db.example:5432/luodi"),
        (f"postgres://luodi:{SECRET}@db.example/luodi?sslmode=require", "postgres://luodi:***@db.example/luodi?sslmode=require"),
        ("postgresql://luodi:p%40ss%2Fw0rd@db.example/luodi", "postgresql://luodi:***@db.example/luodi"),
        (f"postgresql://luodi:{SECRET}@h1:5432,h2:5433/luodi", "postgresql://luodi:***@h1:5432,h2:5433/luodi"),
        (f"postgresql://db.example/luodi?user=luodi&password={SECRET}", "postgresql://db.example/luodi?user=luodi&password=***"),
        (f"postgresql:///luodi?password={SECRET}&host=/run/pg", "postgresql:///luodi?password=***&host=/run/pg"),
        (f"postgresql://:{SECRET}@/luodi", "postgresql://:***@/luodi"),
        (f"host=db.example password={SECRET} dbname=luodi", "host=db.example password=*** dbname=luodi"),
        ("postgresql:///luodi_test", "postgresql:///luodi_test"),
        ("postgresql://luodi@db.example/luodi", "postgresql://luodi@db.example/luodi"),
        ("postgresql://db.example:5432/luodi", "postgresql://db.example:5432/luodi"),
    ],
)
def test_redact_hides_every_password_and_keeps_the_rest(url, shown):
    assert redact(url) == shown
    assert SECRET not in redact(url)


# -- refusals that need no server ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", [f"mysql://luodi:{SECRET}@db.example/luodi", "sqlite:///instance/luodi.sqlite", "luodi.sqlite", "", "postgresql"]
)
def test_init_refuses_a_database_that_is_not_a_postgresql_url_with_one_line_and_exit_2(tmp_path, runner, url):
    inst = tmp_path / "inst"
    result = runner.invoke(main, ["init", "--instance", str(inst), "--database", url])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: --database takes a PostgreSQL URL (postgresql://… or postgres://…)")
    assert SECRET not in result.output
    assert not inst.exists()  # nothing was created


def test_a_recorded_url_that_others_may_read_is_refused_by_every_command(tmp_path, runner):
    inst = tmp_path / "inst"
    record(inst, f"postgresql://luodi:{SECRET}@127.0.0.1:1/luodi", 0o640)
    for command in (["status"], ["verify"], ["checkpoint"], ["token", "list"], ["db", "upgrade"], ["init"]):
        line = refused(runner, *command, "--instance", str(inst))
        assert f"{inst / URL_NAME} is readable by others (mode 640); chmod 600 it" in line, (command, line)
        assert SECRET not in line
    assert sorted(p.name for p in inst.iterdir()) == [URL_NAME]  # no key, no database file


def test_a_recorded_file_without_a_postgresql_url_is_refused_without_showing_it(tmp_path, runner):
    inst = tmp_path / "inst"
    record(inst, f"mysql://luodi:{SECRET}@db.example/luodi")
    line = refused(runner, "status", "--instance", str(inst))
    assert f"{inst / URL_NAME} is not a PostgreSQL URL" in line
    assert SECRET not in line and "mysql://luodi:***@db.example/luodi" in line


def test_the_environment_overrides_the_recorded_url(tmp_path, monkeypatch):
    inst = tmp_path / "inst"
    record(inst, "postgresql://recorded.example/luodi")
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert database_url(inst) == "postgresql://recorded.example/luodi"
    monkeypatch.setenv(ENV_VAR, "postgres://env.example/luodi")
    assert database_url(inst) == "postgres://env.example/luodi"
    monkeypatch.setenv(ENV_VAR, "")  # empty is unset
    assert database_url(inst) == "postgresql://recorded.example/luodi"
    monkeypatch.setenv(ENV_VAR, f"mysql://luodi:{SECRET}@db.example/luodi")
    with pytest.raises(InstanceError, match=f"{ENV_VAR} is not a PostgreSQL URL") as info:
        database_url(inst)
    assert SECRET not in info.value.detail


def test_without_a_url_the_instance_is_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    result = init_instance(tmp_path / "inst")
    result.charity.stores.close()
    assert database_url(tmp_path / "inst") is None
    assert (tmp_path / "inst" / DB_NAME).is_file()
    assert not (tmp_path / "inst" / URL_NAME).exists()


def test_init_refuses_a_url_other_than_the_recorded_one(tmp_path, runner):
    inst = tmp_path / "inst"
    path = record(inst, f"postgresql://luodi:{SECRET}@one.example/luodi")
    line = refused(runner, "init", "--instance", str(inst), "--database", "postgresql://two.example/luodi")
    assert "this instance's database is postgresql://luodi:***@one.example/luodi" in line
    assert SECRET not in line
    assert path.read_text() == f"postgresql://luodi:{SECRET}@one.example/luodi\n"
    assert sorted(p.name for p in inst.iterdir()) == [URL_NAME]


def test_init_refuses_to_move_a_sqlite_instance_to_postgresql(tmp_path, runner):
    inst = tmp_path / "inst"
    run(runner, "init", "--instance", str(inst))
    before = {p.name: p.read_bytes() for p in inst.iterdir()}
    line = refused(runner, "init", "--instance", str(inst), "--database", f"postgresql://luodi:{SECRET}@db.example/luodi")
    assert f"this instance's database is {inst / DB_NAME}: it cannot move to postgresql://luodi:***@db.example/luodi" in line
    assert SECRET not in line
    assert {p.name: p.read_bytes() for p in inst.iterdir()} == before


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path, runner):
    inst = tmp_path / "inst"
    record(inst, f"postgresql://luodi:{SECRET}@127.0.0.1:1/luodi?connect_timeout=2")
    (inst / KEY_NAME).write_text("")  # never read: the database is opened first
    result = runner.invoke(main, ["status", "--instance", str(inst)])
    assert result.exit_code == 1, result.output
    assert SECRET not in result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr


# -- on a PostgreSQL database ----------------------------------------------------------------------


def test_init_records_the_url_0600_and_every_command_reads_it(tmp_path, runner, schema):
    inst = tmp_path / "inst"
    out = run(runner, "init", "--instance", str(inst), "--database", schema).output
    assert f"database: {redact(schema)}\n" in out
    url_file = inst / URL_NAME
    assert url_file.read_text() == schema + "\n"
    assert mode(url_file) == 0o600
    assert mode(inst) == 0o700 and mode(inst / KEY_NAME) == 0o600
    assert not (inst / DB_NAME).exists()  # nothing of SQLite
    # Every later command finds the database through the folder alone.
    assert "ok: 2 entries" in run(runner, "verify", "--instance", str(inst)).output
    token = run(runner, "token", "create", "--instance", str(inst), "--role", "admin").output.strip()
    assert token.startswith("luodi_")
    assert "admin" in run(runner, "token", "list", "--instance", str(inst)).output
    assert run(runner, "db", "upgrade", "--instance", str(inst)).output.strip() == "database is up to date"
    again = run(runner, "init", "--instance", str(inst)).output  # again, without --database: the recorded one
    assert "kept the existing key" in again and "entries:  2" in again
    assert upgrade_database(inst) == []
    cl = open_instance(inst, with_key=False)
    try:
        assert cl.ledger.size() == 2
    finally:
        cl.stores.close()
    assert not (inst / DB_NAME).exists()


def test_init_with_the_environment_records_nothing_and_opens_with_it(tmp_path, monkeypatch, schema):
    inst = tmp_path / "inst"
    monkeypatch.setenv(ENV_VAR, schema)
    result = init_instance(inst)
    result.charity.stores.close()
    assert not (inst / URL_NAME).exists() and not (inst / DB_NAME).exists()
    stores = open_stores(inst)
    try:
        assert stores.log.size() == 2
    finally:
        stores.close()
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(InstanceError, match="no database"):  # without it, the folder names no database
        open_stores(inst)


def test_the_environment_overrides_the_recorded_url_when_opening(tmp_path, monkeypatch, postgres_server):
    pg = PostgresBackend(postgres_server)
    try:
        first, second = pg.target("first"), pg.target("second")
        monkeypatch.delenv(ENV_VAR, raising=False)
        a = init_instance(tmp_path / "a", database=first)
        a.ledger.append("note", {"text": "only in the first"})
        a.charity.stores.close()
        monkeypatch.setenv(ENV_VAR, second)
        b = init_instance(tmp_path / "b")  # the same key name, its own log in the second schema
        b.charity.stores.close()
        # Folder a records the first; with the environment naming the second, a opens the second.
        cl = open_instance(tmp_path / "a", with_key=False)
        try:
            assert cl.ledger.size() == 2
        finally:
            cl.stores.close()
        monkeypatch.delenv(ENV_VAR)
        cl = open_instance(tmp_path / "a", with_key=False)
        try:
            assert cl.ledger.size() == 3
        finally:
            cl.stores.close()
    finally:
        pg.drop()


def test_init_on_a_database_that_holds_a_log_without_its_key_is_refused(tmp_path, runner, schema):
    run(runner, "init", "--instance", str(tmp_path / "first"), "--database", schema)
    other = tmp_path / "other"
    line = refused(runner, "init", "--instance", str(other), "--database", schema)
    assert f"{redact(schema)} holds a log but its key {other / KEY_NAME} is missing" in line
    assert not other.exists()  # no folder, no key, no URL recorded


def test_a_password_in_the_url_is_never_printed(tmp_path, runner, schema):
    if not schema.startswith("postgresql:///"):
        pytest.skip("needs a server on the local socket, which takes no password (the default URL)")
    user = os.environ.get("PGUSER") or os.environ.get("USER") or "root"
    with_password = schema.replace("postgresql:///", f"postgresql://{user}:{SECRET}@/", 1)
    inst = tmp_path / "inst"
    out = run(runner, "init", "--instance", str(inst), "--database", with_password).output
    assert SECRET not in out
    assert f"postgresql://{user}:***@/" in out
    assert (inst / URL_NAME).read_text() == with_password + "\n"  # kept, 0600, for the server to use
    for command in (["status"], ["verify"], ["checkpoint"], ["token", "list"], ["db", "upgrade"], ["init"]):
        result = run(runner, *command, "--instance", str(inst))
        assert SECRET not in result.output, command
