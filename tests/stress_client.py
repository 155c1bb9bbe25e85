"""One client process of the stress test (tests/test_stress.py): it writes to a live
server until the server dies under it or its budget runs out, and records, one
JSON line at a time, every write the server acknowledged and every request that
got no answer.

    python stress_client.py ROLE URL TOKEN OUT [--keys KEYFILE] [--acks DONATIONS_OUT]
        [--prefix P] [--max N] [--seconds S]

ROLE is ``donor`` (donations with Idempotency-Keys), ``charity`` (disbursements
signed with the key in KEYFILE) or ``refunder`` (small refunds of gifts the
donors' file has acknowledged).  Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.charity import payload as P  # noqa: E402
from ledger.log.keyfile import read_key_file  # noqa: E402

CHARITY = "stress-charity"
PROJECTS = ("stress-a", "stress-b")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: dict, headers: dict) -> tuple[int, dict] | None:
    """(status, JSON answer), or None if the server gave no answer (it died)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())
    except (OSError, ValueError, http.client.HTTPException):  # refused, reset, or cut off mid-answer
        return None


def read_lines(path: Path) -> list[dict]:
    """The whole lines a client has written so far (a last line may be half written)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


class Record:
    def __init__(self, path: str):
        self.f = open(path, "a", encoding="utf-8")

    def __call__(self, **line) -> None:
        self.f.write(json.dumps(line) + "\n")
        self.f.flush()


def donor(args, record: Record) -> None:
    for i in range(args.max):
        key = f"{args.prefix}-{i:06d}"
        project = PROJECTS[i % 2]
        body = {"amount": f"{random.randint(1, 50)}.{random.randint(0, 99):02d}", "channel": "alipay",
                "payment_ref": f"AP-{key}", "donor_ref": f"donor-{key}", "value_date": "2026-12-01"}
        got = post(f"{args.url}/v1/projects/{project}/donations", body,
                   {"Authorization": f"Bearer {args.token}", "Idempotency-Key": key})
        if got is None:
            record(kind="unanswered", key=key, project=project, body=body)
            return
        status, answer = got
        if status not in (200, 201):
            record(kind="refused", key=key, status=status, answer=answer)
            continue
        record(kind="donation", key=key, project=project, leaf=answer["entry"]["leaf_hash"],
               seq=answer["entry"]["seq"], salt=answer["salt"], donor_ref=body["donor_ref"], replayed=status == 200)
        if time.monotonic() > args.deadline:
            return


def charity(args, record: Record) -> None:
    signer = read_key_file(args.keys, "charity key")
    for i in range(args.max):
        project = PROJECTS[i % 2]
        payload = P.disbursement(charity=CHARITY, project=project, currency="CNY", payee="Stress Supplies Co.",
                                 purpose="stress", period=("2026-12-01", "2026-12-31"), lines=[("goods", "3.00")])
        got = post(f"{args.url}/v1/projects/{project}/disbursements",
                   {"payload": payload, "signatures": [P.sign(payload, signer)]}, {})
        if got is None:
            record(kind="unanswered", nonce=payload["nonce"])
            return
        status, answer = got
        if status == 201:
            record(kind="disbursement", leaf=answer["leaf_hash"], seq=answer["seq"])
        else:  # not enough unspent money yet: a refusal that writes nothing
            record(kind="refused", status=status, slug=answer.get("type"))
            time.sleep(0.02)
        if time.monotonic() > args.deadline:
            return


def refunder(args, record: Record) -> None:
    for _ in range(args.max):
        gifts = [a for a in read_lines(Path(args.acks)) if a["kind"] == "donation"]
        if not gifts:
            time.sleep(0.02)
            continue
        gift = random.choice(gifts)
        got = post(f"{args.url}/v1/receipts/{gift['leaf']}/refunds", {"amount": "0.01", "reason": "stress refund"},
                   {"Authorization": f"Bearer {args.token}"})
        if got is None:
            record(kind="unanswered", donation=gift["leaf"])
            return
        status, answer = got
        if status == 201:
            record(kind="refund", leaf=answer["leaf_hash"], seq=answer["seq"], donation=gift["leaf"])
        else:  # the gift was spent or refunded whole
            record(kind="refused", status=status, slug=answer.get("type"))
        if time.monotonic() > args.deadline:
            return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("donor", "charity", "refunder"))
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("out")
    ap.add_argument("--keys")
    ap.add_argument("--acks")
    ap.add_argument("--prefix", default="stress")
    ap.add_argument("--max", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    args.deadline = time.monotonic() + args.seconds
    {"donor": donor, "charity": charity, "refunder": refunder}[args.role](args, Record(args.out))


if __name__ == "__main__":
    main()
