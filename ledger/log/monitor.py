"""A monitor's memory: the last checkpoint it verified, kept in a small JSON file.

Run after run, a monitor (``luodi audit --state FILE``) must see the log only
grow.  The state holds the last verified checkpoint (its note, size and root),
the receipt hash of the last entry that checkpoint covers, the pinned log key
and the URL.  The next run checks:

- that the server's new checkpoint is not smaller (a log that shrank: a
  rollback, or its tail truncated together with its checkpoints);
- that the entries it streams rebuild, at the saved size, exactly the saved root
  and end in the saved receipt (:meth:`MonitorState.check_prefix`): the new log
  extends the old one entry for entry, so a second history signed with the same
  key (a fork) fails;
- the server's RFC 9162 consistency proof from the saved checkpoint to the new
  one (:meth:`MonitorState.check_consistency`).

The file is written only after a run that passed, atomically (a temporary file
in the same folder, fsync, ``os.replace``), with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInput, LogCorrupted, MalformedNote, Misreported, ProofError
from .fields import is_hex64
from .merkle import verify_consistency
from .note import Verifier

FORMAT = "luodi-monitor-state/1"


@dataclass(frozen=True)
class MonitorState:
    log_key: str
    url: str
    size: int
    root: bytes
    checkpoint: str  # the signed note
    last_receipt: str  # receipt hash of entry size - 1

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "log_key": self.log_key,
            "url": self.url,
            "tree_size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "checkpoint": self.checkpoint,
            "last_receipt": self.last_receipt,
        }

    @classmethod
    def from_json(cls, data, where: str = "the state file") -> "MonitorState":
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT!r}")
            size, receipt = data["tree_size"], data["last_receipt"]
            if type(size) is not int or size < 1:
                raise ValueError("tree_size is not a positive integer")
            if not is_hex64(receipt):
                raise ValueError("last_receipt is not 64 lowercase hex digits")
            root = base64.b64decode(data["root"], validate=True)
            if len(root) != 32:
                raise ValueError("root is not a 32-byte hash")
            for name in ("log_key", "url", "checkpoint"):
                if not isinstance(data[name], str):
                    raise ValueError(f"{name} is not a string")
            return cls(data["log_key"], data["url"], size, root, data["checkpoint"], receipt)
        except (AttributeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise InvalidInput(f"{where} is not a monitor state: {exc}") from None

    def check_prefix(self, size: int, root: bytes, last_receipt: str | None) -> None:
        """The log followed to the saved size has the saved root and last receipt."""
        if size != self.size:  # pragma: no cover - the caller stops exactly there
            raise ValueError("check_prefix needs the log followed to the saved size")
        if last_receipt is None or not hmac.compare_digest(last_receipt.encode(), self.last_receipt.encode()):
            raise LogCorrupted(
                size - 1,
                f"the log was rewritten: entry {size - 1} was {self.last_receipt} when the saved checkpoint "
                "was verified",
                last_receipt,
            )
        if not hmac.compare_digest(root, self.root):
            raise LogCorrupted(
                size - 1,
                f"the log was rewritten: its first {size} entries no longer have the root of the saved checkpoint",
                last_receipt,
            )

    def check_grown(self, new_size: int) -> None:
        """The server's checkpoint is at least as large as the saved one."""
        if new_size < self.size:
            raise Misreported(
                f"the log shrank: the server's checkpoint is at tree size {new_size}, but tree size {self.size} "
                "was verified before (a rollback, or a truncated tail)"
            )

    def check_consistency(self, new_size: int, new_root: bytes, proof: list[bytes]) -> None:
        """The server's consistency proof from the saved checkpoint to the new one verifies."""
        try:
            verify_consistency(self.size, new_size, self.root, new_root, proof)
        except ProofError as exc:
            raise Misreported(
                f"consistency proof from the saved tree size {self.size} to {new_size}: {exc.detail}"
            ) from exc


def load_state(path: str | Path, log_key: str | Verifier) -> MonitorState | None:
    """The state saved at ``path`` (None if there is none yet).

    A state of another log key is refused (:class:`InvalidInput`): a monitor
    follows one log."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the state file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidInput(f"the state file {path} is not JSON") from None
    state = MonitorState.from_json(data, f"the state file {path}")
    pinned = Verifier.from_string(log_key) if isinstance(log_key, str) else log_key
    try:
        saved = Verifier.from_string(state.log_key)
    except MalformedNote as exc:
        raise InvalidInput(f"the state file {path} holds a malformed log key") from exc
    if saved != pinned:
        raise InvalidInput(
            f"the state file {path} belongs to the log key {state.log_key}, not {pinned.to_string()}: "
            "use another state file for another log"
        )
    return state


def save_state(path: str | Path, state: MonitorState) -> None:
    """Write ``state`` atomically with mode 0600: a reader sees the old file or the new one."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    data = (json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n").encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # the rename itself is durable once the folder is synced
        dirfd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder we just wrote into
        return
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
