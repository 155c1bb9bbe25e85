"""HTTP/1.1 over a raw loopback socket, for the tests that must send what no client
library would: trickled header lines, bad framing, pipelined requests."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass
class Raw:
    status: int
    headers: dict  # lower-case names
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


def connect(port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_answer(sock: socket.socket, buf: bytearray | None = None, skip_1xx: bool = True) -> tuple[Raw, bytearray]:
    """One answer from ``sock`` (``buf``: bytes already read); returns it and what was read past it.
    Raises ``ConnectionError`` if the server closes the connection before a whole answer."""
    buf = buf if buf is not None else bytearray()
    while True:
        while b"\r\n\r\n" not in buf:
            _more(sock, buf)
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        buf = bytearray(rest)
        if status >= 200 or not skip_1xx:
            break
    length = int(headers.get("content-length", "0"))
    while len(buf) < length:
        _more(sock, buf)
    return Raw(status, headers, bytes(buf[:length])), bytearray(buf[length:])


def _more(sock: socket.socket, buf: bytearray) -> None:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError(f"closed by the server after {bytes(buf)[:200]!r}")
    buf += data


def exchange(port: int, data: bytes, timeout: float) -> Raw:
    """Send ``data`` on a new connection and read one answer."""
    with connect(port, timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)[0]
