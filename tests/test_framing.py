"""api/framing.py: when a request buffered by the server's event loop is whole, to be
handed over as it is, or to be refused, whatever pieces its bytes arrive in."""

from __future__ import annotations

import pytest
from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize, LimitRequestHeaders

from api.framing import BodyTooLarge, RequestFraming, Verdict

LINE, HEAD, BODY = 4094, 32 * 1024, 64 * 1024


def feed(data: bytes, piece: int | None = None, body_limit: int = BODY):
    """The state after ``data`` arrives whole, and after it arrives ``piece`` bytes at a time
    (the same, or the test fails): (states after each piece, final state)."""
    whole = RequestFraming(LINE, HEAD, body_limit).check(bytearray(data))
    framing, buf, states = RequestFraming(LINE, HEAD, body_limit), bytearray(), []
    for i in range(0, len(data), piece or 1):
        buf += data[i : i + (piece or 1)]
        states.append(framing.check(buf))
        if states[-1].verdict is not Verdict.MORE:
            break
    assert states[-1].verdict is whole.verdict
    assert type(states[-1].error) is type(whole.error)
    return states, whole


GET = b"GET /v1/ping HTTP/1.1\r\nHost: luodi\r\n\r\n"


@pytest.mark.parametrize("piece", [1, 3, 1000])
def test_a_request_is_ready_only_once_its_head_and_body_are_all_there(piece):
    states, whole = feed(GET, piece)
    assert whole.verdict is Verdict.READY and whole.head_end == len(GET)
    assert all(s.verdict is Verdict.MORE for s in states[:-1])
    post = b"POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    states, whole = feed(post, piece)
    assert whole.verdict is Verdict.READY
    assert len(states) == -(-len(post) // piece)  # not ready before the last byte


def test_an_empty_line_before_the_request_line_is_allowed():
    assert feed(b"\r\n" + GET)[1].verdict is Verdict.READY
    assert feed(b"\r\nPOST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n")[1].verdict is Verdict.MORE


@pytest.mark.parametrize("piece", [1, 7, 10_000])
def test_chunked_bodies_are_walked_to_the_last_chunk_and_trailers(piece):
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    for body in (b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n", b"A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"):
        states, whole = feed(head + body, piece)
        assert whole.verdict is Verdict.READY
        assert all(s.verdict is Verdict.MORE for s in states[:-1])
    assert feed(head + b"3\r\nabc\r\n0\r\n")[1].verdict is Verdict.MORE  # the last CRLF is missing


@pytest.mark.parametrize("body, error", [
    (b"zz\r\nabc\r\n0\r\n\r\n", InvalidChunkSize),
    (b"\r\nabc\r\n", InvalidChunkSize),
    (b"3\r\nabcXY0\r\n\r\n", ChunkMissingTerminator),
    (b"3" * 2000, InvalidChunkSize),  # a size line that never ends
])
def test_bad_chunked_framing_is_refused_without_the_app(body, error):
    _, whole = feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body, 5)
    assert whole.verdict is Verdict.REFUSE and isinstance(whole.error, error)


def test_a_body_over_the_limit_is_handed_over_at_once_for_the_apps_413():
    _, whole = feed(b"POST / HTTP/1.1\r\nContent-Length: 100001\r\n\r\n", body_limit=100_000)
    assert whole.verdict is Verdict.HAND_OVER
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"ffff\r\n" + b"a" * 0xFFFF + b"\r\n" + b"2\r\n"
    assert feed(chunked, 4096, body_limit=0x10000)[1].verdict is Verdict.HAND_OVER


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: five\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\n",
])
def test_framing_this_module_does_not_read_is_handed_over_for_the_parser_to_refuse(head):
    assert feed(head)[1].verdict is Verdict.HAND_OVER


def test_limits_on_the_request_line_and_the_head():
    assert feed(b"GET /" + b"a" * LINE, 512)[1].verdict is Verdict.HAND_OVER  # for the parser's 414
    assert feed(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n" + b"X: y\r\n" * 6000, 512)[1].verdict is Verdict.REFUSE
    whole = feed(b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * HEAD + b"\r\n\r\n")[1]
    assert whole.verdict is Verdict.REFUSE and isinstance(whole.error, LimitRequestHeaders)


def test_expect_100_continue_is_asked_for_only_while_the_body_is_missing():
    head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    assert feed(head)[1].expects_continue
    assert not feed(head + b"{")[1].expects_continue  # the client did not wait
    assert not feed(head.replace(b"HTTP/1.1", b"HTTP/1.0"))[1].expects_continue  # RFC 9110: not for HTTP/1.0


def test_chunked_framing_that_runs_far_past_the_body_limit_is_refused():
    tiny = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 3000
    whole = feed(tiny, 4096, body_limit=4096)[1]
    assert whole.verdict is Verdict.REFUSE and isinstance(whole.error, BodyTooLarge)
