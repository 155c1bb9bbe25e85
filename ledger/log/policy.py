"""C2SP tlog-policy (https://c2sp.org/tlog-policy): which logs, which witnesses, what quorum.

A policy file is lines of whitespace-separated items (spaces and tabs only);
blank lines and ``#`` comments are ignored::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <name>...
    quorum <name>|none

- Witnesses and groups share one namespace, and ``none`` is reserved.
- A group or the quorum may only name what earlier lines defined, and a name
  is a group member at most once.
- No two logs, and no two witnesses, may wrap the same public key.
- Exactly one ``quorum`` line.

A checkpoint is valid when one of the logs signed it and the witnesses that
cosigned it (:mod:`.cosignature`) meet the quorum.  The log, the verifiers and
the donor page all decide this here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MalformedNote, QuorumNotMet, SignatureError
from .checkpoint import Checkpoint, open_checkpoint
from .cosignature import CosignatureVerifier, verify_cosignatures
from .note import Verifier

NONE = "none"
_WS = re.compile(r"[ \t]+")
_BAD_OCTET = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
MAX_ITEMS = 1024


@dataclass(frozen=True)
class Witness:
    name: str
    verifier: CosignatureVerifier
    url: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int
    members: tuple[str, ...]


class Policy:
    """A parsed tlog-policy: ``logs``, ``witnesses`` by name, groups, and the quorum's name."""

    def __init__(self, logs=(), witnesses=(), groups=(), quorum: str = NONE, log_urls=None):
        self.logs: tuple[Verifier, ...] = tuple(logs)
        self.log_urls: dict[str, str | None] = dict(log_urls or {})
        self.witnesses: dict[str, Witness] = {w.name: w for w in witnesses}
        self.groups: dict[str, Group] = {g.name: g for g in groups}
        self.quorum = quorum

    # ---- reading and writing ----

    @classmethod
    def parse(cls, text: str) -> "Policy":
        """Read a policy file; :class:`MalformedNote` names the first bad line."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "strict")
        builder = _Builder()
        for number, line in enumerate(text.split("\n"), 1):
            try:
                builder.line(line)
            except MalformedNote as exc:
                raise MalformedNote(f"policy line {number}: {exc.detail}") from None
        return builder.finish()

    @classmethod
    def of(cls, witness_vkeys, quorum: int, logs=()) -> "Policy":
        """The policy of ``--witness VKEY`` (repeated) and ``--quorum K``: K of those witnesses.

        With no witnesses and a quorum of 0 it is ``quorum none``."""
        b = _Builder()
        for vkey in logs:
            b.line(f"log {vkey}")
        names = []
        for vkey in witness_vkeys:
            name = CosignatureVerifier.from_string(vkey).name
            b.line(f"witness {name} {vkey}")
            names.append(name)
        if quorum == 0 and not names:
            b.line(f"quorum {NONE}")
        else:
            if not 1 <= quorum <= len(names):
                raise MalformedNote(f"the quorum must be between 1 and the number of witnesses ({len(names)})")
            group = "quorum-group"
            b.line(f"group {group} {quorum} " + " ".join(names))
            b.line(f"quorum {group}")
        return b.finish()

    def to_text(self) -> str:
        lines = [f"log {v.to_string()}" + (f" {self.log_urls[v.name]}" if self.log_urls.get(v.name) else "")
                 for v in self.logs]
        lines += [f"witness {w.name} {w.verifier.to_string()}" + (f" {w.url}" if w.url else "")
                  for w in self.witnesses.values()]
        lines += [f"group {g.name} {g.threshold} " + " ".join(g.members) for g in self.groups.values()]
        lines.append(f"quorum {self.quorum}")
        return "\n".join(lines) + "\n"

    # ---- deciding ----

    @property
    def none(self) -> bool:
        return self.quorum == NONE

    def describe(self) -> str:
        """The quorum in words, e.g. ``2 of w1, w2, w3``."""
        return self._describe(self.quorum)

    def _describe(self, name: str) -> str:
        if name == NONE:
            return "no witness"
        group = self.groups.get(name)
        if group is None:
            return name
        inner = ", ".join(self._describe(m) for m in group.members)
        return f"{group.threshold} of ({inner})" if len(group.members) > 1 else inner

    def witnessed(self, names) -> bool:
        """Do the witnesses ``names`` (those that cosigned) meet the quorum?"""
        names = set(names)
        return self._met(self.quorum, names)

    def _met(self, name: str, names: set[str]) -> bool:
        if name == NONE:
            return True
        group = self.groups.get(name)
        if group is None:
            return name in names
        return sum(self._met(m, names) for m in group.members) >= group.threshold

    def check(self, note: str | bytes, log: Verifier | None = None) -> tuple[Checkpoint, dict[str, int]]:
        """Verify ``note``: a log's signature (``log``, else one of the policy's), every
        cosignature by a known witness, and the quorum.  Returns the checkpoint and the
        witnesses that cosigned it, each with its timestamp."""
        logs = [log] if log is not None else list(self.logs)
        if not logs:
            raise SignatureError("the policy names no log and no log key was given")
        checkpoint, error = None, None
        for verifier in logs:
            try:
                checkpoint = open_checkpoint(note, verifier)
                break
            except SignatureError as exc:
                error = exc
        if checkpoint is None:
            raise error
        cosigned = verify_cosignatures(note, [w.verifier for w in self.witnesses.values()])
        by_name = {w.name: ts for w in self.witnesses.values() for v, ts in cosigned.items() if v == w.verifier}
        if not self.witnessed(by_name):
            have = ", ".join(sorted(by_name)) or "none"
            raise QuorumNotMet(
                f"checkpoint of size {checkpoint.size} is cosigned by {len(by_name)} of the policy's "
                f"witnesses ({have}); the policy needs {self.describe()}",
                cosigned=sorted(by_name), size=checkpoint.size,
            )
        return checkpoint, by_name


class _Builder:
    """Reads a policy line by line, keeping the spec's rules as it goes."""

    def __init__(self):
        self.logs: list[Verifier] = []
        self.log_urls: dict[str, str | None] = {}
        self.witnesses: list[Witness] = []
        self.groups: list[Group] = []
        self.names: set[str] = set()
        self.members: set[str] = set()
        self.keys: set[bytes] = set()
        self.quorum: str | None = None

    def line(self, raw: str) -> None:
        if _BAD_OCTET.search(raw):
            raise MalformedNote("only tab and newline may be control characters")
        items = [i for i in _WS.split(raw.strip(" \t")) if i]
        if not items or items[0].startswith("#"):
            return
        if len(self.names) + len(self.logs) > MAX_ITEMS:
            raise MalformedNote(f"a policy holds at most {MAX_ITEMS} logs, witnesses and groups")
        keyword, args = items[0], items[1:]
        if keyword == "log" and len(args) in (1, 2):
            v = Verifier.from_string(args[0])
            self._new_key(v.public_key, "log")
            self.logs.append(v)
            self.log_urls[v.name] = args[1] if len(args) == 2 else None
        elif keyword == "witness" and len(args) in (2, 3):
            v = CosignatureVerifier.from_string(args[1])
            self._new_name(args[0])
            self._new_key(v.public_key, "witness")
            self.witnesses.append(Witness(args[0], v, args[2] if len(args) == 3 else None))
        elif keyword == "group" and len(args) >= 3:
            name, k, members = args[0], args[1], args[2:]
            for m in members:
                if m not in self.names:
                    raise MalformedNote(f"group {name} names {m!r}, which no earlier line defines")
                if m in self.members:
                    raise MalformedNote(f"{m!r} is already a member of a group")
            if len(set(members)) != len(members):
                raise MalformedNote(f"group {name} lists a member twice")
            threshold = {"all": len(members), "any": 1}.get(k)
            if threshold is None:
                if not re.fullmatch(r"[1-9][0-9]{0,5}", k) or not 1 <= int(k) <= len(members):
                    raise MalformedNote(f"group {name}'s threshold must be all, any or 1 to {len(members)}")
                threshold = int(k)
            self._new_name(name)
            self.members.update(members)
            self.groups.append(Group(name, threshold, tuple(members)))
        elif keyword == "quorum" and len(args) == 1:
            if self.quorum is not None:
                raise MalformedNote("a policy has exactly one quorum line")
            if args[0] != NONE and args[0] not in self.names:
                raise MalformedNote(f"the quorum names {args[0]!r}, which no earlier line defines")
            self.quorum = args[0]
        else:
            raise MalformedNote(f"not a policy line: {' '.join(items)[:80]!r}")

    def _new_name(self, name: str) -> None:
        if name == NONE:
            raise MalformedNote("'none' is reserved")
        if name in self.names:
            raise MalformedNote(f"the name {name!r} is defined twice")
        self.names.add(name)

    def _new_key(self, key: bytes, what: str) -> None:
        if key in self.keys:
            raise MalformedNote(f"this {what}'s public key is already in the policy")
        self.keys.add(key)

    def finish(self) -> Policy:
        if self.quorum is None:
            raise MalformedNote("a policy needs a quorum line")
        return Policy(self.logs, self.witnesses, self.groups, self.quorum, self.log_urls)
