"""The gunicorn worker of ``luodi serve``: threads run requests, an event loop reads
them, so that slow or idle clients cannot starve the others.

gunicorn's own workers give a client's connection a thread (gthread) or the
whole process (sync) while the request is still being read: a client that
trickles its header lines, a byte a second, holds it for as long as it likes,
and a few such clients stall the server.  Here the worker's event loop reads
each request, head and body (up to the app's ``MAX_CONTENT_LENGTH``), from a
non-blocking socket, under one deadline per request (``CLIENT_TIMEOUT_SECONDS``
in the app's config, 10 s by default), and only a whole request goes to the
thread pool.  Its thread then finds the request in the parser's buffer; its
socket keeps the same timeout as a backstop, which also bounds how long a
client that does not read its answer can hold the thread.

A request still incomplete at its deadline gets a 408, an idle new connection
is closed without a word, and kept-alive connections follow gunicorn's
``keepalive``.  Threads of one worker still share a process, so donations
that arrive together commit together (``ledger/log/group_commit.py``).

Everything gunicorn answers itself (a bad request line, too many or too large
header fields, a URI too long, bad chunked framing, an unsupported transfer
coding) is RFC 9457 problem+json, like the app's errors, with a request id
that is logged with the refusal (:meth:`LuodiWorker.handle_error`).

The worker speaks plain HTTP/1.1; TLS and HTTP/2 belong to a front proxy.
"""

from __future__ import annotations

import errno
import http as http_status
import selectors
import os
import socket
import threading
import time
import uuid
from collections import deque
from datetime import timedelta
from functools import partial

from gunicorn import http, util
from gunicorn.http import errors as gerr
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker

from .framing import RequestFraming, Verdict
from .worker_connection import Connection, Guarded, recv_nowait
from .worker_problems import problem_response, request_id_of, status_of

CLIENT_TIMEOUT = 10.0  # seconds a client has to send a whole request (and to take each write of its answer)
BODY_LIMIT = 64 * 1024  # when the app does not say (its MAX_CONTENT_LENGTH)
HEAD_LIMIT = 32 * 1024  # the request line and header fields together
LINGER = 2.0  # seconds a closed connection is drained for (RFC 9112 §9.6), as gunicorn's close_graceful
LINGER_BYTES = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class LuodiWorker(ThreadWorker):
    """gunicorn's threaded worker, with requests read in its event loop (see the module)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.client_timeout = CLIENT_TIMEOUT
        self.body_limit = BODY_LIMIT
        self.closing: deque[Connection] = deque()  # answered, write side shut, drained until LINGER
        self.busy: dict[Connection, float] = {}  # requests in threads, and when each began or last wrote
        self.busy_lock = threading.RLock()  # also taken in the SIGABRT handler, on the main thread
        self.local = threading.local()

    def load_wsgi(self):
        super().load_wsgi()
        config = getattr(self.wsgi, "config", {})
        self.client_timeout = float(config.get("CLIENT_TIMEOUT_SECONDS") or CLIENT_TIMEOUT)
        self.body_limit = max(  # the largest any route takes; each route's own limit is the app's (413)
            int(config.get("MAX_CONTENT_LENGTH") or BODY_LIMIT), int(config.get("BATCH_MAX_CONTENT_LENGTH") or 0)
        )
        app, local = self.wsgi, self.local

        def guarded(environ, start_response):
            return Guarded(app(environ, start_response), local.conn, self.progressed)

        self.wsgi = guarded

    # -- the worker's life ----------------------------------------------------------------

    def notify(self):
        """The heartbeat the master checks against its ``timeout``: the event loop's, or,
        while a request runs, the time it began or last wrote a part of its answer.  So, as
        with sync workers, a request that runs longer than ``timeout`` without writing
        anything has its worker stopped (and restarted)."""
        with self.busy_lock:
            oldest = min(self.busy.values(), default=None)
        if oldest is None:
            super().notify()
        else:
            os.utime(self.tmp.fileno(), (oldest, oldest))

    def progressed(self, conn: Connection) -> None:
        """A part of ``conn``'s answer was written: its request is alive (at most once a second)."""
        now = time.monotonic()
        if now - self.busy.get(conn, now) >= 1.0:
            with self.busy_lock:
                if conn in self.busy:
                    self.busy[conn] = now

    def handle_abort(self, sig, frame):
        """SIGABRT (the master's answer to a timeout): answer what can still be answered, then
        end at once, as the master's SIGKILL would: a thread still waiting to write must not
        write after its client was told it failed (SQLite rolls back what was not committed)."""
        self.alive = False
        self.answer_in_flight("it ran over the server's timeout, or the worker was aborted")
        self.cfg.worker_abort(self)
        os._exit(1)

    def run(self):
        super().run()  # returns once stopped, after the graceful timeout at most
        self.answer_in_flight("the server stopped before it was done")

    def answer_in_flight(self, why: str) -> None:
        """A 500 problem to each request in a thread whose answer has not begun (and the
        connection closed under it); one whose answer is being written is left to end."""
        with self.busy_lock:
            busy = list(self.busy)
        for conn in busy:
            if not conn.answer_lock.acquire(blocking=False):
                continue
            try:
                conn.abandoned = True
                rid = request_id_of(conn.req)
                self.log.error("request %s: %s %s stopped before it was answered: %s", rid,
                               getattr(conn.req, "method", "-"), getattr(conn.req, "path", "-"), why)
                detail = (f"the request was stopped before it was answered ({why}); whether it took "
                          f"effect is not known: retry it (with the same Idempotency-Key) or look it up")
                util.write_nonblock(conn.sock, problem_response(500, detail, rid))
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                conn.answer_lock.release()

    # -- the event loop's side ----------------------------------------------------------

    def accept(self, listener):
        try:
            sock, addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._read(Connection(self.cfg, sock, addr, listener.getsockname()))

    def enqueue_req(self, conn):
        """Every way to a thread passes here (gthread also calls it when a kept-alive
        connection turns readable, and for bytes a request left behind): only a whole
        request goes on; anything else is read first."""
        if conn.ready:
            super().enqueue_req(conn)
        else:
            self._read(conn, conn.parser.unreader.take_buffered() if conn.parser else b"")

    def _read(self, conn: Connection, data: bytes = b"") -> None:
        conn.inbox = bytearray(data)
        conn.framing = RequestFraming(self.cfg.limit_request_line, HEAD_LIMIT, self.body_limit)
        conn.refusal, conn.continued = None, False
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.client_timeout
        if data and self._check(conn):
            return
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Connection, _sock) -> None:
        data = recv_nowait(conn.sock)
        if data is None:
            return
        if not data:  # the client went away
            self._close(conn, self.pending_conns)
            return
        conn.inbox += data
        self._check(conn)

    def _check(self, conn: Connection) -> bool:
        """Hand the request to a thread if it is whole (or is to be refused); True if handed over."""
        state = conn.framing.check(conn.inbox)
        if state.verdict is Verdict.MORE:
            if state.expects_continue and not conn.continued:
                conn.continued = True  # the parser will not send it again: the Expect field goes (below)
                self._send_nowait(conn.sock, CONTINUE)
            return False
        if conn.continued:
            head = bytes(conn.inbox[: state.head_end]).split(b"\n")
            kept = [line for line in head if not line.lower().startswith(b"expect:")]
            conn.inbox[: state.head_end] = b"\n".join(kept)
        conn.refusal = state.error if state.verdict is Verdict.REFUSE else None
        conn.req, conn.abandoned = None, False
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        conn.parser.unreader.unread(bytes(conn.inbox))
        conn.inbox = bytearray()
        conn.ready = True
        self._forget(conn)
        super().enqueue_req(conn)
        return True

    def _forget(self, conn: Connection) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            self.pending_conns.remove(conn)
        except ValueError:
            pass

    def finish_request(self, conn, fs):
        """After a thread: kept alive (gthread's), or closed without blocking the event loop
        (gthread drains a closed connection for up to 2 s there, so clients that do not
        close their end would stall every other)."""
        try:
            keep = not fs.cancelled() and fs.result()
        except Exception:
            keep = False
        if keep:
            return super().finish_request(conn, fs)
        self._linger(conn)

    def _linger(self, conn: Connection) -> None:
        """Send FIN, then drop what the client still sends until it closes, LINGER_BYTES or
        LINGER s, so that closing does not reset the connection before the answer is read."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            conn.timeout, conn.drained = time.monotonic() + LINGER, 0
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))
        except (OSError, ValueError):
            self.nr_conns -= 1
            conn.close()
            return
        self.closing.append(conn)

    def _drain(self, conn: Connection, _sock) -> None:
        data = recv_nowait(conn.sock)
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_BYTES:
            self._close(conn, self.closing)

    def _close(self, conn: Connection, queue: deque) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            queue.remove(conn)
        except ValueError:
            pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """Close connections past their deadline: a 408 to one that sent part of a request."""
        now = time.monotonic()
        while self.closing and self.closing[0].timeout <= now:
            self._close(self.closing[0], self.closing)
        if not self.alive:  # stopping: no new request is waited for on an idle connection
            for conn in [c for c in self.pending_conns if not c.inbox]:
                self._close(conn, self.pending_conns)
        while self.pending_conns and self.pending_conns[0].timeout <= now:
            conn = self.pending_conns[0]
            self._forget(conn)
            if conn.inbox:
                rid = uuid.uuid4().hex
                self.log.warning(
                    "request %s: 408 from ip=%s: no whole request within %g s (%d bytes came)",
                    rid, conn.client[0] if conn.client else "", self.client_timeout, len(conn.inbox),
                )
                detail = f"the request did not arrive whole within {self.client_timeout:g} s"
                self._send_nowait(conn.sock, problem_response(408, detail, rid))
                self._linger(conn)
            else:
                self.nr_conns -= 1
                conn.close()

    @staticmethod
    def _send_nowait(sock, data: bytes) -> None:
        try:
            sock.send(data)  # small, into an empty send buffer; if it does not fit, the client is not reading
        except OSError:
            pass

    # -- a thread's side ------------------------------------------------------------------

    def handle(self, conn: Connection):
        """Serve the request buffered on ``conn`` (gthread's handle, for HTTP/1.1 only)."""
        conn.ready = False
        req = None
        self.local.conn = conn
        with self.busy_lock:
            self.busy[conn] = time.monotonic()
        try:
            conn.sock.settimeout(self.client_timeout)
            if conn.refusal is not None:
                self.handle_error(None, conn.sock, conn.client, conn.refusal)
                return False
            req = conn.req = next(conn.parser)
            if not req:
                return False
            keepalive = self.handle_request(req, conn)
            return not conn.abandoned and self._keepalive_after(conn, keepalive)
        except http.errors.NoMoreData as e:
            self.log.debug("Ignored premature client disconnection. %s", e)
        except StopIteration as e:
            self.log.debug("Closing connection. %s", e)
        except TimeoutError:
            self.log.warning("client at ip=%s stopped reading or sending for %g s; connection closed",
                             conn.client[0] if conn.client else "", self.client_timeout)
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
        except Exception as e:
            if not conn.abandoned:
                self.handle_error(req, conn.sock, conn.client, e)
        finally:
            with self.busy_lock:
                self.busy.pop(conn, None)
        return False

    def handle_error(self, req, client, addr, exc):
        """gunicorn's refusals and failures outside the app, as problem+json with a logged request id."""
        addr = addr or ("", -1)
        if req is None and isinstance(exc, (gerr.InvalidHeader, gerr.InvalidHeaderName)):
            req = getattr(exc, "req", None)
        status = status_of(exc)
        rid = request_id_of(req)
        if status >= 500:
            self.log.exception("request %s: %s %s failed outside the app", rid,
                               getattr(req, "method", "-"), getattr(req, "uri", "-"))
            detail = f"the server failed; its operator can find request {rid} in its log"
        else:
            self.log.warning("request %s: %d from ip=%s: %s", rid, status, addr[0], exc)
            detail = str(exc)[:300]
        answer = problem_response(status, detail, rid)
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
            resp = Response(req, client, self.cfg)
            resp.status = f"{status} {http_status.HTTPStatus(status).phrase}"
            resp.response_length = len(answer)
            self.log.access(resp, req, environ, timedelta(0))
        try:
            util.write_nonblock(client, answer)
        except Exception:
            self.log.debug("Failed to send error message.")
