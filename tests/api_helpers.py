"""Factories for the HTTP API tests: an instance folder with known charities,
keys, donations and tokens, the Flask app and test client over it, a
"writes nothing" check, and an offline receipt verifier that uses only the
``ledger`` package and what the server sent.

Test files use the fixture with ``from api_helpers import make_api  # noqa: F401``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import rfc8785
from backends import Backend, register
from factories import CHARITY, OTHER_CHARITY, OTHER_PROJECT, PERIOD, books_rows, charity_signers, vkeys

import api
from api.instance import init_instance, open_instance
from ledger.charity import payload as P
from ledger.charity.demo import seed_demo
from ledger.charity.tokens import create_token
from ledger.log.checkpoint import open_checkpoint
from ledger.log.ledger import Ledger
from ledger.log.merkle import verify_inclusion
from ledger.log.note import Signer, Verifier

PROBLEM = "application/problem+json"
PROJECT = "winter-coats"  # not a demo project id, so the demo can be seeded beside it
CLOSED_PROJECT = "autumn-drive"
SEED_DONATIONS = ("100.00", "50.00", "25.00")
OTHER_DONATION = "40.00"
CLOSED_DONATION = "30.00"
DECIMAL = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")  # CNY: exactly two decimals
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def leaf_hash_hex(canonical: bytes) -> str:
    """RFC 9162 leaf hash of an entry's canonical bytes: SHA-256(0x00 || bytes), hex."""
    return hashlib.sha256(b"\x00" + canonical).hexdigest()


def item_hash(item: dict) -> str:
    """The leaf hash recomputed from an entry item's envelope (RFC 8785 bytes)."""
    return leaf_hash_hex(rfc8785.dumps(item["entry"]))


def unhex(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in proof]


def assert_problem(resp, status: int, slug: str | None = None) -> dict:
    """An RFC 9457 problem of ``status`` (and type ``/problems/<slug>``); returns the body."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.mimetype == PROBLEM, resp.mimetype
    body = resp.get_json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, f"problem without {key}: {body}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["type"].startswith("/problems/")
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    request = getattr(resp, "request", None)
    if request is not None:
        assert body["instance"] == request.path, body
    if status == 401:
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
    return body


def verify_receipt_offline(receipt: dict, log_key: str | None = None) -> None:
    """Check a receipt as a donor would, with nothing but the ``ledger`` package.

    The entry's bytes hash to its leaf hash; the checkpoint is signed by the log
    key (``log_key`` if the donor already trusts one); the entry and every
    disbursement that spent it are included in the checkpoint's tree; and the
    amounts add up.
    """
    verifier = Verifier.from_string(log_key or receipt["log_key"])
    assert verifier.to_string() == receipt["log_key"]
    cp = open_checkpoint(receipt["checkpoint"], verifier)
    assert cp.size == receipt["tree_size"]
    entry = receipt["entry"]
    assert item_hash(entry) == entry["leaf_hash"]
    assert entry["entry"]["kind"] == "donation"
    assert receipt["leaf_index"] == entry["seq"] == entry["entry"]["seq"]
    verify_inclusion(
        bytes.fromhex(entry["leaf_hash"]), receipt["leaf_index"], cp.size, unhex(receipt["inclusion_proof"]), cp.root
    )
    body = entry["entry"]["body"]
    assert receipt["currency"] == body["currency"] == "CNY"
    for name in ("amount", "spent", "refunded", "unspent"):
        assert DECIMAL.fullmatch(receipt[name]), (name, receipt[name])
    amount = Decimal(receipt["amount"])
    assert amount == Decimal(body["amount"]) / 100
    assert Decimal(receipt["spent"]) + Decimal(receipt["refunded"]) + Decimal(receipt["unspent"]) == amount
    taken = Decimal(0)
    for alloc in receipt["allocation"]:
        d = alloc["disbursement"]
        assert item_hash(d) == d["leaf_hash"]
        assert d["entry"]["kind"] == "disbursement"
        assert d["entry"]["body"]["payload"]["project"] == body["project"]
        assert alloc["leaf_index"] == d["seq"] > entry["seq"]
        verify_inclusion(bytes.fromhex(d["leaf_hash"]), alloc["leaf_index"], cp.size, unhex(alloc["inclusion_proof"]), cp.root)
        # The charity's own signatures over the payload check out too.
        data = rfc8785.dumps(d["entry"]["body"]["payload"])
        for sig in d["entry"]["body"]["signatures"]:
            assert Verifier.from_string(sig["key"]).verify(data, base64.b64decode(sig["signature"]))
        assert DECIMAL.fullmatch(alloc["amount"])
        taken += Decimal(alloc["amount"])
    assert taken == Decimal(receipt["spent"])


@dataclass
class ApiEnv:
    """One instance folder and the app serving it."""

    path: Path
    app: object
    client: object
    reader: Ledger  # a key-less ledger on the same database, for checks
    tokens: dict[str, str]  # admin, intake, hope (intake scoped to CHARITY), river (scoped to OTHER_CHARITY)
    keys: list[Signer]  # CHARITY's keys, threshold 2
    other_keys: list[Signer]  # OTHER_CHARITY's keys, threshold 2
    gifts: list[str] = field(default_factory=list)  # receipts of SEED_DONATIONS, in order
    other_gift: str = ""  # receipt of the OTHER_PROJECT donation
    closed_gift: str = ""  # receipt of the CLOSED_PROJECT donation (made before it closed)

    # -- requests -------------------------------------------------------------

    def auth(self, token: str | None) -> dict:
        if token is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens.get(token, token)}"}

    def post(self, url: str, body, token: str | None = None, headers: dict | None = None):
        return self.client.post(url, json=body, headers={**self.auth(token), **(headers or {})})

    def donate(self, key: str, token: str | None = "intake", project: str = PROJECT, **changes):
        return self.post(f"/v1/projects/{project}/donations", donation_body(**changes), token, {"Idempotency-Key": key})

    def disbursement(self, lines=(("winter coats", "10.00"),), *, project: str = PROJECT, charity: str = CHARITY, **kw):
        kw.setdefault("payee", "Lanzhou Warm Textiles Co., Ltd.")
        kw.setdefault("purpose", "Winter coats for families in Dingxi")
        kw.setdefault("period", PERIOD)
        return P.disbursement(charity=charity, project=project, currency="CNY", lines=list(lines), **kw)

    def disburse(self, payload: dict, *signers: Signer, project: str | None = None):
        signers = signers or tuple(self.keys[:2])
        return self.post(f"/v1/projects/{project or payload['project']}/disbursements", signed(payload, *signers))

    # -- checks ---------------------------------------------------------------

    def size(self) -> int:
        return self.reader.size()

    def state(self) -> tuple:
        """The log size, the latest checkpoint and every books row (project totals included)."""
        return self.reader.size(), self.reader.checkpoint(), books_rows(self.reader)

    @contextmanager
    def unchanged(self):
        """``with env.unchanged(): resp = ...`` asserts the request wrote nothing."""
        before = self.state()
        yield
        after = self.state()
        assert after[0] == before[0], "a refusal changed the log size"
        assert after[1] == before[1], "a refusal wrote a checkpoint"
        assert after[2] == before[2], "a refusal changed the books"

    def items(self) -> list[dict]:
        """Every entry item, through the public paging endpoint."""
        out, start = [], 0
        while start is not None:
            page = self.client.get(f"/v1/entries?start={start}&limit=1000").get_json()
            out += page["entries"]
            start = page["next_start"]
        return out


def donation_body(**changes) -> dict:
    body = {
        "amount": "10.00",
        "channel": "wechat",
        "payment_ref": "WX-PAY-HTTP-0001",
        "donor_ref": "donor-http-0001",
        "value_date": "2026-11-29",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def signed(payload: dict, *signers: Signer) -> dict:
    return {"payload": payload, "signatures": [P.sign(payload, s) for s in signers]}


def close_app(app) -> None:
    """Close the database an app opened (on PostgreSQL, its pool and read connections)."""
    books = app.extensions.get("luodi", {}).get("books")
    if books is not None:
        books.stores.close()


class ApiFactory:
    """Instance folders in ``tmp_path``, each with its database on ``backend``
    (a PostgreSQL instance records its schema's URL in the folder, so that every
    ``luodi`` command and server started on the folder finds it); without a
    backend, SQLite."""

    def __init__(self, tmp_path: Path, backend: Backend | None = None):
        self.tmp_path = tmp_path
        self.backend = backend
        self.apps: list = []
        self.readers: list[Ledger] = []

    def database(self, name: str) -> str | None:
        return None if self.backend is None else self.backend.database(name)

    def instance(self, name: str = "inst", *, demo: int = 0) -> tuple[Path, dict]:
        """Build an instance folder: CHARITY with PROJECT (SEED_DONATIONS) and the closed
        CLOSED_PROJECT (one donation), OTHER_CHARITY with OTHER_PROJECT (one donation), optionally the
        demo, and four tokens.  Returns the path and what the tests need to know."""
        path = self.tmp_path / name
        result = init_instance(path, database=self.database(name))
        stores = result.charity.stores
        try:
            books = result.charity
            keys, other = charity_signers(CHARITY, 3), charity_signers(OTHER_CHARITY, 3)
            books.register_charity(CHARITY, "Hope Foundation", vkeys(keys), 2)
            books.open_project(PROJECT, CHARITY, "Winter relief", "Coats and quilts for families in Gansu", "CNY")
            books.open_project(CLOSED_PROJECT, CHARITY, "Autumn drive", "School bags", "CNY")
            closed_gift = books.record_donation(
                CLOSED_PROJECT, CLOSED_DONATION, "cash", payment_ref="SEED-PAY-C", donor_ref="seed-donor-c",
                value_date="2026-09-01", intake_key="seed-intake-closed",
            ).entry.receipt
            books.close_project(CLOSED_PROJECT, "Campaign period ended")
            books.register_charity(OTHER_CHARITY, "River Trust", vkeys(other), 2)
            books.open_project(OTHER_PROJECT, OTHER_CHARITY, "Clean the river", "Clean the river banks", "CNY")
            gifts = [
                books.record_donation(
                    PROJECT, amount, "wechat", payment_ref=f"SEED-PAY-{i}", donor_ref=f"seed-donor-{i}",
                    value_date="2026-11-28", intake_key=f"seed-intake-{i:04d}",
                ).entry.receipt
                for i, amount in enumerate(SEED_DONATIONS)
            ]
            other_gift = books.record_donation(
                OTHER_PROJECT, OTHER_DONATION, "alipay", payment_ref="SEED-PAY-R", donor_ref="seed-donor-r",
                value_date="2026-11-28", intake_key="seed-intake-river",
            ).entry.receipt
            if demo:
                seed_demo(books, donations=demo, keys_dir=path / "demo-keys")
            tokens = {
                "admin": create_token(stores.tokens, "admin"),
                "intake": create_token(stores.tokens, "intake"),
                "hope": create_token(stores.tokens, "intake", CHARITY, stores.books.view()),
                "river": create_token(stores.tokens, "intake", OTHER_CHARITY, stores.books.view()),
            }
        finally:
            stores.close()
        return path, {"tokens": tokens, "keys": keys, "other_keys": other, "gifts": gifts, "other_gift": other_gift, "closed_gift": closed_gift}

    def app(self, config: dict | None = None, *, path: Path | None = None):
        """An app over ``path``; with ``config=None`` the real layering (config.py, env) applies."""
        app = api.create_app(config if config is None else {"TESTING": True, "INSTANCE": str(path), **config})
        self.apps.append(app)
        return app

    def __call__(self, name: str = "inst", *, config: dict | None = None, demo: int = 0) -> ApiEnv:
        path, known = self.instance(name, demo=demo)
        app = self.app(config or {}, path=path)
        opened = open_instance(path, with_key=False)
        register(opened.stores, self.database(name) or path / "luodi.sqlite")
        reader = opened.ledger
        self.readers.append(reader)
        return ApiEnv(path, app, app.test_client(), reader, **known)

    def close(self) -> None:
        for app in self.apps:
            close_app(app)
        for reader in self.readers:
            reader.store.close()


@pytest.fixture
def make_api(tmp_path, backend):
    """make_api(name="inst", config=None, demo=0) -> ApiEnv; make_api.app(config, path=) -> a bare app."""
    factory = ApiFactory(tmp_path, backend)
    yield factory
    factory.close()
