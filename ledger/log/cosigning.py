"""The log gathers cosignatures from its witnesses (C2SP tlog-witness, tlog-cosignature, tlog-policy).

The operator names the witnesses and the quorum in a tlog-policy file
(:func:`log_policy` checks it is one for this log).  A :class:`Gatherer`, run
in a thread of its own beside the appends, then does what tlog-witness
§"add-checkpoint" asks of a client:

- At most once per ``interval`` it reads the log's latest signed checkpoint.
  If it is newer than the one being witnessed (and no gatherer of this log
  has stored a cosigned checkpoint that large yet), it becomes the one to
  witness.  Shared commits may sign many checkpoints a second: only the
  latest at each tick is ever submitted, so a witness gets at most one new
  checkpoint per interval (plus the one retry below).
- It submits it to every witness that has not cosigned it yet, concurrently:
  each witness has a courier thread of its own, so a witness that is slow or
  never answers holds up no other witness and no append (appends never wait
  for gathering), and a witness with a request under way is not sent another.
  Each request carries a consistency proof from the size the witness last
  said it holds.  Unknown at first, that is taken to be 0; the witness then
  answers 409 with its size (``text/x.tlog.size``), and the courier retries
  once with the proof from that size, and remembers it.  Two gatherers of
  one log (two servers on one database) stay correct the same way.
- Each 200 is signature lines: those by the witness's key (the policy's,
  for that witness) are verified and kept, a line by that key that fails
  rejects the answer, and lines by other keys are ignored (§"add-checkpoint":
  "The client MUST ignore any cosignatures from unknown keys").
- When the witnesses that cosigned meet the policy's quorum, it waits up to
  ``QUORUM_GRACE`` seconds for the others still under way, checks the note
  with :meth:`Policy.check` and stores it (:meth:`LogStore.add_cosigned_checkpoint`),
  once per tree size.  A witness that answers later still moves its size on.

Every change of state is reported as a JSON-able dict (:meth:`Gatherer.status`)
to a callback, which the server writes where all its workers read it.  The
HTTP requests go through a :class:`WitnessClient` that the edge supplies.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import InstanceError, LuodiError, MalformedNote, SignatureError
from .add_checkpoint import SIZE_CONTENT_TYPE, format_add_checkpoint, parse_cosignature_lines, parse_size
from .cosignature import merge_signatures
from .ledger import Ledger
from .note import Verifier, parse_note
from .policy import Policy, Witness

DEFAULT_INTERVAL = 1.0  # seconds between two looks at the log, as Tessera's default
DEFAULT_TIMEOUT = 5.0  # seconds a witness has to answer each request
QUORUM_GRACE = 0.25  # seconds the quorum's last cosignature waits for the witnesses still under way
ERROR_TEXT_MAX = 300
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?(/\S*)?")
log = logging.getLogger(__name__)


def log_policy(text: str | bytes, log_key: Verifier | None) -> Policy:
    """The witness policy of the log signed by ``log_key``, from a tlog-policy file's text.

    Refused (:class:`InstanceError`, one line) when the file does not parse, or
    when it names another log than ``log_key`` (not checked when None), asks for no cosignature (``quorum none``: remove
    the file to run without witnesses), names no witness, or a witness without
    an ``http://`` or ``https://`` submission URL (tlog-policy §"Defining a
    witness": the log needs the URL to reach it)."""
    try:
        policy = Policy.parse(text)
    except (MalformedNote, UnicodeDecodeError) as exc:
        raise InstanceError(getattr(exc, "detail", str(exc))) from None
    for other in policy.logs if log_key is not None else ():
        if other != log_key:
            raise InstanceError(f"its log line names {other.to_string()}, not this log's key {log_key.to_string()}")
    if policy.none:
        raise InstanceError("'quorum none' asks for no cosignature: remove the file to run without witnesses")
    if not policy.witnesses:
        raise InstanceError("it names no witness")
    for w in policy.witnesses.values():
        if not w.url or not _URL.fullmatch(w.url):
            raise InstanceError(f"witness {w.name} needs its submission URL (http:// or https://) after its key")
    return policy


class WitnessClient(Protocol):
    """One witness's HTTP connection (supplied by the edge)."""

    def add_checkpoint(self, body: bytes, timeout: float) -> tuple[int, str, bytes]:
        """POST ``<submission prefix>/add-checkpoint``; (status, content type, body).
        Raises OSError when the witness cannot be reached or is too slow."""

    def close(self) -> None: ...


@dataclass
class _Pending:
    """The checkpoint being witnessed, and the cosignature lines gathered for it (by witness name)."""

    size: int
    note: str
    lines: dict[str, str] = field(default_factory=dict)
    stored: bool = False
    since: float = field(default_factory=time.time)


@dataclass
class WitnessState:
    witness: Witness
    size: int = 0  # the size this witness last said it holds (0 until it says)
    requests: int = 0
    busy: bool = False
    job: _Pending | None = None
    last_success: float | None = None
    last_success_size: int | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def status(self) -> dict:
        w = self.witness
        return {
            "name": w.name, "key": w.verifier.to_string(), "url": w.url, "size": self.size,
            "requests": self.requests, "busy": self.busy,
            "last_success_at": self.last_success, "last_success_size": self.last_success_size,
            "last_error": self.last_error, "last_error_at": self.last_error_at,
        }


class _Refused(Exception):
    """A witness's answer that gives no cosignature; the text says why."""


class Gatherer:
    """Gathers cosignatures on ``ledger``'s checkpoints from the witnesses of ``policy``."""

    def __init__(
        self,
        ledger: Ledger,
        policy: Policy,
        client_for: Callable[[Witness], WitnessClient],
        *,
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        report: Callable[[dict], None] | None = None,
    ):
        self.ledger = ledger
        self.policy = policy
        self.interval = interval
        self.timeout = timeout
        self.report = report
        self.states = {name: WitnessState(w) for name, w in policy.witnesses.items()}
        self._clients = {name: client_for(w) for name, w in policy.witnesses.items()}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pending: _Pending | None = None
        self._wakes = {name: threading.Event() for name in self.states}
        self._threads: list[threading.Thread] = []
        self.rounds = 0
        self._active = 0  # courier threads between taking a job and having stored what it gave
        self.error: str | None = None
        self.error_at: float | None = None
        self.stored: tuple[int, float] | None = None  # (size, when) of the last cosigned checkpoint stored

    # -- running -------------------------------------------------------------------

    def start(self) -> None:
        """The gathering thread and one courier thread per witness (daemons)."""
        self.start_couriers()
        t = threading.Thread(target=self.run, name="witness-gatherer", daemon=True)
        t.start()
        self._threads.append(t)

    def start_couriers(self) -> None:
        """Only the witnesses' courier threads: :meth:`tick` then sends (tests drive it so)."""
        for name in self.states:
            t = threading.Thread(target=self._courier, args=(name,), name=f"witness-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        for wake in self._wakes.values():
            wake.set()
        for t in self._threads:
            t.join(wait)
        for client in self._clients.values():
            client.close()

    def run(self) -> None:
        """Look at the log once per interval until stopped."""
        while not self._stop.is_set():
            began = time.monotonic()
            self.tick()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def tick(self) -> None:
        """One look at the log: take its latest checkpoint if new, send it to the
        witnesses that have not cosigned it and are not busy, store it if met."""
        self.rounds += 1
        try:
            self._tick()
            self.error = None
        except LuodiError as exc:  # storage unavailable, say: try again at the next tick
            self._failed(exc.detail)
        except Exception as exc:  # noqa: BLE001 - the thread must go on; the status says what broke
            log.exception("witness gathering failed")
            self._failed(f"{type(exc).__name__}: {exc}")
        self._report()

    def _failed(self, text: str) -> None:
        self.error, self.error_at = text[:ERROR_TEXT_MAX], time.time()

    def _tick(self) -> None:
        found = self.ledger.store.checkpoint()
        if found is None:
            return
        size, note = found
        with self._cond:
            pending = self._pending
            if pending is None or size > pending.size:
                cosigned = self.ledger.store.cosigned_checkpoint()
                if cosigned is not None and cosigned[0] >= size:
                    return  # another gatherer of this log got there first
                pending = self._pending = _Pending(size, note)
            for name, state in self.states.items():
                if name not in pending.lines and not state.busy:
                    state.busy, state.job = True, pending
                    self._wakes[name].set()
        self._store_if_met(pending, wait=False)

    def idle(self) -> bool:
        """No request under way and no answer still being handled."""
        with self._cond:
            return self._active == 0 and not any(s.busy for s in self.states.values())

    # -- one witness -----------------------------------------------------------------

    def _courier(self, name: str) -> None:
        state, wake = self.states[name], self._wakes[name]
        while True:
            wake.wait()
            wake.clear()
            if self._stop.is_set():
                return
            job = state.job
            with self._cond:
                self._active += 1
            try:
                line = self._submit(name, state, job)
            except (_Refused, OSError, LuodiError) as exc:
                self._note_error(state, str(exc) if not isinstance(exc, LuodiError) else exc.detail)
                line = None
            except Exception as exc:  # noqa: BLE001 - a courier must outlive any one answer
                log.exception("witness %s", name)
                self._note_error(state, f"{type(exc).__name__}: {exc}")
                line = None
            with self._cond:
                state.busy = False
                if line is not None:
                    state.last_success, state.last_success_size = time.time(), job.size
                    state.last_error = None
                    job.lines.setdefault(name, line)
                self._cond.notify_all()
            if line is not None:
                try:
                    self._store_if_met(job, wait=True)
                except LuodiError as exc:  # tried again at the next tick
                    self._failed(exc.detail)
                except Exception as exc:  # noqa: BLE001 - as above
                    log.exception("storing a cosigned checkpoint failed")
                    self._failed(f"{type(exc).__name__}: {exc}")
            self._report()
            with self._cond:
                self._active -= 1

    def _note_error(self, state: WitnessState, text: str) -> None:
        with self._cond:
            state.last_error, state.last_error_at = text[:ERROR_TEXT_MAX], time.time()

    def _submit(self, name: str, state: WitnessState, job: _Pending) -> str:
        """Send ``job`` to the witness (again once after a 409); its verified cosignature line."""
        client = self._clients[name]
        for attempt in (1, 2):
            old = state.size
            if old > job.size:
                raise _Refused(f"the witness holds size {old}, beyond {job.size}: it has a newer checkpoint of this log")
            proof = self.ledger.consistency_proof(old, job.size) if 0 < old < job.size else []
            body = format_add_checkpoint(old, proof, job.note)
            with self._cond:
                state.requests += 1
            try:
                status, content_type, data = client.add_checkpoint(body, self.timeout)
            except OSError as exc:
                client.close()
                raise OSError(f"no answer: {exc}") from None
            if status == 200:
                line = self._cosignature(state.witness, job, data)
                with self._cond:
                    state.size = max(state.size, job.size)
                return line
            if status == 409 and content_type.split(";")[0].strip() == SIZE_CONTENT_TYPE:
                held = parse_size(data)
                with self._cond:
                    state.size = held
                if attempt == 1:
                    continue
                raise _Refused(f"409 again: the witness now holds size {held}")
            raise _Refused(f"{status} {_snippet(data)}".strip())
        raise AssertionError("unreachable")

    def _cosignature(self, witness: Witness, job: _Pending, data: bytes) -> str:
        """The witness's own line out of a 200's body, verified on ``job``'s checkpoint."""
        try:
            lines = parse_cosignature_lines(data)
        except MalformedNote as exc:
            raise _Refused(f"200 but not signature lines: {exc.detail}") from None
        text = parse_note(job.note).text
        mine = None
        for line in lines.splitlines():
            sig = parse_note(text + "\n" + line + "\n").signatures[0]
            if not witness.verifier.matches(sig):
                continue  # another key's line: ignored
            try:
                witness.verifier.verify(text, sig)
            except SignatureError as exc:
                raise _Refused(f"its cosignature does not verify: {exc.detail}") from None
            mine = mine or line + "\n"
        if mine is None:
            raise _Refused("200 without a cosignature by the witness's key")
        return mine

    # -- the quorum ----------------------------------------------------------------------

    def _store_if_met(self, job: _Pending, wait: bool) -> None:
        """Store ``job``'s checkpoint with its cosignatures once they meet the quorum:
        first waiting (``wait``) up to QUORUM_GRACE for the witnesses still sending it."""
        with self._cond:
            if job.stored or not self.policy.witnessed(job.lines):
                return
            deadline = time.monotonic() + QUORUM_GRACE
            while wait and any(s.busy and s.job is job for s in self.states.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if job.stored:
                return
            job.stored = True  # this thread stores it; the others leave it
            lines = "".join(job.lines[name] for name in sorted(job.lines))
        try:
            note = merge_signatures(job.note, lines)
            self.policy.check(note, self.ledger.verifier)
            self.ledger.store.add_cosigned_checkpoint(job.size, note)
        except BaseException:
            with self._cond:
                job.stored = False  # tried again at the next tick
            raise
        with self._cond:
            self.stored = (job.size, time.time())

    # -- what it reports ---------------------------------------------------------------

    def status(self) -> dict:
        with self._cond:
            pending = self._pending
            return {
                "updated_at": time.time(),
                "interval_seconds": self.interval,
                "timeout_seconds": self.timeout,
                "rounds": self.rounds,
                "witnessing_size": pending.size if pending else None,
                "witnessing_since": pending.since if pending else None,
                "cosigned_by": sorted(pending.lines) if pending else [],
                "last_stored_size": self.stored[0] if self.stored else None,
                "last_stored_at": self.stored[1] if self.stored else None,
                "error": self.error,
                "error_at": self.error_at,
                "witnesses": [s.status() for s in self.states.values()],
            }

    def _report(self) -> None:
        if self.report is None:
            return
        try:
            self.report(self.status())
        except Exception:  # noqa: BLE001 - a status that cannot be written must not stop gathering
            log.exception("witness status report failed")


def _snippet(data: bytes) -> str:
    """The first line of a refusal's body, short and printable."""
    text = data[:200].decode("utf-8", "replace").strip().splitlines()
    return "".join(c for c in (text[0] if text else "") if c.isprintable())[:120]
