"""The log as C2SP tlog-tiles over HTTP (https://c2sp.org/tlog-tiles, docs/tiles.md).

The service root is the log's tlog-tiles *prefix*:

- ``GET /checkpoint``: exactly what ``GET /v1/checkpoint`` answers (the same
  view), ``text/plain; charset=utf-8``, never cached for long (tlog-tiles,
  *Checkpoints*);
- ``GET /tile/<L>/<N>[.p/<W>]``: a hash tile, the nodes read in one storage
  query (tlog-tiles, *Merkle Tree*);
- ``GET /tile/entries/<N>[.p/<W>]``: an entry bundle of the canonical bytes,
  gzip-compressed when the client accepts it (tlog-tiles, *Log entries*).

Tiles and bundles, full or partial, are ``application/octet-stream`` and
immutable (the log only grows, so a tile's bytes never change once it exists):
``Cache-Control: public, max-age=31536000, immutable`` and a strong ETag.  A
malformed path, an empty tile or one beyond the tree is a 404 problem
(:class:`~ledger.errors.NoSuchTile`).  These routes are outside ``/v1`` and
outside the OpenAPI contract: their format is the spec's.
"""

from __future__ import annotations

import gzip

from flask import Blueprint, Response, request

from ledger.errors import NoSuchTile, NotFound
from ledger.log.tiles import ENTRIES, TILE_WIDTH, encode_bundle, hash_tile, parse_tile_path

from . import public
from .state import ledger
from .views import immutable

bp = Blueprint("tiles", __name__)
OCTETS = "application/octet-stream"


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """The log's checkpoint at the tlog-tiles prefix: the answer of ``/v1/checkpoint``, whatever it serves."""
    return public.checkpoint()


@bp.get("/tile/<path:rest>")
def tile(rest: str) -> Response:
    found = parse_tile_path("tile/" + rest)
    log = ledger()
    try:
        if found.level == ENTRIES:
            start = found.index * TILE_WIDTH
            data = encode_bundle(log.export(start, start + found.width))
        else:
            data = hash_tile(log.store.nodes, found)
    except NotFound:
        raise NoSuchTile(f"the log has no {found.path} (yet)") from None
    resp = Response(data, mimetype=OCTETS)
    if found.level == ENTRIES:
        resp.vary.add("Accept-Encoding")
        if request.accept_encodings["gzip"]:
            resp.set_data(gzip.compress(data, compresslevel=6, mtime=0))
            resp.headers["Content-Encoding"] = "gzip"
    return immutable(resp)


def init_app(app) -> None:
    app.register_blueprint(bp)
