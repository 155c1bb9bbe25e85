"""The nginx front that docs/operations.md recommends, run for real: the very
``nginx`` block of that page (Debian's nginx), with a certificate made here for
127.0.0.1 and ports of this test, in front of a real ``luodi serve``.

It checks that the block is valid and that TLS reaches the API.  It checks that
nginx's request id is the one Luodi answers with, and that nginx refuses a body
over the API's limit, with nothing written.

SQLite only (the default database): this is about the front proxy, not the database; the
storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_e2e_gunicorn import HOST, LiveServer, free_port, init_instance

from ledger.log.note import Signer

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(
    NGINX is None and os.environ.get("CI") != "true", reason="Debian's nginx is not installed (.ci/run installs it)"
)


def documented_block() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/operations.md should hold one nginx block"
    return blocks[0]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the IP address 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def nginx_conf(folder: Path, port: int, upstream: int, cert: Path, key: Path) -> Path:
    """The documented block with this test's ports and certificate, in a whole nginx.conf."""
    block = documented_block()
    for old, new in (
        ("listen 443 ssl http2;", f"listen {HOST}:{port} ssl http2;"),
        ("server 127.0.0.1:8000;", f"server {HOST}:{upstream};"),
        ("/etc/ssl/luodi/fullchain.pem", str(cert)),
        ("/etc/ssl/luodi/privkey.pem", str(key)),
    ):
        assert old in block, f"the documented block no longer says {old!r}"
        block = block.replace(old, new)
    temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                            "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # the temp folders below are private to this user
        + f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    log_format withid '$request_id $status $request';\n"
        f"    access_log {folder}/access.log withid;\n{temp}\n{block}\n}}\n"
    )
    return conf


class Nginx:
    def __init__(self, conf: Path, port: int):
        self.conf, self.port = conf, port
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Nginx":
        folder = self.conf.parent
        checked = subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(self.conf)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        self.proc = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start listening")

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGQUIT)  # graceful stop
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nginx")
    instance = folder / "instance"
    log_key, admin, intake = init_instance(instance)
    cert, key = make_certificate(folder)
    with LiveServer(instance, log_key) as server:
        port = free_port()
        with Nginx(nginx_conf(folder, port, server.port, cert, key), port):
            yield {"url": f"https://{HOST}:{port}", "server": server, "folder": folder, "cert": cert,
                   "admin": admin, "intake": intake}


def fetch(front: dict, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One HTTPS request through nginx, verified against the test's certificate: (status, headers, body)."""
    context = ssl.create_default_context(cafile=str(front["cert"]))
    req = urllib.request.Request(front["url"] + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def test_the_documented_front_serves_the_api_over_tls(front):
    status, headers, body = fetch(front, "GET", "/v1/checkpoint")
    assert status == 200
    assert body.decode() == front["server"].get("/v1/checkpoint").text  # the same signed checkpoint, proxied


def test_nginx_request_id_is_the_one_luodi_answers_and_nginx_logs(front):
    status, headers, body = fetch(front, "POST", "/v1/charities", b"{}", {"Content-Type": "application/json"})
    assert status == 401 and headers["Content-Type"] == "application/problem+json"
    rid = headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert json.loads(body)["request_id"] == rid
    deadline = time.monotonic() + 10
    log = front["folder"] / "access.log"
    while time.monotonic() < deadline and f"{rid} 401 POST /v1/charities" not in log.read_text():
        time.sleep(0.05)
    assert f"{rid} 401 POST /v1/charities" in log.read_text()


def test_nginx_refuses_a_body_over_the_api_limit_and_nothing_is_written(front):
    before = front["server"].get("/v1/checkpoint").text
    auth = {"Authorization": f"Bearer {front['admin']}", "Content-Type": "application/json"}
    big = b'{"charity": "x", "name": "' + b"n" * (64 * 1024) + b'", "keys": [], "threshold": 1}'
    status, _, _ = fetch(front, "POST", "/v1/charities", big, auth)
    assert status == 413
    assert front["server"].get("/v1/checkpoint").text == before


def test_a_donation_through_the_front_is_recorded_with_its_receipt(front):
    auth = {"Authorization": f"Bearer {front['admin']}", "Content-Type": "application/json"}
    key = Signer.generate("front-charity/finance").verifier.to_string()
    for path, doc in (
        ("/v1/charities", {"charity": "front-charity", "name": "Front", "keys": [key], "threshold": 1}),
        ("/v1/projects", {"project": "front-project", "charity": "front-charity", "title": "t", "purpose": "p",
                          "currency": "CNY"}),
    ):
        status, _, body = fetch(front, "POST", path, json.dumps(doc).encode(), auth)
        assert status == 201, body
    donation = {"amount": "8.80", "channel": "wechat", "payment_ref": "WX-front-1", "donor_ref": "donor-front",
                "value_date": "2026-12-01"}
    headers = {"Authorization": f"Bearer {front['intake']}", "Content-Type": "application/json",
               "Idempotency-Key": "front-0001"}
    status, _, body = fetch(front, "POST", "/v1/projects/front-project/donations", json.dumps(donation).encode(),
                            headers)
    assert status == 201, body
    leaf = json.loads(body)["entry"]["leaf_hash"]
    status, _, body = fetch(front, "GET", f"/v1/receipts/{leaf}")
    assert status == 200 and json.loads(body)["amount"] == "8.80"
