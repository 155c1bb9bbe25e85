"""Batch intake against a real gunicorn: SIGKILL of the worker mid-batch keeps all of
a batch or none of it (and every acknowledged receipt), and ``luodi import`` SIGKILLed
part way and run again records every row once; on every backend."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_e2e_gunicorn import LUODI, LiveServer, clean_env, http, init_instance, luodi

from ledger.log.note import Signer

CHARITY = "hope-foundation"
PROJECTS = ("school-meals", "winter-coats")


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def open_projects(server: LiveServer, admin: str) -> None:
    signers = [Signer.generate(f"{CHARITY}/finance-{i}") for i in (1, 2, 3)]
    got = server.post("/v1/charities", {"charity": CHARITY, "name": "Hope Foundation",
                                        "keys": [s.verifier.to_string() for s in signers], "threshold": 2},
                      headers=auth(admin))
    assert got.status == 201, got.body
    for project in PROJECTS:
        got = server.post("/v1/projects", {"project": project, "charity": CHARITY, "title": project,
                                           "purpose": "batch intake", "currency": "CNY"}, headers=auth(admin))
        assert got.status == 201, got.body


def item(key: str, amount: str = "1.00") -> dict:
    return {"amount": amount, "channel": "bank_transfer", "payment_ref": f"PAY-{key}", "donor_ref": f"donor-{key}",
            "value_date": "2026-11-29", "idempotency_key": key}


def leaf_hashes(server: LiveServer) -> set[str]:
    out, start = set(), 0
    while start is not None:
        page = server.get(f"/v1/entries?start={start}&limit=1000").json
        out |= {e["leaf_hash"] for e in page["entries"]}
        start = page["next_start"]
    return out


def donations(server: LiveServer, project: str) -> int:
    return server.get(f"/v1/projects/{project}").json["donations"]


def verified(instance: Path, log_key) -> None:
    """verify_log and audit_books over the instance (``luodi audit``, the server stopped)."""
    done = luodi("audit", "--instance", instance, "--log-key", log_key.to_string(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sigkill_of_the_worker_mid_batch_keeps_all_or_none_and_every_acknowledged_receipt(tmp_path, backend):
    instance = tmp_path / "instance"
    log_key, admin, intake = init_instance(instance, backend.database())
    url = f"/v1/projects/{PROJECTS[0]}/donations/batch"
    acknowledged: list[dict] = []
    killed: list[list[dict]] = []
    unanswered, outcomes = 0, []
    with LiveServer(instance, log_key, workers=1) as server:
        open_projects(server, admin)
        # Batches of 1,000; the worker is SIGKILLed while one is in flight, at a different moment each round.
        for round_, delay in enumerate((0.05, 0.15, 0.3, 0.6)):
            before = server.post(url, {"donations": [item(f"ack-{round_}-{n:04d}") for n in range(1000)]},
                                 headers=auth(intake), timeout=120)
            assert before.status == 200, before.body
            assert {r["status"] for r in before.json["results"]} == {201}, before.json["results"][0]
            acknowledged += before.json["results"]
            batch = [item(f"kill-{round_}-{n:04d}") for n in range(1000)]
            answer: list = []
            sender = threading.Thread(target=lambda b=batch: answer.append(
                _post_or_error(server.url + url, {"donations": b}, auth(intake))))
            workers = server.worker_pids()
            assert len(workers) == 1
            sender.start()
            time.sleep(delay)
            os.kill(workers[0], signal.SIGKILL)
            sender.join(timeout=120)
            if isinstance(answer[0], dict):  # the batch was answered before the kill: it must be whole
                acknowledged += answer[0]["results"]
            else:
                unanswered += 1
            killed.append(batch)
            _wait_for_a_new_worker(server, workers[0])
        # Each killed batch, sent again: either every item is a replay (it had committed) or every item is new.
        for batch in killed:
            again = server.post(url, {"donations": batch}, headers=auth(intake), timeout=120)
            assert again.status == 200, again.body
            statuses = {r["status"] for r in again.json["results"]}
            assert statuses in ({200}, {201}), statuses
            outcomes.append(statuses.pop())
        print("killed batches, sent again:", outcomes, "unanswered:", unanswered)
        assert unanswered > 0, "no SIGKILL hit a batch in flight"
        present = leaf_hashes(server)
        assert all(r["status"] == 201 for r in acknowledged)
        assert {r["entry"]["leaf_hash"] for r in acknowledged} <= present
        assert donations(server, PROJECTS[0]) == 1000 * (len(killed) + 4)
    verified(instance, log_key)


def _post_or_error(full_url: str, body: dict, headers: dict):
    try:
        got = http("POST", full_url, body, headers=headers, timeout=120)
    except OSError as exc:  # the connection died with the worker
        return exc
    return got.json if got.status == 200 else got


def _wait_for_a_new_worker(server: LiveServer, dead: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = server.worker_pids()
        if pids and dead not in pids:
            try:
                if server.get("/v1/checkpoint", timeout=5).status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not start a new worker")


def write_csv(path: Path, rows: int) -> tuple[int, int]:
    """A settlement file of ``rows`` good rows over both projects, and 3 bad ones; (good, bad)."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["project", "amount", "channel", "payment_ref", "donor_ref", "value_date", "idempotency_key",
                      "personal"])
        for n in range(rows):
            project = PROJECTS[n % 2]
            personal = '{"name": "Donor %d"}' % n if n % 7 == 0 else ""
            out.writerow([project, "2.50", "bank_transfer", f"PAY-{n}", f"donor-{n}", "2026-11-30", f"import-{n:06d}", personal])
        out.writerow([PROJECTS[0], "2.501", "bank_transfer", "PAY-bad-1", "donor-bad", "2026-11-30", "import-bad-0001", ""])
        out.writerow([PROJECTS[1], "1.00", "pigeon", "PAY-bad-2", "donor-bad", "2026-11-30", "import-bad-0002", ""])
        out.writerow([PROJECTS[0], "1.00", "bank_transfer", "PAY-bad-3", "donor-bad", "2026-11-30", "", ""])
    return rows, 3


def test_luodi_import_killed_part_way_and_run_again_records_every_row_once(tmp_path, backend):
    instance = tmp_path / "instance"
    log_key, admin, intake = init_instance(instance, backend.database())
    settlement = tmp_path / "settlement.csv"
    good, bad = write_csv(settlement, 6000)
    with LiveServer(instance, log_key, workers=1) as server:
        open_projects(server, admin)
        args = [LUODI, "import", settlement, "--url", server.url, "--token", intake, "--batch", "250"]
        first = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=clean_env(), start_new_session=True)
        deadline = time.monotonic() + 120
        while sum(donations(server, p) for p in PROJECTS) == 0 and first.poll() is None:
            assert time.monotonic() < deadline, "the import recorded nothing"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        part = sum(donations(server, p) for p in PROJECTS)
        assert 0 < part < good, "the import was not killed part way"
        done = luodi("import", settlement, "--url", server.url, "--token", intake, "--batch", "250", timeout=300)
        assert done.returncode == 1, done.stderr  # some rows were refused
        refusals = settlement.with_name("settlement.csv.refusals.csv")
        assert done.stdout.strip() == (f"recorded {good - part}, replayed {part}, refused {bad} (refusals: {refusals})")
        assert [donations(server, p) for p in PROJECTS] == [good // 2, good // 2]
        with refusals.open() as f:
            refused = list(csv.DictReader(f))
        assert [(r["row"], r["idempotency_key"], r["status"]) for r in refused] == [
            (str(good + 2), "import-bad-0001", "422"), (str(good + 3), "import-bad-0002", "422"),
            (str(good + 4), "", "422")]
        # Once more: everything a replay, nothing new.
        done = luodi("import", settlement, "--url", server.url, "--token", intake, timeout=300)
        assert done.stdout.strip().startswith(f"recorded 0, replayed {good}, refused {bad}")
        assert sum(donations(server, p) for p in PROJECTS) == good
    verified(instance, log_key)


@pytest.mark.parametrize("case", ["missing", "columns", "unreachable"])
def test_luodi_import_refuses_a_bad_file_or_an_unreachable_server_with_one_line(tmp_path, case):
    path = tmp_path / "in.csv"
    if case == "columns":
        path.write_text("project,amount\nschool-meals,1.00\n")
    elif case == "unreachable":
        write_csv(path, 2)
    done = luodi("import", path, "--url", "http://127.0.0.1:9", "--token", "luodi_x")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("luodi import: "), done.stderr
    assert {"missing": "cannot read", "columns": "lacks the columns", "unreachable": "cannot reach"}[case] in lines[0]


def test_luodi_import_reads_ndjson_and_refuses_rows_of_an_unknown_project(tmp_path, backend):
    instance = tmp_path / "instance"
    log_key, admin, intake = init_instance(instance, backend.database())
    source = tmp_path / "settlement.ndjson"
    rows = [
        {**item("nd-000001"), "project": PROJECTS[0], "personal": {"name": "Wang Fang"}},
        {**item("nd-000002"), "project": PROJECTS[1]},
        "not an object",
        {**item("nd-000003"), "project": "no-such-project"},
        {**item("nd-000004"), "project": PROJECTS[0], "amount": "0.001"},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    refusals = tmp_path / "out" / "refused.csv"
    refusals.parent.mkdir()
    with LiveServer(instance, log_key, workers=1) as server:
        open_projects(server, admin)
        refused = luodi("import", source, "--url", server.url, "--token", "luodi_wrong", "--refusals", refusals)
        assert refused.returncode == 2 and refused.stdout == "", refused.stdout
        assert len(refused.stderr.splitlines()) == 1 and " answered 401: " in refused.stderr, refused.stderr
        assert [donations(server, p) for p in PROJECTS] == [0, 0] and not refusals.exists()
        done = luodi("import", source, "--url", server.url, "--token", intake, "--refusals", refusals)
        assert done.returncode == 1, done.stderr
        assert done.stdout.strip() == f"recorded 2, replayed 0, refused 4 (refusals: {refusals})"
        assert [donations(server, p) for p in PROJECTS] == [1, 1]
        receipt = server.get(f"/v1/projects/{PROJECTS[0]}/entries").json["entries"][-1]["leaf_hash"]
        shown = luodi("donor", "show", receipt, "--instance", instance)
        assert json.loads(shown.stdout) == {"name": "Wang Fang"}, shown.stderr
    with refusals.open() as f:
        refused = [(r["row"], r["idempotency_key"], r["status"], r["type"]) for r in csv.DictReader(f)]
    assert refused == [("3", "", "422", "/problems/invalid-input"), ("4", "nd-000003", "404", "/problems/not-found"),
                       ("5", "nd-000004", "422", "/problems/invalid-input"), ("6", "", "422", "/problems/invalid-input")]
