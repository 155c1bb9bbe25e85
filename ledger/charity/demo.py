"""A demo ledger modelled on real giving: a giving-day campaign, online teaching
for poor regions, a livestream selling farm produce for poverty relief, and
winter relief for families in need.

It registers charities (2-of-3 keys each), opens projects, records a few
hundred donations, posts disbursements signed by the charities' own keys with
evidence hashes, and refunds part of one gift.  The charities' private keys
are written to ``<instance>/demo-keys/`` (mode 0600) so they can be tried.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from ..log.keyfile import write_key_file
from ..log.note import Signer
from . import payload as P
from .money import parse_amount
from .service import CharityLedger

CHARITIES = [
    ("sunrise-education", "Sunrise Education Foundation"),
    ("harvest-aid", "Harvest Rural Aid Association"),
    ("warm-winter", "Warm Winter Charity"),
]
PROJECTS = [
    ("giving-day-2026", "sunrise-education", "99 Giving Day matching campaign",
     "Matched gifts for school libraries, raised on the September giving day", "1000000.00", ("2026-09-07", "2026-09-09")),
    ("rural-online-teaching", "sunrise-education", "Online teaching for rural schools in Guizhou",
     "Live lessons, tablets and bandwidth for 30 village schools", "500000.00", ("2026-09-01", "2027-06-30")),
    ("farm-livestream", "harvest-aid", "Livestream farm-produce sales for poverty relief in Gansu",
     "Cold-chain packing and shipping so village co-ops can sell apples and potatoes online", "300000.00", ("2026-10-01", "2027-03-31")),
    ("winter-relief", "warm-winter", "Winter relief for families in need",
     "Coats, quilts and heating coal for 500 families", "400000.00", ("2026-11-01", "2027-02-28")),
]
DISBURSEMENTS = [
    ("giving-day-2026", "Xinhua Bookstore Guiyang branch", "Books for 12 village school libraries",
     [("1,600 children's books", "24000.00"), ("shelving and delivery", "3000.00")]),
    ("rural-online-teaching", "Guizhou Telecom", "Bandwidth for 30 schools, first term",
     [("30 school lines x 5 months", "15000.00")]),
    ("rural-online-teaching", "Shenzhen EduTab Ltd.", "Tablets for remote classrooms",
     [("25 tablets", "20000.00"), ("cases and chargers", "1500.00")]),
    ("farm-livestream", "Dingxi Cold Chain Co-op", "Packing and cold storage for the apple harvest",
     [("cold storage, 6 weeks", "18000.00"), ("gift boxes", "7500.00")]),
    ("winter-relief", "Lanzhou Warm Textiles Co., Ltd.", "Winter coats for families in Dingxi",
     [("200 coats at 150.00", "30000.00"), ("delivery to villages", "1200.00")]),
    ("winter-relief", "Gansu Coal Supply", "Heating coal for 40 households",
     [("40 tonnes of coal", "12000.00")]),
]
CHANNELS = ["wechat", "alipay", "unionpay", "bank_transfer"]


def _keys(charity: str, keys_dir: Path | None) -> list[Signer]:
    signers = [Signer.generate(f"{charity}/finance-{i}") for i in range(1, 4)]
    if keys_dir is not None:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for s in signers:
            write_key_file(keys_dir / f"{s.name.replace('/', '-')}.key", s)
    return signers


def seed_demo(books: CharityLedger, donations: int = 400, keys_dir: Path | None = None, seed: int = 2026) -> int:
    """Write the demo; return how many entries it appended."""
    rng = random.Random(seed)
    start = books.ledger.size()
    signers = {}
    for charity, name in CHARITIES:
        signers[charity] = _keys(charity, keys_dir)
        books.register_charity(charity, name, [s.verifier.to_string() for s in signers[charity]], 2)
    for project, charity, title, purpose, target, period in PROJECTS:
        books.open_project(project, charity, title, purpose, "CNY", target=target, period=period)
    receipts = []
    for i in range(donations):
        project = rng.choice(PROJECTS)[0]
        amount = f"{rng.choice([10, 20, 50, 99, 100, 200, 500, 1000, 2000])}.{rng.choice(['00', '00', '50', '99'])}"
        receipt = books.record_donation(
            project,
            amount,
            rng.choice(CHANNELS),
            payment_ref=f"PAY{seed}{i:08d}",
            donor_ref=f"donor-{rng.randrange(10**9):09d}",
            value_date="2026-11-29",
            intake_key=f"demo-intake-{i:06d}",
        )
        receipts.append(receipt.entry)
    for n, (project, payee, purpose, lines) in enumerate(DISBURSEMENTS):
        charity = next(p[1] for p in PROJECTS if p[0] == project)
        balance = books.project(project).balance
        total = sum(parse_amount(a, "CNY") for _, a in lines)
        if total > balance:  # keep the demo honest: never try to overspend
            continue
        evidence = [(hashlib.sha256(f"{project}-invoice-{n}".encode()).hexdigest(), f"invoice {2026_1100 + n} (PDF)")]
        body = P.disbursement(
            charity=charity, project=project, currency="CNY", payee=payee, purpose=purpose,
            period=("2026-11-01", "2026-11-30"), lines=lines, evidence=evidence,
        )
        s1, s2, _ = signers[charity]
        books.disburse(body, [P.sign(body, s1), P.sign(body, s2)])
    for entry in reversed(receipts):
        trace = books.trace(entry.receipt)
        if trace.unspent >= 1000:
            books.refund(entry.receipt, "10.00", "Donor asked for part of the gift back within the cooling-off period")
            break
    books.ledger.append("note", {"text": "Demo data: every name, payee and amount here is made up."})
    return books.ledger.size() - start
