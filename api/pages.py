"""The donor pages: HTML for people, beside the JSON API under /v1.

``/`` (look up a receipt; projects; the latest checkpoint), ``/receipts/<hash>``
(a gift, where it went, the verification panel that ``/static/verify/panel.js``
fills), ``/projects/<id>`` (totals, an SVG chart drawn here, donations and
disbursements) with ``entries.csv`` and ``entries.json``, and
``/about/verification``.  One core call per page; Jinja2 escapes every value.

Chinese is the default; ``?lang=en`` (or ``zh-CN``) switches and a cookie
remembers it.  Every page is sent with :data:`CSP`: only this site's own
scripts, styles and requests, nothing inline.  An unknown receipt or project
gets a friendly HTML 404 (under /v1 errors stay problem+json).
"""

from __future__ import annotations

import csv
import io
import json

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound as HTTPNotFound

from ledger.charity import overview
from ledger.charity.money import format_amount
from ledger.errors import NotFound
from ledger.log.fields import HEX64

from . import i18n
from .page_chart import chart
from .page_format import money, when
from .state import charity_ledger
from .views import item, project

bp = Blueprint("pages", __name__, template_folder="templates", static_folder=None)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
LANG_MAX_AGE = 365 * 24 * 3600
SHOWN_DONATIONS = 100


@bp.before_request
def _language() -> None:
    g.lang = i18n.pick(request.args.get("lang"), request.cookies.get(i18n.COOKIE))


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    if request.args.get("lang") in i18n.TEXTS:
        resp.set_cookie(i18n.COOKIE, request.args["lang"], max_age=LANG_MAX_AGE, samesite="Lax", httponly=True)
    resp.vary.add("Cookie")
    return resp


def _page(template: str, status: int = 200, **context) -> tuple[str, int]:
    t = i18n.TEXTS[g.lang]
    return render_template(f"pages/{template}", t=t, lang=g.lang, money=money, when=when, **context), status


@bp.errorhandler(NotFound)
@bp.errorhandler(HTTPNotFound)
def _not_found(error):
    if "lang" not in g:
        _language()
    return _page("not_found.html", 404)


@bp.get("/")
def home():
    found = overview.overview(charity_ledger())
    return _page("home.html", o=found)


@bp.get("/receipts")
def lookup():
    """The home page's search form: ``?hash=`` to that receipt's page."""
    wanted = request.args.get("hash", "").strip().lower()
    if not HEX64.fullmatch(wanted):
        raise NotFound("not a receipt hash")
    return redirect(url_for("pages.receipt_page", leaf_hash=wanted), 303)


@bp.get("/receipts/<string:leaf_hash>")
def receipt_page(leaf_hash):
    if not HEX64.fullmatch(leaf_hash):
        raise NotFound("not a receipt hash")
    r = charity_ledger().receipt(leaf_hash)
    t = i18n.TEXTS[g.lang]
    cur = r.trace.currency
    gifts = []
    for s in r.spending:
        payload = s.disbursement.body["payload"]
        gifts.append({"entry": s.disbursement, "p": payload, "amount": s.amount, "total": payload["amount"]})
    panel_texts = {lang: json.dumps(text["panel"], ensure_ascii=False) for lang, text in i18n.TEXTS.items()}
    return _page(
        "receipt.html",
        r=r,
        d=r.entry.body,
        cur=cur,
        gifts=gifts,
        title=r.project_opening.entry.body["title"] if r.project_opening else r.trace.project,
        charity_name=r.charity_entries[0].entry.body["name"] if r.charity_entries else "",
        channel=t["channels"].get(r.entry.body["channel"], r.entry.body["channel"]),
        panel_texts=panel_texts,
    )


@bp.get("/projects/<string:project_id>")
def project_page(project_id):
    h = overview.history(charity_ledger(), project_id)
    donations = [e for e in h.entries if e.kind == "donation"]
    return _page(
        "project.html",
        h=h,
        p=h.titled.project,
        cur=h.titled.project.currency,
        chart=chart(h.entries),
        donations=donations[::-1][:SHOWN_DONATIONS],
        donation_total=h.titled.project.donations,
        disbursements=[e for e in h.entries if e.kind == "disbursement"][::-1],
        refunds=[e for e in h.entries if e.kind == "refund"][::-1],
    )


@bp.get("/projects/<string:project_id>/entries.json")
def project_entries_json(project_id):
    """Every entry of the project (as /v1 shows entries), with its totals."""
    h = overview.history(charity_ledger(), project_id, limit=None)
    body = {"project": project(h.titled.project), "entries": [item(e) for e in h.entries]}
    resp = Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")
    resp.headers["Content-Disposition"] = f'attachment; filename="{project_id}-entries.json"'
    return resp


CSV_COLUMNS = ("seq", "time", "kind", "leaf_hash", "amount", "currency", "channel", "donor_commitment",
               "payee", "purpose", "period", "evidence_sha256", "reason")


@bp.get("/projects/<string:project_id>/entries.csv")
def project_entries_csv(project_id):
    """Every entry of the project, one row each; text a spreadsheet would run as a formula is quoted."""
    h = overview.history(charity_ledger(), project_id, limit=None)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in h.entries:
        writer.writerow([_cell(v) for v in _row(e)])
    resp = Response(out.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{project_id}-entries.csv"'
    return resp


def _row(e) -> list:
    body = e.body.get("payload", e.body)
    cur = body.get("currency") or ""
    amount = money_text(body.get("amount"), cur)
    period = body.get("period") or {}
    return [
        e.seq, e.time, e.kind, e.receipt, amount, cur, body.get("channel", ""), body.get("donor_commitment", ""),
        (body.get("payee") or {}).get("name", ""), body.get("purpose", ""),
        f"{period['start']}/{period['end']}" if period else "",
        " ".join(ev["sha256"] for ev in body.get("evidence", [])), body.get("reason", ""),
    ]


def money_text(minor, currency: str) -> str:
    return format_amount(minor, currency) if isinstance(minor, int) and currency else ""


def _cell(value) -> str:
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/about/verification")
def about():
    return _page("about.html")


def init_app(app) -> None:
    app.register_blueprint(bp)
