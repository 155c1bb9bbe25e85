"""Which database an instance uses: SQLite in the folder, or a PostgreSQL server.

``luodi init --database postgresql://…`` records the URL in the instance
folder, in ``database.url`` (mode 0600, refused when others may read it, as
key files are).  ``LUODI_DATABASE_URL`` in the environment overrides that
file.  With neither, the instance's database is ``luodi.sqlite`` in the
folder.  A password may be in the URL, or come from ``PGPASSWORD`` or
``~/.pgpass`` (libpq reads them itself); a URL is never printed with its
password: every message goes through :func:`redact`.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ledger.errors import InstanceError

URL_NAME = "database.url"
ENV_VAR = "LUODI_DATABASE_URL"
SCHEMES = ("postgresql://", "postgres://")

# The password of a URL's userinfo (user:PASSWORD@host), and a password=… parameter.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*:)(?P<password>[^?#]*)@", re.S)
_PARAMETER = re.compile(r"(?P<head>(?:^|[?&;\s])password\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'|[^&#\s]*)", re.I)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``: the userinfo's
    (``user:secret@host``) and a ``password=`` parameter's."""
    url = _USERINFO.sub(lambda m: m.group("head") + "***@", url, count=1)
    return _PARAMETER.sub(lambda m: m.group("head") + "***", url)


def is_database_url(text: str) -> bool:
    """Whether ``text`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return text.startswith(SCHEMES)


def check_url(url: str, where: str) -> str:
    """``url`` if it names a PostgreSQL database, else :class:`InstanceError`
    saying ``where`` it came from (and never its password)."""
    url = url.strip()
    if not is_database_url(url) or "\n" in url:
        raise InstanceError(
            f"{where} is not a PostgreSQL URL (postgresql://… or postgres://…): {redact(url)!r}"
        )
    return url


def url_file(root: str | Path) -> Path:
    return Path(root) / URL_NAME


def recorded_url(root: str | Path) -> str | None:
    """The URL recorded in the instance folder ``root``, or None; a file that
    others may read, or that holds no PostgreSQL URL, is refused."""
    path = url_file(root)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InstanceError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    try:
        text = path.read_text()
    except OSError as exc:
        raise InstanceError(f"cannot read {path}: {exc.strerror}") from exc
    return check_url(text, str(path))


def env_url() -> str | None:
    """The URL ``LUODI_DATABASE_URL`` names, or None if it is unset or empty."""
    text = os.environ.get(ENV_VAR, "")
    return check_url(text, ENV_VAR) if text.strip() else None


def database_url(root: str | Path) -> str | None:
    """The PostgreSQL URL the instance at ``root`` uses (the environment's, else
    the recorded one), or None for its SQLite file."""
    return env_url() or recorded_url(root)
