"""The verifiers' witness policy options: ``--witness VKEY`` (repeatable) with ``--quorum K``,
or ``--policy FILE`` (C2SP tlog-policy), for ``luodi audit`` and ``luodi verify-receipt``.

- ``--witness`` takes a witness's verifier key, a vkey of type 0x04
  (C2SP tlog-cosignature: ``name+<8 hex key ID>+base64(0x04 || Ed25519 key)``).
- ``--quorum K`` is how many of those witnesses must have cosigned the checkpoint;
  without it, **all** the witnesses given must have (a donor who names witnesses
  gets their check unless they lower it themselves).  ``--quorum`` without
  ``--witness`` is a usage error, and so is a K outside 1..the number of witnesses.
- ``--policy FILE`` is a tlog-policy file (witnesses, groups and the quorum line).
  Its ``log`` lines, if any, must include the pinned ``--log-key``: a policy for
  another log is a usage error.  ``quorum none`` asks for no cosignature.

The policy itself, and the quorum decision, are :class:`ledger.log.policy.Policy`'s
(one implementation); this module only reads the options.  Every refusal here is a
:class:`click.UsageError` (exit 2).
"""

from __future__ import annotations

import click

from ledger.errors import LuodiError
from ledger.log.note import Verifier
from ledger.log.policy import Policy

MAX_POLICY_BYTES = 1 << 20


def witness_options(f):
    """Add ``--witness``, ``--quorum`` and ``--policy`` to a command."""
    f = click.option("--policy", "policy_file", type=click.Path(dir_okay=False),
                     help="A C2SP tlog-policy file: the witnesses and the quorum the checkpoint must meet.")(f)
    f = click.option("--quorum", type=int, default=None,
                     help="How many of the --witness keys must have cosigned the checkpoint (default: all of them).")(f)
    f = click.option("--witness", "witnesses", multiple=True, metavar="VKEY",
                     help="A witness's verifier key (type 0x04, C2SP tlog-cosignature); repeat for each witness.")(f)
    return f


def load_policy(witnesses, quorum: int | None, policy_file: str | None, log_key: Verifier) -> Policy | None:
    """The policy the options give (None: no witness check), or a :class:`click.UsageError`."""
    if policy_file and (witnesses or quorum is not None):
        raise click.UsageError("give --policy FILE, or --witness VKEY… with --quorum K, not both")
    if quorum is not None and not witnesses:
        raise click.UsageError("--quorum needs the --witness keys it counts")
    if policy_file:
        try:
            with open(policy_file, "rb") as f:
                data = f.read(MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise click.UsageError(f"cannot read the policy file {policy_file}: {exc.strerror or exc}") from None
        if len(data) > MAX_POLICY_BYTES:
            raise click.UsageError(f"the policy file {policy_file} is larger than {MAX_POLICY_BYTES} bytes")
        try:
            policy = Policy.parse(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise click.UsageError(f"the policy file {policy_file} is not UTF-8 text") from None
        except LuodiError as exc:
            raise click.UsageError(f"the policy file {policy_file}: {exc.detail}") from None
        if policy.logs and log_key not in policy.logs:
            raise click.UsageError(
                f"the policy file {policy_file} lists its logs, and the pinned --log-key {log_key.to_string()} "
                "is not one of them"
            )
        return policy
    if not witnesses:
        return None
    try:
        return Policy.of(list(witnesses), len(witnesses) if quorum is None else quorum)
    except LuodiError as exc:
        raise click.UsageError(f"--witness/--quorum: {exc.detail}") from None
