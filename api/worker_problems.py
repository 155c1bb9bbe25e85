"""RFC 9457 problems that the server's gunicorn worker (api/worker.py) writes itself,
outside Flask: gunicorn's refusals (a bad request line, header limits, a URI too
long, bad chunked framing), a 408 for a request that did not arrive whole in time,
and a 500 for a request whose worker was stopped under it.  Same body shape and
request ids as api/problems.py; the connection is closed after each."""

from __future__ import annotations

import http as http_status
import json
import uuid

from gunicorn.http import errors as gerr

from .framing import BodyTooLarge
from .problems import PROBLEM, REQUEST_ID

# The problem types of the errors gunicorn answers itself (api/problems.py names the app's).
SLUGS = {
    400: "bad-request",
    403: "forbidden",
    408: "request-timeout",
    413: "too-large",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "header-fields-too-large",
    500: "internal",
    501: "not-implemented",
}


def status_of(exc: BaseException) -> int:
    """The status of ``exc`` as gunicorn's own handle_error gives it; any other parse error
    is the client's (400), anything else the server's (500)."""
    if isinstance(exc, (gerr.InvalidResponseHeader, gerr.InvalidResponseHeaderName, gerr.ConfigurationProblem)):
        return 500
    for kind, status in (
        (BodyTooLarge, 413),
        (gerr.LimitRequestLine, 414),
        (gerr.LimitRequestHeaders, 431),
        (gerr.ExpectationFailed, 417),
        (gerr.UnsupportedTransferCoding, 501),
        (gerr.ForbiddenProxyRequest, 403),
        (gerr.ParseException, 400),
    ):
        if isinstance(exc, kind):
            return status
    return 500


def problem_response(status: int, detail: str, rid: str) -> bytes:
    """A whole HTTP/1.1 answer with an RFC 9457 body, and the connection closed after it."""
    title = http_status.HTTPStatus(status).phrase
    body = json.dumps(
        {"type": f"/problems/{SLUGS.get(status, 'http-error')}", "title": title, "status": status,
         "detail": detail, "request_id": rid}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nConnection: close\r\nContent-Type: {PROBLEM}\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-Id: {rid}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def request_id_of(req) -> str:
    """The client's (or proxy's) X-Request-Id if the head got that far and it is sane, else a new one."""
    for name, value in getattr(req, "headers", None) or ():
        if name == "X-REQUEST-ID" and REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex
