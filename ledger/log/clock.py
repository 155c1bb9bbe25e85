"""RFC 3339 UTC times with milliseconds: the only time format in entries and payloads."""

from __future__ import annotations

import datetime as _dt
import re

from ..errors import InvalidEntry

_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def format_time(moment: _dt.datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``: ``2026-11-29T04:31:04.123Z``."""
    m = moment.astimezone(_dt.timezone.utc)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond // 1000:03d}Z"
    )


def utc_now() -> str:
    return format_time(_dt.datetime.now(_dt.timezone.utc))


_last_good_time: str | None = None


def check_time(value) -> str:
    """Refuse anything but RFC 3339 UTC with milliseconds and Z, naming a real instant."""
    global _last_good_time
    if value == _last_good_time:  # a batch shares one time: check it once
        return value
    if type(value) is not str or not _TIME.fullmatch(value):
        raise InvalidEntry(f"time {value!r} is not RFC 3339 UTC with milliseconds and Z")
    try:
        _dt.datetime(
            int(value[0:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]), int(value[14:16]), int(value[17:19])
        )
    except ValueError as exc:
        raise InvalidEntry(f"time {value!r} is not a real date and time") from exc
    _last_good_time = value
    return value


def parse_time(value: str) -> _dt.datetime:
    """A checked time string as an aware datetime."""
    check_time(value)
    return _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)
