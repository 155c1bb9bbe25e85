"""``luodi verify-receipt``: a donor checks a receipt offline, against the log key they pin.

SOURCE is a file or an http(s) URL, holding either form of a receipt: the
JSON receipt (``GET /v1/receipts/<leaf_hash>``) or its C2SP tlog-proof
(``GET /v1/receipts/<leaf_hash>.tlog-proof``, known by its first line).  The
checks are :mod:`ledger.charity.receipt_check`'s.  Exit 0: the receipt checks
out (what the gift paid for is printed); 1: it does not (the failing part is
named, or the checkpoint lacks the witness quorum: who cosigned, what was needed); 2: usage and network errors (a file missing, a server unreachable or
refusing, a malformed key string, an answer that is neither JSON nor a
tlog-proof).

``--tiles URL|DIR`` also proves, from C2SP tlog-tiles alone
(:mod:`ledger.charity.receipt_tiles`), that the gift and every disbursement it paid for
are in the tree of the checkpoint at ``URL/checkpoint`` (verified with the pinned key), and
that the receipt's own checkpoint is consistent with it.  ``--witness VKEY… [--quorum K]``
or ``--policy FILE`` (:mod:`api.cli_policy`) asks a quorum of witnesses' cosignatures on the
checkpoint the proofs rely on: the tiles' one with ``--tiles``, else the receipt's.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import urllib.error
import urllib.request

import click

from ledger.charity.money import format_amount
from ledger.charity.receipt_check import CheckedReceipt, check_receipt, check_tlog_proof
from ledger.errors import LuodiError, ReceiptInvalid, RemoteError, VerificationFailed
from ledger.log.note import Verifier
from ledger.log.tlog_proof import HEADER

from .cli_policy import load_policy, witness_options

TIMEOUT_SECONDS = 30
MAX_BYTES = 16 << 20
_ASKED = re.compile(r"/receipts/([0-9a-f]{64})(?:\.tlog-proof)?/?(?:[?#].*)?$")


class _Refused(Exception):
    """A usage or network error: exit 2, saying which."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def _read(source: str, timeout: float = TIMEOUT_SECONDS) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(urllib.request.Request(source), timeout=timeout) as resp:
                data = resp.read(MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise _Refused("network", f"{source} answered {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _Refused("network", f"cannot reach {source}: {getattr(exc, 'reason', exc)}") from exc
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except OSError as exc:
            raise _Refused("usage", f"cannot read {source}: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise _Refused("usage", f"{source} is larger than {MAX_BYTES} bytes: not a receipt")
    return data


def _check(data: bytes, verifier: Verifier, salt, donor_ref, remote: bool, policy=None) -> tuple[str, CheckedReceipt]:
    if data.startswith(HEADER.encode() + b"\n"):
        return "tlog-proof", check_tlog_proof(data, verifier, salt=salt, donor_ref=donor_ref, policy=policy)
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        what = "the server's answer is" if remote else "the file is"
        raise _Refused("network" if remote else "usage", f"{what} neither JSON nor a tlog-proof (first line {HEADER})") from exc
    return "json", check_receipt(doc, verifier, salt=salt, donor_ref=donor_ref, policy=policy)


def _money(amount: int | None, currency: str) -> str | None:
    return None if amount is None else format_amount(amount, currency)


def report(form: str, c: CheckedReceipt, log_key: str) -> dict:
    """The machine-readable report of a receipt that checked out."""
    cur = c.currency
    return {
        "ok": True,
        "form": form,
        "inclusion_only": c.inclusion_only,
        "receipt": c.entry.receipt,
        "seq": c.entry.seq,
        "project": c.entry.body["project"],
        "charity": c.charity,
        "currency": cur,
        "amount": _money(c.amount, cur),
        "spent": _money(c.spent, cur),
        "refunded": _money(c.refunded, cur),
        "unspent": _money(c.unspent, cur),
        "tree_size": c.tree_size,
        "root": base64.b64encode(c.root).decode(),
        "log_key": log_key,
        "donor_commitment": "checked" if c.donor_checked else "not checked",
        "allocations": [
            {
                "disbursement": a.disbursement.receipt,
                "seq": a.disbursement.seq,
                "amount": format_amount(a.amount, cur),
                "disbursement_amount": format_amount(a.disbursement.body["payload"]["amount"], cur),
                "payee": a.disbursement.body["payload"]["payee"]["name"],
                "purpose": a.disbursement.body["payload"]["purpose"],
                "period": a.disbursement.body["payload"]["period"],
                "evidence": a.disbursement.body["payload"]["evidence"],
            }
            for a in c.allocations
        ],
    }


def _words(r: dict) -> list[str]:
    cur = r["currency"]
    lines = [
        f"ok: the {'tlog-proof' if r['inclusion_only'] else 'receipt'} checks out against log key {r['log_key']}",
        f"gift: {r['amount']} {cur} to project {r['project']}, entry seq {r['seq']}, receipt {r['receipt']}",
        f"in the log: included in the tree of size {r['tree_size']}, root {r['root']}, signed by the pinned key",
    ]
    if "tiles" in r:
        t = r["tiles"]
        lines.append(
            f"from tiles at {t['url']}: the checkpoint there (tree size {t['tree_size']}, root {t['root']}) is signed "
            f"by the pinned key, proves seq {', '.join(map(str, t['entries_proven']))} included, and is consistent "
            f"with the receipt's tree of size {t['consistent_from']}"
        )
    if "witnesses" in r:
        w = r["witnesses"]
        lines.append(f"witnesses: cosigned by {', '.join(w['cosigned']) or 'none'}; the policy needs {w['policy']}")
    if r["donor_commitment"] == "checked":
        lines.append("donor commitment: matches your salt and donor reference (the gift is yours)")
    else:
        lines.append("donor commitment: not checked (give --salt and --donor-ref to check it)")
    if r["inclusion_only"]:
        lines.append(
            "note: a .tlog-proof proves the donation's inclusion in the log only; where the money went "
            "(the disbursements) needs the JSON receipt, GET /v1/receipts/<leaf_hash>"
        )
        return lines
    if r["allocations"]:
        lines.append(f"paid for (each disbursement signed by the keys charity {r['charity']} had in the log then):")
    for a in r["allocations"]:
        period = f"{a['period']['start']} to {a['period']['end']}"
        lines.append(
            f"  {a['amount']} {cur} of a {a['disbursement_amount']} {cur} payment to {a['payee']}: {a['purpose']} "
            f"({period}); disbursement seq {a['seq']}, receipt {a['disbursement']}"
        )
        for ev in a["evidence"]:
            lines.append(f"    evidence {ev['sha256']}  {ev['description']}")
    lines.append(f"spent {r['spent']} {cur}, refunded {r['refunded']} {cur}, unspent {r['unspent']} {cur}")
    return lines


def _fail(as_json: bool, code: int, kind: str, detail: str, part: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": kind, "part": part, "detail": detail}, ensure_ascii=False))
    else:
        label = "receipt invalid" if code == 1 else f"{kind} error"
        click.echo(f"{label}: {detail}", err=True)
    sys.exit(code)


@click.command("verify-receipt")
@click.argument("source")
@click.option("--log-key", required=True, help="The log's verifier key, as the charity or regulator published it.")
@click.option("--salt", help="The salt your receipt gave you (hex), to check the donor commitment.")
@click.option("--donor-ref", help="Your donor reference, as you gave it with the gift.")
@click.option("--tiles", help="Also prove the gift and what it paid for from C2SP tiles at this URL prefix or folder, "
                              "against its /checkpoint.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=TIMEOUT_SECONDS, show_default=True,
              help="Seconds each request may take to answer.")
@witness_options
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
def verify_receipt(source, log_key, salt, donor_ref, tiles, timeout, witnesses, quorum, policy_file, as_json):
    """Check a receipt (JSON or .tlog-proof; a file or a URL) against the pinned log key, offline or from tiles."""
    try:
        if (salt is None) != (donor_ref is None):
            raise _Refused("usage", "--salt and --donor-ref go together")
        try:
            verifier = Verifier.from_string(log_key)
        except LuodiError as exc:
            raise _Refused("usage", f"--log-key: {exc.detail}") from exc
        try:
            policy = load_policy(witnesses, quorum, policy_file, verifier)
        except click.UsageError as exc:
            raise _Refused("usage", exc.format_message()) from exc
        remote = source.startswith(("http://", "https://"))
        # From tiles, the policy is the tiles' checkpoint's to meet (the receipt's is proven consistent with it).
        form, checked = _check(_read(source, timeout), verifier, salt, donor_ref, remote, None if tiles else policy)
        asked = _ASKED.search(source)
        if asked and asked.group(1) != checked.entry.receipt:
            raise ReceiptInvalid("leaf_hash", f"the server sent the receipt of {checked.entry.receipt}, not {asked.group(1)}")
        proven = _from_tiles(tiles, timeout, checked, verifier, policy) if tiles else None
    except _Refused as exc:
        _fail(as_json, 2, exc.kind, exc.detail)
    except VerificationFailed as exc:
        _fail(as_json, 1, "verification", exc.detail, getattr(exc, "part", None))
    except RemoteError as exc:
        _fail(as_json, 2, "network", exc.detail)
    except LuodiError as exc:  # the caller's own input (a salt that is not hex ...)
        _fail(as_json, 2, "usage", exc.detail)
    r = report(form, checked, verifier.to_string())
    if policy is not None:
        cosigned = proven.witnesses if proven else checked.witnesses
        r["witnesses"] = {"cosigned": dict(sorted(cosigned.items())), "policy": policy.describe()}
    if proven is not None:
        r["tiles"] = {"url": proven.base, "tree_size": proven.size, "root": base64.b64encode(proven.root).decode(),
                      "entries_proven": list(proven.seqs), "consistent_from": checked.tree_size,
                      "requests": proven.requests}
    if as_json:
        click.echo(json.dumps(r, ensure_ascii=False, sort_keys=True))
    else:
        click.echo("\n".join(_words(r)))


def _from_tiles(location: str, timeout: float, checked: CheckedReceipt, verifier: Verifier, policy):
    from ledger.charity.receipt_tiles import check_from_tiles

    from .tile_fetch import tile_fetcher

    fetch = tile_fetcher(location, timeout)
    proven = check_from_tiles(checked, fetch, verifier, policy)
    proven.base, proven.requests = fetch.base, fetch.requests
    return proven
