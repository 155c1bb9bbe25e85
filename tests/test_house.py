"""The house: a generic log, the charity personality on top, storage drivers beside them.

These tests hold the seams of docs/architecture.md §1 in place: the layers
import only downwards and never in circles, only the drivers touch a
database, an auditor's verifier runs where no server stack can even be
imported, and the log works with no charity at all.
"""

from __future__ import annotations

import ast
import base64
import json
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
from conftest import REGISTRY, FixedClock, notes
from factories import sign_all

from ledger.errors import InvalidEntry, LogCorrupted
from ledger.log.kinds import Registry
from ledger.log.ledger import Ledger
from ledger.log.verify import verify_log
from ledger.stores.sqlite import open_sqlite
from ledger.stores.sqlite.books import BOOKS_TABLES, KEYED_TABLES

ROOT = Path(__file__).resolve().parent.parent
SERVER_STACK = ("flask", "click", "sqlite3", "sqlite_utils", "gunicorn", "marshmallow")
DATABASE_MODULES = ("sqlite3", "sqlite_utils", "psycopg", "psycopg_pool")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("ledger", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at any depth of the file (functions and TYPE_CHECKING included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if node.module:  # "from . import payload" imports api.payload, not api itself
                out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
    # A package is imported before its modules anyway: an edge to an ancestor says nothing.
    return {m for m in out if not name.startswith(m + ".")}


MODULES = _modules()
GRAPH = {name: {m for m in _imports(name, path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _layer(name: str) -> str:
    for prefix in ("ledger.log", "ledger.charity", "ledger.stores", "api"):
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return name


# -- the layers ------------------------------------------------------------------------------------

ALLOWED = {
    "ledger.log": {"ledger.log", "ledger.errors", "ledger"},
    "ledger.charity": {"ledger.charity", "ledger.log", "ledger.errors", "ledger"},
    "ledger.stores": {"ledger.stores", "ledger.charity", "ledger.log", "ledger.errors", "ledger"},
    "ledger.errors": {"ledger"},
    "ledger": set(),
}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("ledger")))
def test_the_core_imports_only_downwards(name):
    """api/ -> ledger/charity/ -> ledger/log/, with ledger/stores/ beside them: the log imports
    nothing of charities or drivers, and nothing in ledger/ imports api/."""
    allowed = ALLOWED[_layer(name)]
    wrong = sorted(m for m in GRAPH[name] if _layer(m) not in allowed)
    assert not wrong, f"{name} imports {wrong}"


def test_there_are_no_import_circles():
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for dep in sorted(GRAPH[name]):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(dep) :] + [dep]))
            if dep not in state:
                visit(dep)
        path.pop()
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_storage_drivers_touch_a_database(name):
    imported = _imports(name, MODULES[name])
    touches = sorted(m for m in imported if m.split(".")[0] in DATABASE_MODULES or m == "migrations" or m.startswith("migrations."))
    if name.startswith("ledger.stores."):
        return
    assert not touches, f"{name} imports {touches}: only ledger/stores/ may"
    text = MODULES[name].read_text(encoding="utf-8")
    for sql in ("SELECT ", "INSERT INTO", "CREATE TABLE", "UPDATE ", "DELETE FROM"):
        assert sql not in text, f"{name} writes SQL ({sql.strip()})"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


# -- an auditor's verifier stands alone --------------------------------------------------------

STANDALONE = textwrap.dedent(
    r"""
    import base64, importlib.abc, json, sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is not installed here")
            return None

    sys.meta_path.insert(0, Blocker())
    for name in BLOCKED:
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(f"{{name}} could still be imported")

    from ledger.charity.kinds import registry
    from ledger.errors import LogCorrupted, ProofError, SignatureError
    from ledger.log import canonical, checkpoint, entry, merkle, note
    from ledger.log.verify import verify_stream

    data = json.loads(open(sys.argv[1]).read())
    rows = [(r["seq"], bytes.fromhex(r["leaf"]), bytes.fromhex(r["nodes"]), base64.b64decode(r["canonical"]))
            for r in data["rows"]]
    cps = [tuple(c) for c in data["checkpoints"]]
    kinds = registry()
    key = note.Verifier.from_string(data["log_key"])

    # the whole stream: chain, rules, tree and every checkpoint, against the pinned key
    report = verify_stream(rows, cps, kinds, key)
    assert report.size == len(rows) and report.checkpoints == len(cps), report
    # every entry re-parses to its canonical bytes, and its leaf hash is RFC 9162's
    for seq, leaf, _, data_bytes in rows:
        e = entry.parse_entry(data_bytes, kinds)
        assert e.seq == seq and e.leaf_hash == leaf == merkle.leaf_hash(data_bytes)
        assert canonical.canonical_bytes(e.envelope()) == data_bytes
    # a donor's proof against the signed checkpoint
    cp = checkpoint.open_checkpoint(data["checkpoint"], key)
    proof = [bytes.fromhex(h) for h in data["proof"]]
    merkle.verify_inclusion(bytes.fromhex(data["leaf"]), data["index"], cp.size, proof, cp.root)
    old = checkpoint.open_checkpoint(data["old_checkpoint"], key)
    merkle.verify_consistency(old.size, cp.size, old.root, cp.root, [bytes.fromhex(h) for h in data["consistency"]])
    # and the failures an auditor must see
    try:
        merkle.verify_inclusion(bytes.fromhex(data["leaf"]), data["index"] + 1, cp.size, proof, cp.root)
    except ProofError:
        pass
    else:
        raise SystemExit("a wrong index verified")
    try:
        checkpoint.open_checkpoint(data["checkpoint"], note.Verifier.from_string(data["other_key"]))
    except SignatureError:
        pass
    else:
        raise SystemExit("a checkpoint verified with another key")
    seq, leaf, nodes, body = rows[data["tamper"]]
    rows[data["tamper"]] = (seq, leaf, nodes, body.replace(b"Hope", b"Hopf"))
    try:
        verify_stream(rows, cps, kinds, key)
    except LogCorrupted as exc:
        assert exc.seq == data["tamper"], exc
    else:
        raise SystemExit("a changed entry verified")
    # a donor's receipt, in both forms, against the pinned key; and one altered
    from ledger.charity.receipt_check import check_receipt, check_tlog_proof
    from ledger.errors import ReceiptInvalid

    checked = check_receipt(data["receipt"], key, salt=data["salt"], donor_ref=data["donor_ref"])
    assert checked.donor_checked and len(checked.allocations) == 1, checked
    assert check_tlog_proof(data["tlog_proof"], key).inclusion_only
    data["receipt"]["allocation"][0]["amount"] = "0.01"
    try:
        check_receipt(data["receipt"], key)
    except ReceiptInvalid as exc:
        assert exc.part == "amounts", exc
    else:
        raise SystemExit("an altered receipt verified")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("standalone ok", report.size)
    """
)


def test_an_auditors_verifier_runs_without_the_server_stack(make_setup, tmp_path):
    from ledger.log.note import Signer

    from api.views import receipt as receipt_json
    from ledger.charity.receipts import tlog_proof

    setup = make_setup()
    payload = setup.disbursement()
    setup.charity.disburse(payload, sign_all(payload, *setup.keys[:2]))
    ledger = setup.ledger
    spent = setup.donations[0]
    old = ledger.checkpoint(3)
    gift = setup.donations[1].entry
    size = ledger.size()
    data = {
        "rows": [
            {"seq": s, "leaf": h.hex(), "nodes": n.hex(), "canonical": base64.b64encode(c).decode()}
            for s, h, n, c in ledger.store.iter_entries()
        ],
        "checkpoints": list(ledger.store.iter_checkpoints()),
        "log_key": ledger.verifier.to_string(),
        "other_key": Signer.generate(ledger.origin).verifier.to_string(),
        "checkpoint": ledger.checkpoint(),
        "old_checkpoint": old,
        "consistency": [h.hex() for h in ledger.consistency_proof(3, size)],
        "leaf": gift.receipt,
        "index": gift.seq,
        "proof": [h.hex() for h in ledger.inclusion_proof(gift.seq, size)],
        "tamper": 1,  # the charity's registration
        "receipt": receipt_json(setup.charity.receipt(spent.entry.receipt)),
        "tlog_proof": tlog_proof(setup.charity.receipt(spent.entry.receipt)),
        "salt": spent.salt,
        "donor_ref": "donor-0000",
    }
    assert b"Hope" in ledger.entry(1).canonical
    (tmp_path / "log.json").write_text(json.dumps(data))
    (tmp_path / "check.py").write_text(STANDALONE.format(blocked=set(SERVER_STACK)))
    run = subprocess.run(
        [sys.executable, str(tmp_path / "check.py"), str(tmp_path / "log.json")],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == f"standalone ok {size}"


def test_importing_a_verifier_module_loads_no_database_or_server_module():
    code = (
        "import sys; import ledger.log.merkle, ledger.log.verify, ledger.log.checkpoint, ledger.charity.kinds, "
        "ledger.log.tlog_proof, ledger.charity.receipt_check; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(SERVER_STACK)!r}))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


# -- the log with no personality ---------------------------------------------------------------


def test_a_bare_log_needs_no_charity(backend, signer):
    """The generic log with its own kinds only and no hook: no books are kept, and its
    genesis names no allocation policy.  A charity log's registry refuses it."""
    stores = backend.open("bare", upgrade=True)
    try:
        bare = Registry()
        ledger = Ledger.create(stores.log, bare, signer, clock=FixedClock())
        assert ledger.genesis.body == {"origin": signer.name, "log_key": signer.verifier.to_string(), "hash": "sha256"}
        ledger.append_batch(notes(5))
        assert ledger.hook is None
        with pytest.raises(InvalidEntry, match="unknown entry kind 'donation'"):
            ledger.append("donation", {"project": "x"})
        assert verify_log(stores.log, bare).size == 6
        assert stores.books.view().applied() == -1  # nothing followed the log
        with pytest.raises(LogCorrupted) as info:
            verify_log(stores.log, REGISTRY)
        assert info.value.seq == 0 and "missing field allocation" in info.value.detail
    finally:
        stores.close()


def test_a_registry_is_an_object_and_nothing_registers_on_import():
    def shout(body):
        if body != {"text": "HELLO"}:
            raise InvalidEntry("only HELLO")

    one, two = Registry({"shout": shout}), Registry()
    assert "shout" in one and "shout" not in two and "donation" not in one
    assert "donation" in REGISTRY and REGISTRY.genesis_fields == {"allocation": "fifo"}
    one.validate("shout", {"text": "HELLO"})
    with pytest.raises(InvalidEntry, match="only HELLO"):
        one.validate("shout", {"text": "hi"})
    with pytest.raises(ValueError, match="registered twice"):
        Registry({"note": shout})
    with pytest.raises(ValueError, match="cannot be redefined"):
        Registry(genesis={"hash": "md5"})


# -- one source of the SQLite schema -----------------------------------------------------------

LOG_AND_TOKEN_TABLES = {"entries", "checkpoints", "cosigned_checkpoints", "tokens", "_sqlite_migrations"}


@pytest.mark.sqlite_only("the tables migrations/sqlite creates")
def test_the_books_tables_are_the_ones_the_migrations_create(tmp_path):
    open_sqlite(tmp_path / "fresh.sqlite", upgrade=True).close()
    with closing(sqlite3.connect(tmp_path / "fresh.sqlite")) as conn:
        tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    assert set(tables) - LOG_AND_TOKEN_TABLES == set(BOOKS_TABLES)
    assert {t for t, sql in tables.items() if "WITHOUT ROWID" in sql} == set(KEYED_TABLES)
