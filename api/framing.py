"""Is a request in a buffer whole yet?  The question the server's event loop asks
(see :mod:`api.worker`) before a request may have a thread.

:class:`RequestFraming` looks only at framing: where the head ends, and how long
the body is (``Content-Length``, or ``chunked`` framing, whose chunks it walks).
Everything else about a request, its syntax included, is gunicorn's parser's
business: a request whose framing cannot be read here is handed over as it is
(``Verdict.HAND_OVER``) and the parser then refuses it from the buffered bytes.
The exceptions are what the parser could only find by reading the body inside
the app: bad chunked framing, which is refused here (``Verdict.REFUSE``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize, LimitRequestHeaders, ParseException

HEAD_END = re.compile(rb"\r?\n\r?\n")
HEX = frozenset(b"0123456789abcdefABCDEF")
CHUNK_LINE_LIMIT = 1024  # a chunk-size line (size and extensions) longer than this is refused
TRAILERS_LIMIT = 8192


class BodyTooLarge(ParseException):
    """A chunked body whose framing alone runs far past the body limit (many tiny chunks)."""

    def __str__(self):
        return f"the chunked body's framing runs over {self.args[0]} bytes"


class Verdict(enum.Enum):
    MORE = "more"  # wait for more bytes
    READY = "ready"  # head and body are buffered
    HAND_OVER = "hand over"  # let the parser and the app answer from what is buffered (a bad head, a body over the limit)
    REFUSE = "refuse"  # answer ``error`` without running the app


@dataclass(frozen=True)
class State:
    verdict: Verdict
    head_end: int = 0  # where the body starts, once the head is whole
    expects_continue: bool = False  # "Expect: 100-continue" and the body still to come
    error: ParseException | None = None


class RequestFraming:
    """Reads the framing of one connection's next request as its bytes arrive; each
    :meth:`check` resumes where the last one stopped, so a client that sends a
    byte at a time costs no rescans.

    ``line_limit`` is the parser's longest request line (gunicorn's
    ``limit_request_line``): a longer one is handed over for the parser's 414.
    A head longer than ``head_limit`` is refused (431); a body longer than
    ``body_limit`` (the app's) is handed over for the app's 413.
    """

    def __init__(self, line_limit: int, head_limit: int, body_limit: int):
        self.line_limit, self.head_limit, self.body_limit = line_limit, head_limit, body_limit
        self.searched = 0  # the head's end was not before this offset
        self.head_end = 0
        self.fields: tuple[int, bool, bool] | None = None
        self.chunk_pos = self.chunk_total = 0  # how far the chunk walk went (from the body's start)

    def check(self, buf: bytes | bytearray) -> State:
        """What ``buf`` (the bytes of the connection's next request so far, the
        same buffer each time, grown) holds."""
        if not self.head_end:
            lead = 2 if buf[:2] == b"\r\n" else 1 if buf[:1] == b"\n" else 0  # one empty line may come first
            end = HEAD_END.search(buf, max(lead, self.searched - 3))
            if end is None:
                self.searched = len(buf)
            if len(buf) > self.line_limit + lead + 2 and buf.find(b"\n", lead, self.line_limit + lead + 2) < 0:
                return State(Verdict.HAND_OVER)  # the parser's 414
            if (end.end() if end else len(buf)) > self.head_limit:
                return State(Verdict.REFUSE, error=LimitRequestHeaders(f"request head over {self.head_limit} bytes"))
            if end is None:
                return State(Verdict.MORE)
            self.head_end = end.end()
            self.fields = _framing_fields(bytes(buf[lead : end.start()]))
        if self.fields is None:
            return State(Verdict.HAND_OVER, self.head_end)
        length, chunked, expect = self.fields
        received = len(buf) - self.head_end
        error = None
        if chunked:
            verdict, error = self._walk_chunks(buf)
        elif length > self.body_limit:
            verdict = Verdict.HAND_OVER  # the app answers 413 without reading it
        else:
            verdict = Verdict.READY if received >= length else Verdict.MORE
        return State(verdict, self.head_end, expect and verdict is Verdict.MORE and not received, error)

    def _walk_chunks(self, buf: bytes | bytearray) -> tuple[Verdict, ParseException | None]:
        """Walk chunked framing (RFC 9112 §7.1) up to the last chunk and its trailers."""
        base = self.head_end
        if len(buf) - base > 2 * self.body_limit + CHUNK_LINE_LIMIT:
            return Verdict.REFUSE, BodyTooLarge(2 * self.body_limit + CHUNK_LINE_LIMIT)
        while True:
            pos = base + self.chunk_pos
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > CHUNK_LINE_LIMIT:
                    return Verdict.REFUSE, InvalidChunkSize(b"chunk-size line over %d bytes" % CHUNK_LINE_LIMIT)
                return Verdict.MORE, None
            size = bytes(buf[pos:eol]).split(b";", 1)[0].rstrip(b" \t")
            if not size or any(c not in HEX for c in size):
                return Verdict.REFUSE, InvalidChunkSize(size[:64])
            size = int(size, 16)
            start = eol + 2
            if size == 0:
                if buf[start : start + 2] == b"\r\n" or buf.find(b"\r\n\r\n", start) >= 0:
                    return Verdict.READY, None
                if len(buf) - start > TRAILERS_LIMIT:
                    return Verdict.HAND_OVER, None
                return Verdict.MORE, None
            if self.chunk_total + size > self.body_limit:
                return Verdict.HAND_OVER, None  # the app refuses the body at its limit (413)
            if len(buf) < start + size + 2:
                return Verdict.MORE, None
            if buf[start + size : start + size + 2] != b"\r\n":
                return Verdict.REFUSE, ChunkMissingTerminator(bytes(buf[start + size : start + size + 2]))
            self.chunk_total += size
            self.chunk_pos = start + size + 2 - base


def _framing_fields(head: bytes) -> tuple[int, bool, bool] | None:
    """(Content-Length, chunked?, Expect: 100-continue?), or None when framing is not
    plain (several lengths, a length that is not digits, another transfer coding,
    another expectation): the parser refuses those or knows better."""
    lines = head.split(b"\n")
    http11 = lines[0].rstrip(b"\r").endswith(b"HTTP/1.1")
    length, chunked, expect = None, False, False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            if value != b"chunked" or chunked:
                return None
            chunked = True
        elif name == b"expect":
            if value != b"100-continue":
                return None
            expect = http11
    if chunked and length is not None:
        return None
    return length or 0, chunked, expect
