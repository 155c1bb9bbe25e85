"""``luodi db copy``: an instance's log, books, private rows and tokens moved to another
database through the storage protocols alone (:mod:`ledger.charity.transfer`).

The source is a SQLite file, as the command takes it.  Every test runs on each
backend (``--backend``) as its target: a SQLite file, or a PostgreSQL schema of
its own, through the same code; that the copy works between two different
drivers is what shows it speaks only the protocols.
"""

from __future__ import annotations

import base64
import shutil
import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from api_helpers import PROJECT
from copy_helpers import audited, contents, rich_instance
from backends import open_target
from test_e2e_gunicorn import LUODI, clean_env, luodi, one_line_error

from api.instance import open_database_copy, open_instance
from ledger.charity.demo import seed_demo
from ledger.charity.kinds import registry
from ledger.charity.store import Stores
from ledger.charity.tokens import create_token
from ledger.charity.transfer import check_source, copy_instance
from ledger.errors import InstanceError, LogCorrupted
from ledger.log.cosignature import Cosigner, merge_signatures, verify_cosignatures
from ledger.log.keyfile import read_key_file
from ledger.log.note import parse_note
from ledger.log.ledger import Ledger
from ledger.log.verify import VerifyReport
from ledger.stores.sqlite import open_sqlite


class Target:
    """An empty database to copy into, on the test's backend: ``spec`` is what ``--to`` takes."""

    def __init__(self, backend, name: str = "target"):
        self.kind = backend.name
        self.spec = str(backend.target(name))
        self.opened: list[Stores] = []

    def open(self) -> Stores:
        stores = open_target(self.spec, upgrade=True)
        self.opened.append(stores)
        return stores

    def close(self) -> None:
        for stores in self.opened:
            stores.close()


@pytest.fixture
def make_target(backend):
    made: list[Target] = []

    def factory(name: str = "target") -> Target:
        made.append(Target(backend, name))
        return made[-1]

    yield factory
    for target in made:  # before the backend drops its schemas
        target.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    return rich_instance(tmp_path_factory.mktemp("copy-source"))


@pytest.fixture
def source(built, tmp_path) -> tuple[Path, dict]:
    """A private copy of the rich instance folder (tests may change it)."""
    path = tmp_path / "source"
    path.mkdir(mode=0o700)
    for name in ("luodi.sqlite", "log.key"):
        shutil.copy2(built[0] / name, path / name)
    return path, built[1]


def src_stores(path: Path) -> Stores:
    return open_database_copy(path / "luodi.sqlite")


# -- the copy ------------------------------------------------------------------------------------


def test_the_copy_holds_everything_and_audits_with_the_same_root(source, make_target):
    path, known = source
    src, target = src_stores(path), make_target()
    dst = target.open()
    try:
        checked = check_source(src)
        report = copy_instance(src, dst, batch=20)
        assert (report.size, report.resumed_from, report.copied) == (checked.size, 0, checked.size)
        assert report.root == checked.root and report.checkpoint == src.log.checkpoint()[1]
        assert report.transactions == len(report.sizes) > 2 and report.sizes[-1] == checked.size
        assert report.tokens_added == 4 and (report.tokens_removed, report.privates_erased) == (0, 0)
        theirs, ours = contents(dst), contents(src)
        assert theirs == ours  # rows, checkpoints, every derived table, private rows, tokens
        assert report.privates == len(ours["privates"]) > 0
        assert known["erased"] not in {p[0].hex() for p in ours["privates"]}
        assert audited(dst) == audited(src) == (checked.size, checked.root)
    finally:
        src.close()


def test_the_witnesses_cosigned_checkpoints_are_copied_verbatim_once(source, make_target):
    path, _ = source
    witness = Cosigner.generate("witness.example/w1")
    with closing(open_sqlite(path / "luodi.sqlite")) as writable:
        kept = list(writable.log.iter_checkpoints())[-3:-1]
        for size, note in kept:
            assert writable.log.add_cosigned_checkpoint(size, merge_signatures(note, witness.cosign(parse_note(note).text)))
    src, target = src_stores(path), make_target()
    try:
        report = copy_instance(src, target.open(), batch=50)
        assert report.cosigned == 2
        copied = list(target.open().log.iter_cosigned_checkpoints())
        assert copied == list(src.log.iter_cosigned_checkpoints()) and [s for s, _ in copied] == [s for s, _ in kept]
        assert all(witness.verifier in verify_cosignatures(note, [witness.verifier]) for _, note in copied)
        assert copy_instance(src, target.open()).cosigned == 0  # run again: nothing twice
    finally:
        src.close()


def test_every_transaction_ends_at_a_checkpoint_of_the_source(source, make_target):
    path, _ = source
    src, dst = src_stores(path), make_target().open()
    try:
        report = copy_instance(src, dst, batch=1)  # one source commit per transaction
        sizes = [size for size, _ in src.log.iter_checkpoints()]
        assert report.sizes == sizes and report.transactions == len(sizes)
        # The batch intake's seven donations were one commit: they stay one.
        assert max(b - a for a, b in zip(sizes, sizes[1:])) == 7
    finally:
        src.close()


def test_an_interrupted_copy_goes_on_from_where_it_stopped(source, make_target):
    path, _ = source
    src, target = src_stores(path), make_target()
    dst = target.open()

    class Stop(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise Stop

    calls: list[int] = []
    try:
        with pytest.raises(Stop):
            copy_instance(src, dst, batch=40, progress=stop_after_two)
        held = calls[-1]
        assert 0 < held < src.log.size()
        # What the target holds is a whole log: the source's, cut at its checkpoint of that size.
        assert audited(dst)[0] == held
        assert dst.log.checkpoint() == src.log.checkpoint(held)
        assert dst.tokens.all() == []  # tokens come after the log
        report = copy_instance(src, dst, batch=40)
        assert report.resumed_from == held and report.copied == report.size - held
        assert contents(dst) == contents(src)
        assert audited(dst) == audited(src)
        again = copy_instance(src, dst)  # a finished copy, run again: nothing to do
        assert (again.resumed_from, again.copied, again.transactions, again.tokens_added) == (report.size, 0, 0, 0)
    finally:
        src.close()


def test_erasures_and_revocations_since_an_earlier_run_reach_the_target(source, make_target):
    path, known = source
    src, dst = src_stores(path), make_target().open()
    try:
        copy_instance(src, dst)
    finally:
        src.close()
    cl = open_instance(path)
    try:
        assert cl.erase_personal_data(known["batch"][1])
        token_id = next(iter(cl.stores.tokens.all()))[0]
        assert cl.stores.tokens.remove(token_id)
    finally:
        cl.stores.close()
    src = src_stores(path)
    try:
        report = copy_instance(src, dst)
        assert (report.copied, report.privates_erased, report.tokens_removed) == (0, 1, 1)
        assert contents(dst) == contents(src)
    finally:
        src.close()


def test_a_copy_run_again_after_the_source_grew_copies_only_the_new_commits(source, make_target):
    """Copy while the old server still serves, stop it, copy again: the second run
    writes only what came since (the way to move with a short stop)."""
    path, _ = source
    dst = make_target().open()
    with closing(src_stores(path)) as src:
        first = copy_instance(src, dst)
    cl = open_instance(path)
    try:
        for n in range(3):
            cl.record_donation(PROJECT, "5.00", "cash", payment_ref=f"LATE-{n}", donor_ref=f"late-{n}",
                               value_date="2026-11-30", intake_key=f"late-intake-{n}")
        create_token(cl.stores.tokens, "intake")
    finally:
        cl.stores.close()
    with closing(src_stores(path)) as src:
        second = copy_instance(src, dst)
        assert (second.resumed_from, second.copied, second.privates, second.tokens_added) == (first.size, 3, 3, 1)
        assert contents(dst) == contents(src)
        assert audited(dst) == audited(src)


# -- refusals ------------------------------------------------------------------------------------


def test_a_target_that_holds_another_log_is_refused_and_left_alone(source, tmp_path, make_target):
    path, _ = source
    other, _ = rich_instance(tmp_path / "other", "other", demo=0)
    target = make_target()
    dst = target.open()
    with closing(src_stores(other)) as o:
        copy_instance(o, dst)
    before = contents(dst)
    with closing(src_stores(path)) as src:
        with pytest.raises(InstanceError, match="already holds a log of .* that is not this source's log"):
            copy_instance(src, dst)
    assert contents(dst) == before


def test_a_target_that_went_on_after_a_copy_is_refused(source, make_target):
    path, _ = source
    dst = make_target().open()
    with closing(src_stores(path)) as src:
        copy_instance(src, dst)
    # The target is served and appends: it is no longer a copy of the source.
    Ledger(dst.log, registry(), read_key_file(path / "log.key")).append("note", {"text": "served from here"})
    before = contents(dst)
    with closing(src_stores(path)) as src:
        with pytest.raises(InstanceError, match="more than the source's"):
            copy_instance(src, dst)
    assert contents(dst) == before


def test_a_target_with_tokens_but_no_log_is_refused(source, make_target):
    path, _ = source
    dst = make_target().open()
    create_token(dst.tokens, "admin")
    before = contents(dst)
    with closing(src_stores(path)) as src, pytest.raises(InstanceError, match="holds no log but is not empty"):
        copy_instance(src, dst)
    assert contents(dst) == before


def test_an_empty_source_is_refused(tmp_path, make_target):
    open_sqlite(tmp_path / "empty.sqlite", upgrade=True).close()
    dst = make_target().open()
    with closing(open_database_copy(tmp_path / "empty.sqlite")) as src:
        with pytest.raises(InstanceError, match="the source holds no log"):
            check_source(src)
        with pytest.raises(InstanceError, match="the source holds no log"):
            copy_instance(src, dst)
    assert dst.log.size() == 0


def _tamper(db: Path, sql: str, *args) -> None:
    """Change a stored row behind the driver's back (its triggers dropped first)."""
    with closing(sqlite3.connect(db)) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(sql, args)
        conn.commit()


def test_a_source_that_does_not_verify_is_refused_at_the_bad_entry(source, make_target):
    path, _ = source
    db = path / "luodi.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        seq, canonical = conn.execute(
            "SELECT seq, canonical FROM entries WHERE seq >= 30 AND instr(canonical, '\"amount\":') ORDER BY seq"
        ).fetchone()
        before = conn.execute("SELECT max(tree_size) FROM checkpoints WHERE tree_size <= ?", (seq,)).fetchone()[0]
    _tamper(db, "UPDATE entries SET canonical = ? WHERE seq = ?", canonical.replace(b'"amount":', b'"amount": '), seq)
    dst = make_target().open()
    with closing(src_stores(path)) as src:
        with pytest.raises(LogCorrupted, match=f"^seq {seq} .*: entry is invalid"):
            check_source(src)  # what the command runs before it opens the target
        with pytest.raises(LogCorrupted, match=f"^seq {seq} .*: entry is invalid"):
            copy_instance(src, dst, batch=1)  # verifies the source first: nothing is written
        assert dst.log.size() == 0
        # Told (wrongly) that the source verified, the copy still checks every row as it
        # reads it: it writes the commits before the bad one, and stops there.
        told = VerifyReport(src.log.size(), b"\0" * 32, 0, "", "")
        with pytest.raises(LogCorrupted, match=f"^seq {seq} .*: entry is invalid"):
            copy_instance(src, dst, verified=told, batch=1)
    assert dst.log.size() == before and audited(dst)[0] == before


def test_a_checkpoint_that_does_not_match_its_entries_stops_the_copy(source, make_target):
    path, _ = source
    with closing(src_stores(path)) as src:
        note = src.log.checkpoint(12)[1]
    lines = note.split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()  # another root, under the same signature line
    _tamper(path / "luodi.sqlite", "UPDATE checkpoints SET note = ? WHERE tree_size = 12", "\n".join(lines))
    dst = make_target().open()
    with closing(src_stores(path)) as src:
        with pytest.raises(LogCorrupted, match="^seq 11: checkpoint at tree size 12"):
            copy_instance(src, dst)
        assert dst.log.size() == 0
        told = VerifyReport(src.log.size(), b"\0" * 32, 0, "", "")
        with pytest.raises(LogCorrupted, match="^seq 11: checkpoint at tree size 12 does not match the entries"):
            copy_instance(src, dst, verified=told, batch=1)
    assert dst.log.size() < 12 and audited(dst)[0] == dst.log.size()


def test_entries_the_books_refuse_stop_the_copy_at_that_seq(source, make_target):
    """A log whose chain verifies but whose books do not (an entry appended without
    the books' rules): the transaction that meets it writes nothing."""
    path, _ = source
    stores = open_sqlite(path / "luodi.sqlite")
    try:
        bare = Ledger(stores.log, registry(), read_key_file(path / "log.key"))  # no books hook
        bad = bare.append("project.opened", {"project": "ghost", "charity": "no-such-charity", "title": "t",
                                             "purpose": "p", "currency": "CNY"})
    finally:
        stores.close()
    dst = make_target().open()
    with closing(src_stores(path)) as src:
        check_source(src)  # the chain is sound
        with pytest.raises(LogCorrupted, match=f"^seq {bad.seq} .*accounting rules refuse this entry: no charity"):
            copy_instance(src, dst)
    assert dst.log.size() == 0  # one transaction held the whole log: rolled back
    assert next(iter(dst.books.view().privates()), None) is None


# -- the command ---------------------------------------------------------------------------------


def _instance_for(target: Target, key_from: Path, tmp_path: Path) -> Path:
    """An instance folder on the target's database with the source's log key, made
    as an operator would: the key copied in, then ``luodi init --database URL``
    (a SQLite target: the copied file put in the folder)."""
    folder = tmp_path / f"copied-{target.kind}"
    folder.mkdir(mode=0o700)
    shutil.copy2(key_from / "log.key", folder / "log.key")
    if target.kind == "sqlite":
        shutil.copy2(target.spec, folder / "luodi.sqlite")
        return folder
    done = luodi("init", "--instance", folder, "--database", target.spec)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kept the existing key" in done.stdout, done.stdout
    return folder


def test_the_command_copies_and_luodi_audit_passes_on_both_with_the_same_root(source, make_target, tmp_path):
    path, _ = source
    target = make_target()
    done = luodi("db", "copy", "--from", path / "luodi.sqlite", "--to", target.spec, timeout=120)
    assert done.returncode == 0, done.stderr
    last = done.stdout.splitlines()[-1]
    size, root = int(last.split()[1]), last.split("root ")[1].split()[0]
    with closing(src_stores(path)) as src:
        assert src.log.checkpoint()[0] == size
    vkey = read_key_file(path / "log.key").verifier.to_string()
    folder = _instance_for(target, path, tmp_path)
    for instance in (path, folder):
        audit = luodi("audit", "--instance", instance, "--log-key", vkey, timeout=120)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert f"tree size {size}, root {root}" in audit.stdout, audit.stdout


def test_the_command_refuses_with_one_line(source, tmp_path, make_target):
    path, _ = source
    target = make_target()
    # --from must be a SQLite file that exists and holds a log
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    for args, said in (
        (("--from", tmp_path / "notes.txt"), "is not a readable SQLite database"),
        (("--from", tmp_path / "missing.sqlite"), "no database file at"),
        (("--from", "postgresql:///luodi_test"), "--from takes the instance's SQLite file, not a URL"),
    ):
        done = luodi("db", "copy", *args, "--to", target.spec)
        assert done.returncode == 2 and said in one_line_error(done), done.stderr
    if target.kind == "sqlite":
        assert not Path(target.spec).exists()  # nothing was created
    assert luodi("db", "copy", "--from", path / "luodi.sqlite", "--to", target.spec).returncode == 0
    other, _ = rich_instance(tmp_path / "other", "other", demo=0)
    dst = target.open()
    before = contents(dst)
    done = luodi("db", "copy", "--from", other / "luodi.sqlite", "--to", target.spec)
    assert done.returncode == 2 and "already holds a log" in one_line_error(done)
    assert contents(dst) == before


def test_the_command_exits_1_for_a_source_that_does_not_verify(source, make_target):
    path, _ = source
    _tamper(path / "luodi.sqlite", "UPDATE checkpoints SET note = replace(note, '\n1', '\n9') WHERE tree_size = 12")
    target = make_target()
    done = luodi("db", "copy", "--from", path / "luodi.sqlite", "--to", target.spec)
    assert done.returncode == 1 and "the source does not verify: seq 11" in one_line_error(done)
    assert target.open().log.size() == 0


def test_the_command_killed_halfway_goes_on_when_run_again(tmp_path, make_target):
    """kill -9 in the middle of a copy, then the same command again: it goes on from
    the last whole commit the target holds, and the copy audits like the source."""
    path = tmp_path / "big"
    done = luodi("init", "--instance", path)
    assert done.returncode == 0, done.stderr
    cl = open_instance(path)
    try:
        seed_demo(cl, donations=1500)
        total = cl.ledger.size()
    finally:
        cl.stores.close()
    target = make_target()
    args = [LUODI, "db", "copy", "--from", str(path / "luodi.sqlite"), "--to", target.spec, "--batch", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        first = proc.stdout.readline()  # printed after the first transaction committed
        assert first.startswith("copying to"), first + proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    dst = target.open()
    held = dst.log.size()
    assert 0 < held < total  # killed halfway, after a whole commit
    assert audited(dst)[0] == held
    again = luodi("db", "copy", "--from", path / "luodi.sqlite", "--to", target.spec, "--batch", "500", timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"the target already held the first {held} entries: went on from there" in again.stdout
    with closing(open_database_copy(path / "luodi.sqlite")) as src:
        assert contents(dst) == contents(src)
        assert audited(dst) == audited(src)
