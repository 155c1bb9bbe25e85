"""The donor pages through Flask's test client, over a real SQLite demo instance
with hostile names in it (tests/page_helpers.py): content, status codes,
headers (CSP), language, escaping, downloads and friendly 404s.

SQLite only (the default database): this is about the donor pages and what they render;
the storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import pytest

from api import create_app
from api.i18n import TEXTS, en, zh_cn
from api.page_chart import chart
from api.page_format import money
from ledger.charity.money import format_amount, parse_amount
from tests.page_helpers import DONOR_NAME, EVIDENCE, EVIL_PROJECT, FORMULA_PAYEE, IMG, INJECTIONS, SCRIPT, Html, seed_pages

PAGES = ("/", "/about/verification", "/projects/winter-relief")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return seed_pages(tmp_path_factory.mktemp("pages") / "inst")


@pytest.fixture
def client(seeded):
    app = create_app({"TESTING": True, "INSTANCE": str(seeded.instance)})
    return app.test_client()


def page(client, url: str, status: int = 200) -> Html:
    resp = client.get(url)
    assert resp.status_code == status, (url, resp.status_code, resp.data[:300])
    assert resp.mimetype == "text/html"
    return Html(resp.get_data(as_text=True))


def api(client, url: str):
    resp = client.get(url)
    assert resp.status_code == 200, url
    return resp.get_json()


# -- money and words ------------------------------------------------------------------------


def test_amounts_are_written_in_their_currencys_format():
    assert money(123450, "CNY") == "¥1,234.50"
    assert money(5, "CNY") == "¥0.05"
    assert money(100000000, "USD") == "$1,000,000.00"
    assert money(500, "JPY") == "¥500"
    assert money(1234500, "BHD") == "1,234.500 BHD"
    assert money(-1050, "EUR") == "-€10.50"


def test_both_languages_have_the_same_words():
    assert zh_cn.TEXT.keys() == en.TEXT.keys()
    assert zh_cn.TEXT["panel"].keys() == en.TEXT["panel"].keys()
    assert zh_cn.TEXT["channels"].keys() == en.TEXT["channels"].keys()
    assert len(zh_cn.TEXT["about_sections"]) == len(en.TEXT["about_sections"])


# -- home -------------------------------------------------------------------------------------


def test_home_has_the_search_form_the_projects_and_the_latest_checkpoint(client):
    html = page(client, "/")
    assert html.one("html")["lang"] == "zh-CN"
    form = html.one("form")
    assert form["method"] == "get" and form["action"] == "/receipts"
    html.one("input", name="hash")
    for p in api(client, "/v1/projects")["projects"]:
        card = html.one("li", **{"data-project": p["project"]})
        assert card is not None
        cur = p["currency"]
        for figure in ("raised", "spent", "balance"):
            assert money(_minor(p[figure], cur), cur) in html.text
    titles = {e["entry"]["body"]["title"] for e in _all(client, "/v1/entries") if e["entry"]["kind"] == "project.opened"}
    for title in titles - {f"{SCRIPT}{IMG}"}:
        assert title in html.text
    note = client.get("/v1/checkpoint").get_data(as_text=True)
    size = int(note.splitlines()[1])
    assert html.text.count(str(size)) >= 1
    assert html.one("dd", **{"data-tree-size": None}) is not None
    root = base64.b64decode(note.splitlines()[2]).hex()
    assert root in html.text
    last = api(client, f"/v1/entries/{size - 1}")["entry"]["time"]
    assert html.one("time")["datetime"] == last
    assert f"{last[:10]} {last[11:16]} UTC" in html.text


def test_the_search_form_takes_a_hash_to_its_receipt_page(client, seeded):
    resp = client.get(f"/receipts?hash=%20{seeded.spent_gift.upper()}%20")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/receipts/{seeded.spent_gift}"
    for bad in ("nothex", "", seeded.spent_gift[:-1]):
        html = page(client, f"/receipts?hash={bad}", 404)
        assert TEXTS["zh-CN"]["not_found_text"] in html.text


# -- receipt ---------------------------------------------------------------------------------


def test_receipt_page_shows_the_gift_and_where_it_went(client, seeded):
    r = api(client, f"/v1/receipts/{seeded.spent_gift}")
    html = page(client, f"/receipts/{seeded.spent_gift}")
    body, cur = r["entry"]["entry"]["body"], r["currency"]
    t = TEXTS["zh-CN"]
    assert money(body["amount"], cur) in html.text
    assert t["channels"][body["channel"]] in html.text
    assert r["entry"]["entry"]["time"] in [a.get("datetime") for a in html.find("time")]
    assert r["project_opening"]["entry"]["body"]["title"] in html.text
    assert r["allocation"]
    for spent in r["allocation"]:
        payload = spent["disbursement"]["entry"]["body"]["payload"]
        card = html.one("li", **{"data-seq": str(spent["leaf_index"])})
        assert card is not None
        assert money(_minor(spent["amount"], cur), cur) in html.text
        for text in (payload["payee"]["name"], payload["purpose"], payload["period"]["start"], payload["period"]["end"]):
            assert text in html.text
        for ev in payload["evidence"]:
            assert ev["sha256"] in html.text
    for figure in ("spent", "refunded", "unspent"):
        shown = html.one("dd", **{f"data-{figure}": None})
        assert shown is not None
        assert money(_minor(r[figure], cur), cur) in html.text


def test_a_refunded_gift_shows_what_was_refunded_and_what_is_unspent(client, seeded):
    r = api(client, f"/v1/receipts/{seeded.refunded_gift}")
    assert r["refunded"] != format_amount(0, r["currency"])
    text = client.get(f"/receipts/{seeded.refunded_gift}").get_data(as_text=True)
    refunded = re.search(r"data-refunded>([^<]*)<", text).group(1)
    unspent = re.search(r"data-unspent>([^<]*)<", text).group(1)
    assert refunded == money(_minor(r["refunded"], r["currency"]), r["currency"])
    assert unspent == money(_minor(r["unspent"], r["currency"]), r["currency"])


def test_the_verification_panel_keeps_its_contract(client, seeded):
    html = page(client, f"/receipts/{seeded.spent_gift}?lang=en")
    panel = html.one("section", id="verification")
    assert panel["data-status"] == "running"
    assert panel["data-receipt"] == seeded.spent_gift
    assert panel["data-log-key"] == client.get("/v1/log/key").get_data(as_text=True).strip() == seeded.log_key
    assert panel["data-lang"] == "en"
    assert json.loads(panel["data-text-en"]) == en.TEXT["panel"]
    assert json.loads(panel["data-text-zh-cn"]) == zh_cn.TEXT["panel"]
    html.one("ol", **{"data-steps": None})
    text = client.get(f"/receipts/{seeded.spent_gift}").get_data(as_text=True)
    section = text[text.index('<section id="verification"'):]
    section = section[: section.index("</section>")]
    assert re.search(r"<ol data-steps></ol>", section)  # empty: the script fills it
    assert re.search(r"<noscript><p class=\"needs-js\">[^<]+</p></noscript>", section)
    assert html.one("script", type="module", src="/static/verify/panel.js") is not None


def test_the_receipt_downloads_are_the_offline_receipt_and_its_tlog_proof(client, seeded):
    html = page(client, f"/receipts/{seeded.spent_gift}")
    links = {a["href"] for a in html.find("a", download=None)}
    assert links == {f"/v1/receipts/{seeded.spent_gift}", f"/v1/receipts/{seeded.spent_gift}.tlog-proof"}
    assert client.get(f"/v1/receipts/{seeded.spent_gift}").get_json()["entry"]["leaf_hash"] == seeded.spent_gift
    assert client.get(f"/v1/receipts/{seeded.spent_gift}.tlog-proof").status_code == 200
    assert "luodi verify-receipt" in html.text


# -- project ---------------------------------------------------------------------------------


def test_project_page_has_totals_chart_donations_and_disbursements(client):
    p = api(client, "/v1/projects/winter-relief")
    entries = _all(client, "/v1/projects/winter-relief/entries")
    html = page(client, "/projects/winter-relief")
    for figure in ("raised", "spent", "balance"):
        assert money(_minor(p[figure], "CNY"), "CNY") in html.text
    html.one("svg", id="money-chart")
    lines = {a["data-series"]: a["points"] for a in html.find("polyline")}
    assert set(lines) == {"in", "out"}
    # the money-in line ends at the top (more came in than went out); money out at its share of it
    raised, out = _minor(p["raised"], "CNY"), _minor(p["spent"], "CNY") + _minor(p["refunded"], "CNY")
    assert raised > out > 0
    assert float(lines["in"].split()[-1].split(",")[1]) == pytest.approx(8.0)
    assert float(lines["out"].split()[-1].split(",")[1]) == pytest.approx(232 - out / raised * 224, abs=0.1)
    text = client.get("/projects/winter-relief").get_data(as_text=True)
    assert re.search(r"data-chart-top>([^<]*)<", text).group(1) == money(raised, "CNY")
    donations = [e for e in entries if e["entry"]["kind"] == "donation"]
    shown = html.find("li", **{"data-seq": None})
    shown_seqs = {a["data-seq"] for a in shown}
    for d in donations[-100:]:
        assert str(d["seq"]) in shown_seqs
        assert d["entry"]["body"]["donor_commitment"] in html.text
    disbursements = [e for e in entries if e["entry"]["kind"] == "disbursement"]
    assert disbursements
    for d in disbursements:
        payload = d["entry"]["body"]["payload"]
        assert str(d["seq"]) in shown_seqs
        for line in payload["lines"]:
            assert line["description"] in html.text
            assert money(line["amount"], "CNY") in html.text
        for ev in payload["evidence"]:
            assert ev["sha256"] in html.text


def test_project_page_never_shows_donors(client, seeded):
    with client.application.app_context():
        from api.state import charity_ledger

        personal = charity_ledger().personal_data(seeded.evil_gift)
    assert personal["name"] == DONOR_NAME  # the intake sent it; it is kept outside the log
    text = client.get(f"/projects/{EVIL_PROJECT}").get_data(as_text=True)
    text += client.get(f"/receipts/{seeded.evil_gift}").get_data(as_text=True)
    text += client.get(f"/projects/{EVIL_PROJECT}/entries.csv").get_data(as_text=True)
    for secret in (DONOR_NAME, "13800000000", "donor-secret-ref", "evil-pay"):
        assert secret not in text


def test_project_downloads_hold_every_entry(client):
    entries = _all(client, "/v1/projects/winter-relief/entries")
    resp = client.get("/projects/winter-relief/entries.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="winter-relief-entries.json"'
    assert resp.get_json()["entries"] == entries
    assert resp.get_json()["project"] == api(client, "/v1/projects/winter-relief")
    resp = client.get("/projects/winter-relief/entries.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in entries]
    assert [r["leaf_hash"] for r in rows] == [e["leaf_hash"] for e in entries]
    for row, e in zip(rows, entries):
        body = e["entry"]["body"].get("payload", e["entry"]["body"])
        if "amount" in body:
            assert row["amount"] == format_amount(body["amount"], "CNY")
        if e["entry"]["kind"] == "donation":
            assert row["donor_commitment"] == body["donor_commitment"]


def test_csv_cells_a_spreadsheet_would_run_are_quoted(client):
    rows = list(csv.DictReader(io.StringIO(client.get(f"/projects/{EVIL_PROJECT}/entries.csv").get_data(as_text=True))))
    payees = [r["payee"] for r in rows if r["kind"] == "disbursement"]
    assert payees == ["'" + FORMULA_PAYEE]
    assert [r["evidence_sha256"] for r in rows if r["kind"] == "disbursement"] == [EVIDENCE]


# -- language ------------------------------------------------------------------------------------


def test_chinese_by_default_english_by_switch_and_remembered(client, seeded):
    html = page(client, "/")
    assert html.one("html")["lang"] == "zh-CN"
    switch = html.one("a", **{"class": "lang-switch"})
    assert switch["href"] == "/?lang=en"
    resp = client.get("/?lang=en")
    assert "lang=en" in resp.headers["Set-Cookie"]
    assert Html(resp.get_data(as_text=True)).one("html")["lang"] == "en"
    for url in (f"/receipts/{seeded.spent_gift}", "/projects/winter-relief", "/about/verification"):
        html = page(client, url)  # no ?lang: the cookie remembers
        assert html.one("html")["lang"] == "en"
        assert html.one("a", **{"class": "lang-switch"})["href"] == f"{url}?lang=zh-CN"
    assert en.TEXT["about_sections"][0][1] in html.text
    assert page(client, "/?lang=zh-CN").one("html")["lang"] == "zh-CN"
    assert page(client, "/").one("html")["lang"] == "zh-CN"
    assert page(client, "/?lang=klingon").one("html")["lang"] == "zh-CN"
    assert "Set-Cookie" not in client.get("/?lang=klingon").headers


# -- 404s ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/projects/no-such-project", "/receipts/" + "0" * 64, "/receipts/not-a-hash",
                                 "/projects/Bad%20Id", "/projects/no-such-project/entries.csv",
                                 "/projects/no-such-project/entries.json"])
def test_unknown_receipts_and_projects_get_a_friendly_html_404(client, url):
    resp = client.get(url)
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert "Content-Security-Policy" in resp.headers
    html = Html(resp.get_data(as_text=True))
    assert zh_cn.TEXT["not_found_text"] in html.text
    assert zh_cn.TEXT["back_home"] in html.text and len(html.find("a", href="/")) == 2
    html = Html(client.get(url + ("&" if "?" in url else "?") + "lang=en").get_data(as_text=True))
    assert en.TEXT["not_found_text"] in html.text


@pytest.mark.parametrize("url", ["/v1/projects/no-such-project", "/v1/receipts/" + "0" * 64, "/v1/nothing-here"])
def test_v1_stays_problem_json(client, url):
    resp = client.get(url)
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert "Content-Security-Policy" not in resp.headers


# -- standards: CSP, nothing inline, nothing remote, escaping --------------------------------------


def _every_page(seeded) -> list[str]:
    return [*PAGES, f"/receipts/{seeded.spent_gift}", f"/receipts/{seeded.evil_gift}", f"/projects/{EVIL_PROJECT}",
            "/projects/nope"]


def test_every_page_sends_the_csp_and_has_nothing_inline_or_remote(client, seeded):
    for url in _every_page(seeded):
        resp = client.get(url)
        csp = resp.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
        assert directives["connect-src"] == "'self'"
        assert "unsafe" not in csp
        html = Html(resp.get_data(as_text=True))
        assert html.inline == [], url
        assert not [a for _, a in html.tags if "style" in a or any(k.startswith("on") for k in a)], url
        for _, a in html.tags:
            for key in ("src", "href", "action"):
                assert not re.match(r"(https?:)?//", a.get(key, "")), (url, a)


def test_docs_keep_their_own_policy(client):
    resp = client.get("/docs")
    assert resp.status_code == 200
    assert "Content-Security-Policy" not in resp.headers


def test_hostile_names_stay_inert(client, seeded):
    for url in (f"/projects/{EVIL_PROJECT}", f"/receipts/{seeded.evil_gift}", "/"):
        text = client.get(url).get_data(as_text=True)
        for hostile in INJECTIONS:
            assert hostile not in text, url
        assert "<img" not in text and "<script>" not in text
        assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in text
        html = Html(text)
        assert not html.find("img") and not [a for _, a in html.tags if "onerror" in a]
        assert SCRIPT in html.text  # shown as text
    html = page(client, f"/projects/{EVIL_PROJECT}")
    assert f"{SCRIPT} Evil {IMG}" in html.text and EVIDENCE in html.text


# -- helpers ----------------------------------------------------------------------------------------


def _minor(decimal: str, currency: str) -> int:
    return parse_amount(decimal, currency) if decimal != format_amount(0, currency) else 0


def _all(client, url: str) -> list[dict]:
    out, start = [], 0
    while start is not None:
        got = api(client, f"{url}?start={start}&limit=1000")
        out += got["entries"]
        start = got["next_start"]
    return out


def test_no_chart_when_no_money_moved():
    assert chart([]) is None
