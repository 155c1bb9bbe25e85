"""What a server publishes, checked against the books an auditor replayed from the log.

The remote audit (:mod:`ledger.charity.remote_audit`) hands these functions the
decoded JSON of ``/v1/projects`` and ``/v1/receipts/<leaf_hash>``, its own
books (:class:`ledger.charity.memory.MemoryBooks`) at the answer's tree size, and
the verified root at that size.  Every figure must be the replay's, every entry
item must hash to its leaf hash, and every proof must verify; anything that is
not what it claims to be (a proof that is not hex, a figure that is not a
string) is a :class:`Misreported` too, naming the seq and the part.
"""

from __future__ import annotations

from ..errors import LuodiError, Misreported, ProofError
from ..log.canonical import canonical_bytes
from ..log.fields import is_hex64
from ..log.merkle import leaf_hash, verify_inclusion
from .memory import MemoryBooks
from .money import format_amount


def hashes(value, what: str) -> list[bytes]:
    """A proof: a list of 64-digit lowercase hex hashes."""
    if not isinstance(value, list):
        raise Misreported(f"{what} is not a list of hashes")
    out = []
    for i, h in enumerate(value):
        if not is_hex64(h):
            raise Misreported(f"{what}[{i}] is not a 64-digit lowercase hex hash")
        out.append(bytes.fromhex(h))
    return out


def obj(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise Misreported(f"{what} is not a JSON object")
    return value


def check_proof(leaf: bytes, index: int, size: int, proof, root: bytes, what: str, part: str) -> None:
    """An inclusion proof (as published) of ``leaf`` at ``index`` verifies against ``root``."""
    path = hashes(proof, f"{what}: {part}")
    try:
        verify_inclusion(leaf, index, size, path, root)
    except ProofError as exc:
        raise Misreported(f"{what}: {part} does not verify at tree size {size}: {exc.detail}",
                          seq=index, part=part) from exc


def check_item(item, leaf: str, seq: int, what: str, part: str) -> None:
    """An entry item ``{seq, leaf_hash, entry}`` is the entry with that leaf hash at that seq."""
    item = obj(item, f"{what}: {part}")
    if item.get("leaf_hash") != leaf or item.get("seq") != seq:
        raise Misreported(f"{what}: {part} names another entry", seq=seq, part=part)
    try:
        data = canonical_bytes(item.get("entry"))
    except LuodiError as exc:
        raise Misreported(f"{what}: {part} is not an entry: {exc.detail}", seq=seq, part=part) from exc
    if leaf_hash(data).hex() != leaf:
        raise Misreported(f"{what}: {part} does not hash to its leaf hash", seq=seq, part=part)


def compare_projects(listed, mem: MemoryBooks, size: int) -> int:
    """``/v1/projects``' list equals the replayed projects, figure by figure; returns how many."""
    if not isinstance(listed, list):
        raise Misreported("/v1/projects: projects is not a list")
    theirs: dict = {}
    for i, p in enumerate(listed):
        p = obj(p, f"/v1/projects: projects[{i}]")
        if not isinstance(p.get("project"), str) or p["project"] in theirs:
            raise Misreported(f"/v1/projects: projects[{i}] has no project id, or a repeated one")
        theirs[p["project"]] = p
    mine = mem.projects()
    for project in mine:
        found = theirs.pop(project.project, None)
        where = f"project {project.project!r} (opened at seq {project.seq}, tree size {size})"
        if found is None:
            raise Misreported(f"{where}: the server does not list it", seq=project.seq, part="projects")
        cur = project.currency
        expect = {
            "project": project.project, "charity": project.charity, "currency": cur,
            "opened_seq": project.seq, "closed": project.closed, "donations": project.donations,
            "raised": format_amount(project.raised, cur), "spent": format_amount(project.spent, cur),
            "refunded": format_amount(project.refunded, cur), "balance": format_amount(project.balance, cur),
        }
        for name, value in expect.items():
            if found.get(name) != value or type(found.get(name)) is not type(value):
                raise Misreported(
                    f"{where}: the server says {name} {found.get(name)!r}, the log gives {value!r}",
                    seq=project.seq, part=f"projects.{name}",
                )
    if theirs:
        extra = sorted(theirs)[0]
        raise Misreported(f"/v1/projects lists project {extra!r}, which the log does not hold", part="projects")
    return len(mine)


def compare_receipt(doc: dict, mem: MemoryBooks, key: bytes, size: int, root: bytes) -> None:
    """A receipt's entry, proofs, figures and allocation equal the replay at ``size``,
    whose verified root is ``root``."""
    receipt = key.hex()
    donation = mem.donation(key)
    seq = donation.seq
    what = f"receipt {receipt} (seq {seq})"
    check_item(doc.get("entry"), receipt, seq, what, "entry")
    if doc.get("leaf_index") != seq:
        raise Misreported(f"{what}: leaf_index is {doc.get('leaf_index')!r}", seq=seq, part="leaf_index")
    check_proof(key, seq, size, doc.get("inclusion_proof"), root, what, "inclusion_proof")
    cur = donation.currency
    figures = {
        "currency": cur,
        "amount": format_amount(donation.amount, cur),
        "spent": format_amount(donation.spent, cur),
        "refunded": format_amount(donation.refunded, cur),
        "unspent": format_amount(donation.unspent, cur),
    }
    for name, value in figures.items():
        if doc.get(name) != value:
            raise Misreported(
                f"{what}: the server says {name} {doc.get(name)!r}, the log gives {value!r}", seq=seq, part=name
            )
    listed = doc.get("allocation")
    if not isinstance(listed, list):
        raise Misreported(f"{what}: allocation is not a list", seq=seq, part="allocation")
    theirs = []
    for i, a in enumerate(listed):
        part = f"allocation[{i}]"
        a = obj(a, f"{what}: {part}")
        d = obj(a.get("disbursement"), f"{what}: {part}.disbursement")
        d_hash, d_seq = d.get("leaf_hash"), a.get("leaf_index")
        if not is_hex64(d_hash) or type(d_seq) is not int:
            raise Misreported(f"{what}: {part} names no disbursement leaf hash and index", seq=seq, part=part)
        check_item(d, d_hash, d_seq, what, f"{part}.disbursement")
        check_proof(bytes.fromhex(d_hash), d_seq, size, a.get("inclusion_proof"), root, what, f"{part}.inclusion_proof")
        theirs.append((d_hash, a.get("amount")))
    mine = [(d, format_amount(amount, cur)) for d, amount in mem.allocations_of(key)]
    if theirs != mine:
        at = next((i for i, (x, y) in enumerate(zip(theirs, mine)) if x != y), min(len(theirs), len(mine)))
        raise Misreported(
            f"{what}: the server's allocation differs from the FIFO replay at allocation[{at}] "
            f"(the server lists {len(theirs)}, the log gives {len(mine)})",
            seq=seq, part=f"allocation[{at}]",
        )
