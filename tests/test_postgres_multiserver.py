"""Two ``luodi serve`` (real gunicorn, two workers each) append to one database at
once: concurrent donations, signed disbursements and refunds spread over both,
then one of them is killed with SIGKILL (master and workers) in the middle of
the load and started again.  Every write that was acknowledged (201) is in the
log, at its seq, with its bytes, proven against the latest signed checkpoint
offline (a gift's whole receipt as a donor checks it); the log and its books
verify (``luodi verify``, ``luodi audit``, on the instance and over HTTP).

The point is PostgreSQL (a schema of the test's own on the test server,
recorded by ``luodi init --database``); the same test on SQLite (two servers on
one file, through its flock) shows the harness holds the guarantee where it
already did.
Bounded: 6 clients x 40 operations, loopback only.
"""

from __future__ import annotations

from pg_served import Load, Server, check_acknowledged, pg_instance, setup_charity

THREADS, PER_THREAD = 6, 40


def test_two_servers_one_database_kill9_one_midway_and_every_acknowledged_write_is_there(tmp_path, backend):
    inst = pg_instance(tmp_path / "instance", backend.database("instance"))
    a = Server(inst.path, inst.log_key, workers=2, threads=4, env=inst.env)
    b = Server(inst.path, inst.log_key, workers=2, threads=4, env=inst.env)
    with a, b:
        setup_charity(inst, a.port)
        load = Load(inst, [a, b], THREADS, PER_THREAD)
        killed_at = []

        def kill_and_restart(load: Load) -> None:
            load.wait_ops(load.total // 3)
            killed_at.append(load.done_ops)
            b.kill9()
            load.wait_ops(load.total // 2)  # the load goes on against the survivor alone
            b.restart()

        load.run(kill_and_restart)
        assert not load.errors, load.errors[:3]
        assert killed_at and killed_at[0] < load.total  # the kill came mid-load
        by_kind = {k: sum(1 for x in load.acked if x.kind == k) for k in ("donation", "disbursement", "refund")}
        assert by_kind["donation"] >= THREADS * PER_THREAD // 2, (by_kind, load.statuses)
        assert by_kind["disbursement"] > 0 and by_kind["refund"] > 0, (by_kind, load.statuses)
        size, root = check_acknowledged(load, a.port)
        # The restarted server serves the same log.
        assert check_acknowledged(load, b.port) == (size, root)
        remote = inst.luodi("audit", "--url", a.url, "--log-key", inst.log_key.to_string(), "--receipts", "20")
        assert remote.returncode == 0, remote.stdout + remote.stderr
    for args in (("verify",), ("audit", "--log-key", inst.log_key.to_string())):
        done = inst.luodi(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    assert str(size) in done.stdout
