"""The ``luodi`` command line, driven through click's CliRunner.

On SQLite (the default database); luodi init --database and the commands on a PostgreSQL
instance are tests/test_database_choice.py; the storage, service, API and end-to-end
tests run on every backend.
"""

from __future__ import annotations

import base64
import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from api.cli import main
from api.instance import DB_NAME, KEY_NAME, open_instance
from ledger.log.checkpoint import open_checkpoint
from ledger.log.note import Signer, Verifier

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def runner():
    return CliRunner()


def run(runner, *args, env=None, ok=True):
    result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def refused(runner, *args, env=None):
    """Run a command that must fail with one 'Error: ...' line on stderr and nothing on stdout."""
    result = runner.invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def verifier_of(init_output: str) -> Verifier:
    m = re.search(r"^verifier: (\S+)$", init_output, re.M)
    assert m, init_output
    return Verifier.from_string(m.group(1))


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(path.rglob("*"))}


@pytest.fixture
def demo_instance(tmp_path, runner):
    inst = tmp_path / "inst"
    init = run(runner, "init", "--instance", str(inst))
    run(runner, "demo", "--instance", str(inst))
    return inst, verifier_of(init.output)


def entry_count(inst: Path) -> int:
    with closing(sqlite3.connect(inst / DB_NAME)) as conn:
        return conn.execute("SELECT count(*) FROM entries").fetchone()[0]


# -- the happy paths -------------------------------------------------------------------


def test_init_creates_and_is_safe_to_rerun(tmp_path, runner):
    inst = tmp_path / "inst"
    first = run(runner, "init", "--instance", str(inst), "--origin", "gifts.example/log")
    assert "log key:  created" in first.output
    assert "migrations applied: 0001_initial" in first.output
    assert re.search(r"^entries:\s+2$", first.output, re.M)
    assert re.search(r"^policy:\s+signing window 600 s \(seq 1\)$", first.output, re.M)
    v = verifier_of(first.output)
    assert v.name == "gifts.example/log"
    assert os.stat(inst / KEY_NAME).st_mode & 0o777 == 0o600
    key = (inst / KEY_NAME).read_bytes()

    second = run(runner, "init", "--instance", str(inst))
    assert "kept the existing key" in second.output
    assert "none (up to date)" in second.output
    assert verifier_of(second.output) == v
    assert (inst / KEY_NAME).read_bytes() == key
    assert entry_count(inst) == 2


def test_db_upgrade(tmp_path, runner):
    inst = tmp_path / "inst"
    run(runner, "init", "--instance", str(inst))
    result = run(runner, "db", "upgrade", "--instance", str(inst))
    assert result.output.strip() == "database is up to date"
    # On a folder without a database, it creates the schema (and only the schema).
    bare = tmp_path / "bare"
    bare.mkdir()
    result = run(runner, "db", "upgrade", "--instance", str(bare))
    assert result.output.strip() == (
        "applied: 0001_initial, 0002_books, 0003_tokens_and_project_entries, 0004_books_without_rowid, "
        "0005_intake_keys_per_charity, 0006_policy, 0007_charity_entries, 0008_token_rates, 0009_cosigned_checkpoints"
    )
    assert entry_count(bare) == 0
    assert not (bare / KEY_NAME).exists()


def test_demo_seeds_once(tmp_path, runner):
    inst = tmp_path / "inst"
    first = run(runner, "demo", "--instance", str(inst))
    size = entry_count(inst)
    with closing(sqlite3.connect(inst / DB_NAME)) as conn:
        kinds = {r[0] for r in conn.execute("SELECT json_extract(canonical, '$.kind') FROM entries")}
        donations = conn.execute(
            "SELECT count(*) FROM entries WHERE json_extract(canonical, '$.kind') = 'donation'"
        ).fetchone()[0]
    assert donations == 400
    assert {"charity.registered", "project.opened", "donation", "disbursement", "refund"} <= kinds
    assert "│ entries" in first.output and str(size) in first.output
    assert re.search(r"│ audit\s+│ ok: the books recomputed", first.output), first.output
    keys = sorted((inst / "demo-keys").iterdir())
    assert len(keys) == 9 and all(k.stat().st_mode & 0o777 == 0o600 for k in keys)
    second = run(runner, "demo", "--instance", str(inst), "--donations", "50")
    assert entry_count(inst) == size
    assert str(size) in second.output


def test_demo_does_not_seed_a_log_that_has_entries(tmp_path, runner):
    inst = tmp_path / "inst"
    run(runner, "init", "--instance", str(inst))
    charity = open_instance(inst)
    charity.ledger.append("note", {"text": "already in use"})
    charity.stores.close()
    run(runner, "demo", "--instance", str(inst), "--donations", "50")
    assert entry_count(inst) == 3


def test_status(demo_instance, runner):
    inst, v = demo_instance
    out = run(runner, "status", "--instance", str(inst)).output
    n = entry_count(inst)
    assert re.search(rf"entries\s*│\s*{n}\b", out), out
    assert "localhost/luodi" in out
    assert "latest checkpoint:" in out
    note = out.split("latest checkpoint:\n", 1)[1]
    assert open_checkpoint(note, v).size == n


def test_verify_ok(demo_instance, runner):
    inst, v = demo_instance
    out = run(runner, "verify", "--instance", str(inst)).output
    assert out.count("\n") == 1
    assert out.startswith(f"ok: {entry_count(inst)} entries, ")
    assert f"log key {v.to_string()}" in out
    cp = open_checkpoint(run(runner, "checkpoint", "--instance", str(inst)).output, v)
    assert f"root {base64.b64encode(cp.root).decode()}" in out
    pinned = run(runner, "verify", "--instance", str(inst), "--log-key", v.to_string()).output
    assert pinned == out


def test_checkpoint_opens_with_the_init_verifier(demo_instance, runner):
    inst, v = demo_instance
    note = run(runner, "checkpoint", "--instance", str(inst)).output
    cp = open_checkpoint(note, v)
    assert (cp.origin, cp.size) == ("localhost/luodi", entry_count(inst))
    with pytest.raises(Exception):
        open_checkpoint(note, Signer.generate("localhost/luodi").verifier)


def test_instance_option_env_var_and_default(tmp_path, runner, monkeypatch):
    by_env = tmp_path / "by-env"
    run(runner, "init", env={"LUODI_INSTANCE": str(by_env)})
    assert (by_env / KEY_NAME).exists()
    out = run(runner, "verify", env={"LUODI_INSTANCE": str(by_env)}).output
    assert out.startswith("ok: 2 entries")
    # The option wins over the environment.
    by_opt = tmp_path / "by-opt"
    run(runner, "init", "--instance", str(by_opt), env={"LUODI_INSTANCE": str(by_env)})
    assert (by_opt / KEY_NAME).exists()
    assert open_checkpoint(
        run(runner, "checkpoint", env={"LUODI_INSTANCE": str(by_opt)}).output,
        Signer.from_string((by_opt / KEY_NAME).read_text()).verifier,
    ).size == 2
    # Without either, ./instance.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    run(runner, "init", env={"LUODI_INSTANCE": None})
    assert (cwd / "instance" / KEY_NAME).exists()
    assert run(runner, "status", env={"LUODI_INSTANCE": None}).exit_code == 0


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["verify"], ["checkpoint"], ["db", "upgrade"]])
def test_missing_instance_refused_and_nothing_written(tmp_path, runner, command):
    before = tree(tmp_path)
    line = refused(runner, *command, "--instance", str(tmp_path / "missing"))
    assert "luodi init" in line
    assert tree(tmp_path) == before
    # Same through the environment variable.
    line = refused(runner, *command, env={"LUODI_INSTANCE": str(tmp_path / "missing")})
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", [["status"], ["verify"], ["checkpoint"]])
def test_folder_without_database_refused_and_nothing_written(tmp_path, runner, command):
    inst = tmp_path / "inst"
    inst.mkdir()
    line = refused(runner, *command, "--instance", str(inst))
    assert "no database" in line
    assert list(inst.iterdir()) == []


@pytest.mark.parametrize("origin", ["bad origin", "a+b", ""])
def test_init_bad_origin_refused_and_nothing_written(tmp_path, runner, origin):
    line = refused(runner, "init", "--instance", str(tmp_path / "inst"), "--origin", origin)
    assert "origin" in line
    assert not (tmp_path / "inst").exists()


def test_init_other_origin_on_existing_instance_refused(tmp_path, runner):
    inst = tmp_path / "inst"
    run(runner, "init", "--instance", str(inst), "--origin", "one.example/log")
    before = tree(inst)
    line = refused(runner, "init", "--instance", str(inst), "--origin", "two.example/log")
    assert "one.example/log" in line
    assert tree(inst) == before


def test_key_with_open_mode_refused(demo_instance, runner):
    inst, _ = demo_instance
    os.chmod(inst / KEY_NAME, 0o644)
    line = refused(runner, "init", "--instance", str(inst))
    assert "chmod 600" in line
    assert "PRIVATE" not in line


def test_not_a_database_refused_with_one_line(tmp_path, runner):
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / DB_NAME).write_bytes(b"this is not a sqlite database, just text" * 100)
    for command in (["status"], ["verify"]):
        refused(runner, *command, "--instance", str(inst))


def _tamper(inst: Path, seq: int) -> None:
    with closing(sqlite3.connect(inst / DB_NAME, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER entries_no_update")
        data = conn.execute("SELECT canonical FROM entries WHERE seq = ?", (seq,)).fetchone()[0]
        i = data.index(b'"channel":"') + len(b'"channel":"')
        changed = data[:i] + (b"X" if data[i : i + 1] != b"X" else b"Y") + data[i + 1 :]
        conn.execute("UPDATE entries SET canonical = ? WHERE seq = ?", (changed, seq))


def test_verify_reports_tampering_with_seq(demo_instance, runner):
    inst, v = demo_instance
    _tamper(inst, 123)
    line = refused(runner, "verify", "--instance", str(inst))
    assert re.match(r"Error: seq 123( \(receipt [0-9a-f]{64}\))?: ", line), line
    # status re-verifies too, and refuses.
    line = refused(runner, "status", "--instance", str(inst))
    assert "seq 123" in line


def test_verify_with_another_pinned_key(demo_instance, runner):
    inst, _ = demo_instance
    other = Signer.generate("localhost/luodi").verifier.to_string()
    line = refused(runner, "verify", "--instance", str(inst), "--log-key", other)
    assert re.match(r"Error: seq 0( \(receipt [0-9a-f]{64}\))?: ", line), line
    line = refused(runner, "verify", "--instance", str(inst), "--log-key", "not-a-key")
    assert "key" in line


def test_verify_needs_no_private_key(demo_instance, runner):
    inst, v = demo_instance
    (inst / KEY_NAME).unlink()
    n = entry_count(inst)
    assert run(runner, "verify", "--instance", str(inst)).output.startswith(f"ok: {n} entries")
    assert open_checkpoint(run(runner, "checkpoint", "--instance", str(inst)).output, v).size == n
    assert str(n) in run(runner, "status", "--instance", str(inst)).output


def _tokens(inst: Path) -> list[tuple]:
    with closing(sqlite3.connect(inst / DB_NAME)) as conn:
        return conn.execute("SELECT token_hash, role, charity FROM tokens ORDER BY token_hash").fetchall()


@pytest.mark.parametrize("charity", ["no-such-charity", "Harvest-Aid", "harvest-aid "])
def test_token_for_a_charity_that_does_not_exist_refused_and_nothing_stored(demo_instance, runner, charity):
    inst, _ = demo_instance
    before = _tokens(inst)
    line = refused(runner, "token", "create", "--instance", str(inst), "--role", "intake", "--charity", charity)
    assert line == f"Error: no charity {charity!r}: register it before making a token for it"
    assert _tokens(inst) == before
    # A charity the log has registered gets its token.
    made = run(runner, "token", "create", "--instance", str(inst), "--role", "intake", "--charity", "harvest-aid")
    assert re.fullmatch(r"luodi_[A-Za-z0-9_-]{43}", made.output.strip())
    assert [row[1:] for row in _tokens(inst) if row not in before] == [("intake", "harvest-aid")]


# -- docs --------------------------------------------------------------------------------


def _commands(group: click.Group, prefix=("luodi",)):
    for name, cmd in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)


def test_every_command_has_help_and_is_in_the_readme(runner):
    readme = README.read_text()
    commands = list(_commands(main))
    names = {" ".join(p) for p, _ in commands}
    assert {"luodi init", "luodi db", "luodi db upgrade", "luodi demo", "luodi status", "luodi verify", "luodi checkpoint"} <= names
    assert (main.help or "").strip()
    for path, cmd in commands:
        assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
        if isinstance(cmd, click.Group):
            assert any(" ".join(p).startswith(" ".join(path) + " ") for p, _ in commands)
            continue
        assert f"`{' '.join(path)}" in readme, f"{' '.join(path)} is not in README.md"
        # The charity's own tools (keygen, disburse) run on the charity's machine, a donor's
        # receipt check (verify-receipt) on the donor's, and a settlement import (import) on the
        # payment provider's, with no instance; a database copy (db copy) works on a file and a URL;
        # a witness (witness ...) runs on its own operator's machine with its own key and file.
        if path[-1] not in ("keygen", "disburse", "verify-receipt", "import", "copy") and path[1] != "witness":
            assert "--instance" in [opt for p in cmd.params for opt in p.opts], f"{' '.join(path)} lacks --instance"
        for param in cmd.params:
            if isinstance(param, click.Option) and param.name != "instance":
                assert any(opt in readme for opt in param.opts), param.opts
        result = runner.invoke(main, [*path[1:], "--help"])
        assert result.exit_code == 0
        assert cmd.help.split("\n")[0].strip()[:30] in " ".join(result.output.split())
    assert "LUODI_INSTANCE" in readme


def test_version(runner):
    result = run(runner, "--version")
    assert re.search(r"\d+\.\d+\.\d+", result.output)


# -- the log's policy -------------------------------------------------------------------------------


def test_init_records_the_signing_window_it_is_given(tmp_path, runner):
    inst = tmp_path / "inst"
    out = run(runner, "init", "--instance", str(inst), "--signing-window", "90").output
    assert re.search(r"^policy:\s+signing window 90 s \(seq 1\)$", out, re.M)
    cl = open_instance(inst, with_key=False)
    try:
        assert cl.ledger.entry(1).body == {"signing_window_seconds": 90} and cl.window_seconds == 90
    finally:
        cl.stores.close()


@pytest.mark.parametrize("window", ["0", "86401", "ten", "-5"])
def test_a_signing_window_out_of_range_is_a_usage_error_and_writes_nothing(tmp_path, runner, window):
    inst = tmp_path / "inst"
    result = runner.invoke(main, ["init", "--instance", str(inst), "--signing-window", window])
    assert result.exit_code == 2 and "--signing-window" in result.output
    assert not inst.exists()

