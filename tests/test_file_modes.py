"""The instance is private: its folder is 0700 and the database's files
(database, WAL, shared memory, append lock) 0600, whatever the umask; an
instance whose files or folder others may read is refused with one line."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from test_cli import refused, run

from api.instance import DB_NAME, init_instance, open_instance

pytestmark = pytest.mark.sqlite_only("the modes of luodi.sqlite and its WAL, shared-memory and lock files")

FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + ".lock")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """A umask that lets everyone read new files, as many systems have."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def runner():
    return CliRunner()


def test_init_makes_the_folder_and_every_database_file_private(tmp_path, open_umask):
    inst = tmp_path / "inst"
    cl = init_instance(inst).charity
    try:
        cl.ledger.append("note", {"text": "a write"})
        assert mode(inst) == 0o700
        assert {name: mode(inst / name) for name in FILES} == {name: 0o600 for name in FILES}
        assert os.umask(0o022) == 0o022  # the process's umask is given back
    finally:
        cl.stores.close()


def test_init_tightens_an_existing_folder_that_others_may_enter(tmp_path, runner, open_umask):
    inst = tmp_path / "inst"
    inst.mkdir(mode=0o755)
    assert mode(inst) == 0o755
    done = run(runner, "init", "--instance", str(inst))
    assert "made private (mode 755 -> 700)" in done.output
    assert mode(inst) == 0o700
    again = run(runner, "init", "--instance", str(inst))
    assert "made private" not in again.output


@pytest.mark.parametrize("name", FILES)
def test_a_database_file_others_may_read_is_refused(tmp_path, runner, name):
    inst = tmp_path / "inst"
    cl = init_instance(inst).charity
    cl.ledger.append("note", {"text": "a write"})  # every file exists while it is open
    (inst / name).chmod(0o644)
    try:
        line = refused(runner, "status", "--instance", str(inst))
        assert f"{inst / name} (mode 644)" in line and "chmod 600" in line
        for command in (["token", "list"], ["db", "upgrade"], ["init"]):
            assert "chmod 600" in refused(runner, *command, "--instance", str(inst))
    finally:
        cl.stores.close()


def test_a_folder_others_may_enter_is_refused_once_it_holds_a_database(tmp_path, runner):
    inst = tmp_path / "inst"
    init_instance(inst).charity.stores.close()
    inst.chmod(0o755)
    line = refused(runner, "status", "--instance", str(inst))
    assert "open to others (mode 755)" in line and f"chmod 700 {inst}" in line
    with pytest.raises(Exception, match="chmod 700"):
        open_instance(inst, with_key=False)
