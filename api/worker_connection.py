"""The client connections of :mod:`api.worker`: the bytes of each request as they
arrive, and the app's answer, written under the connection's answer lock."""

from __future__ import annotations

import socket
import threading

from gunicorn.http import errors as gerr
from gunicorn.workers.gthread import TConn

from .framing import RequestFraming

RECV_SIZE = 64 * 1024


def recv_nowait(sock: socket.socket) -> bytes | None:
    """What a readable non-blocking socket holds: None if nothing after all, b"" if the
    client is gone (closed, or reset)."""
    try:
        return sock.recv(RECV_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


class Connection(TConn):
    """A client connection, with the bytes of its next request as they arrive."""

    def __init__(self, *args):
        super().__init__(*args)
        self.inbox = bytearray()
        self.framing: RequestFraming | None = None
        self.ready = False  # a whole request is buffered for a thread
        self.refusal: gerr.ParseException | None = None  # answer this instead of running the app
        self.continued = False  # "100 Continue" sent for this request
        self.req = None  # the request a thread is serving
        self.answer_lock = threading.Lock()  # held by the thread while it writes its answer
        self.abandoned = False  # answered by the worker as it stopped: the thread must not write
        self.drained = 0  # bytes read and dropped after the answer, while closing


class Guarded:
    """The app's response body, iterated while its connection's answer lock is held: a
    stopping worker answers only requests whose own answer has not begun.  Each part
    of the answer written counts as progress (``touch``), so a long answer that keeps
    flowing (the whole log's export to a slow reader, say) is not taken for a hang."""

    def __init__(self, body, conn: Connection, touch):
        self.body, self.conn, self.touch, self.held = body, conn, touch, False

    def __iter__(self):
        self.conn.answer_lock.acquire()
        self.held = True
        return iter(()) if self.conn.abandoned else self._parts()

    def _parts(self):
        conn, touch = self.conn, self.touch
        for part in self.body:
            yield part  # gunicorn writes it before asking for the next one
            touch(conn)

    def close(self):
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            if self.held:
                self.held = False
                self.conn.answer_lock.release()
