"""A project's money in and out over time, as the points of two SVG polylines
drawn on the server (no script needed to see it).

Money in is the cumulative sum of donations; money out that of disbursements
and refunds.  Amounts are integers; only the drawing coordinates are floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.log.entry import Entry

WIDTH, HEIGHT, PAD = 640, 240, 8
OUT_KINDS = ("disbursement", "refund")


@dataclass(frozen=True)
class Chart:
    money_in: str  # the polyline's points
    money_out: str
    top: int  # minor units at the top of the chart
    start: str  # the first and last times, RFC 3339
    end: str
    width: int = WIDTH
    height: int = HEIGHT


def _amount(entry: Entry) -> int:
    body = entry.body.get("payload", entry.body)
    return int(body.get("amount", 0))


def _seconds(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def chart(entries: list[Entry]) -> Chart | None:
    """The chart of these entries (in seq order), or None when no money moved."""
    moves = [e for e in entries if e.kind == "donation" or e.kind in OUT_KINDS]
    if not moves:
        return None
    times = [_seconds(e.time) for e in moves]
    t0, span = times[0], times[-1] - times[0]
    steps_in, steps_out, total_in, total_out = [], [], 0, 0
    for i, (e, t) in enumerate(zip(moves, times)):
        x = (t - t0) / span if span > 0 else (i / (len(moves) - 1) if len(moves) > 1 else 1.0)
        if e.kind == "donation":
            total_in += _amount(e)
        else:
            total_out += _amount(e)
        steps_in.append((x, total_in))
        steps_out.append((x, total_out))
    top = max(total_in, total_out, 1)

    def points(steps: list[tuple[float, int]]) -> str:
        out, last = [f"{PAD},{HEIGHT - PAD}"], 0
        for x, value in steps:
            px = PAD + x * (WIDTH - 2 * PAD)
            out.append(f"{px:.1f},{_y(last, top):.1f}")  # a step: across at the old level, then up
            out.append(f"{px:.1f},{_y(value, top):.1f}")
            last = value
        out.append(f"{WIDTH - PAD},{_y(last, top):.1f}")
        return " ".join(out)

    return Chart(points(steps_in), points(steps_out), top, moves[0].time, moves[-1].time)


def _y(value: int, top: int) -> float:
    return HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD)
