"""A demo instance for the donor-page tests, with hostile names in it.

:func:`seed_pages` writes the demo (:func:`ledger.charity.demo.seed_demo`),
then a charity, a project and a disbursement whose every person-readable
text holds HTML and script (:data:`INJECTIONS`), so the pages' escaping is
tested on the ledger's own data.  :class:`Html` is a small reader for the
pages' markup (stdlib ``html.parser``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from api.instance import init_instance
from ledger.charity import payload as P
from ledger.charity.demo import seed_demo
from ledger.log.note import Signer

SCRIPT = "<script>alert('xss')</script>"
IMG = '"><img src=x onerror=alert(1)>'
INJECTIONS = (SCRIPT, IMG)
EVIL_CHARITY = "evil-charity"
EVIL_PROJECT = "evil-project"
FORMULA_PAYEE = "=HYPERLINK(\"http://example.invalid\")" + IMG
DONOR_NAME = "Zhang Secret-Donor"
EVIDENCE = hashlib.sha256(b"evil-invoice").hexdigest()


@dataclass
class Seeded:
    instance: Path
    log_key: str
    spent_gift: str = ""  # a demo gift that a disbursement spent
    refunded_gift: str = ""  # the demo gift that was partly refunded
    evil_gift: str = ""  # a gift to the hostile project, spent by its hostile disbursement
    demo_projects: list[str] = field(default_factory=list)


def seed_pages(instance: Path, donations: int = 200) -> Seeded:
    made = init_instance(instance)
    books = made.charity
    try:
        seed_demo(books, donations=donations)
        keys = [Signer.generate(f"{EVIL_CHARITY}/finance-{i}") for i in (1, 2)]
        books.register_charity(EVIL_CHARITY, f"{SCRIPT} Evil {IMG}", [k.verifier.to_string() for k in keys], 1)
        books.open_project(EVIL_PROJECT, EVIL_CHARITY, f"{SCRIPT}{IMG}", f"purpose {SCRIPT}", "CNY")
        evil = books.record_donation(
            EVIL_PROJECT, "1234.50", "wechat", payment_ref="evil-pay", donor_ref="donor-secret-ref",
            value_date="2026-11-29", intake_key="evil-intake-1",
            personal={"name": DONOR_NAME, "phone": "13800000000"},
        )
        body = P.disbursement(
            charity=EVIL_CHARITY, project=EVIL_PROJECT, currency="CNY", payee=FORMULA_PAYEE,
            purpose=f"{SCRIPT} purpose {IMG}", period=("2026-11-01", "2026-11-30"),
            lines=[(f"line {IMG}", "1000.00")], evidence=[(EVIDENCE, f"evidence {SCRIPT}{IMG}")],
        )
        books.disburse(body, [P.sign(body, keys[0])])
        seeded = Seeded(instance, books.ledger.verifier.to_string(), evil_gift=evil.entry.receipt)
        seeded.demo_projects = [p.project for p in books.projects() if p.project != EVIL_PROJECT]
        for p in seeded.demo_projects:
            seqs = books.books.project_seqs(p, 0, 10**6)
            for seq in seqs:
                entry = books.ledger.entry(seq)
                if entry.kind == "donation":
                    trace = books.trace(entry.receipt)
                    if trace.refunded and not seeded.refunded_gift:
                        seeded.refunded_gift = entry.receipt
                    if trace.spent and not seeded.spent_gift:
                        seeded.spent_gift = entry.receipt
        assert seeded.spent_gift and seeded.refunded_gift, seeded
        return seeded
    finally:
        books.stores.close()


class Html(HTMLParser):
    """The start tags of a page (name, attrs), its text, and its inline scripts and styles."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text_parts: list[str] = []
        self._in: list[str] = []
        self.inline: list[str] = []  # the bodies of <script> without src and of <style>
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "style" or (tag == "script" and "src" not in a):
            self.inline.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def find(self, tag: str | None = None, **attrs) -> list[dict]:
        """Tags by name and attribute values (``None`` as a value: the attribute is present)."""
        out = []
        for name, a in self.tags:
            if tag is not None and name != tag:
                continue
            if all((k in a) if v is None else a.get(k) == v for k, v in attrs.items()):
                out.append(a)
        return out

    def one(self, tag: str | None = None, **attrs) -> dict:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]
