"""Request bodies: one strict JSON reader for every body the API parses.

webargs hands each ``@blp.arguments`` JSON body to :func:`load_json_body`
(through :class:`BodyParser`, the ``ARGUMENTS_PARSER`` of every blueprint, see
:class:`Blueprint`).  What JSON allows but no Luodi body means is refused with
a 400 problem whose detail says what is wrong:

* a key twice in one object (readers differ on which value wins), by the rule
  the core applies to entries (:func:`ledger.log.canonical.no_duplicate_keys`);
* an integer literal of more than :data:`MAX_INT_DIGITS` digits (wider than any
  64-bit integer, so no field could take it; Python would refuse past 4,300);
* ``NaN``, ``Infinity`` and numbers too large for a double;
* bytes that are not UTF-8, and ``\\ud800``-style escapes of lone surrogates,
  which no UTF-8 text can hold.

A body sent with ``Transfer-Encoding: chunked`` has no Content-Length for
Werkzeug to check against ``MAX_CONTENT_LENGTH``; its stream then stops
quietly at the limit, so the reader looks for one byte more and answers 413,
as for a declared length over the limit.
"""

from __future__ import annotations

import functools
import json
import math
import re

import flask_smorest
from flask import Request, current_app, request
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ledger.errors import LuodiError
from ledger.log.canonical import no_duplicate_keys

MAX_INT_DIGITS = 20  # 2**64 has 20 digits
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(ValueError):
    """A JSON value no request body may hold."""


def _int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]}{'...' if len(text) > 40 else ''} is too large")
    return value


def _constant(text: str):
    raise _Refused(f"{text} (JSON has no such number)")


_DECODER = json.JSONDecoder(
    object_pairs_hook=no_duplicate_keys, parse_int=_int, parse_float=_float, parse_constant=_constant
)


def _bad(why: str):
    raise BadRequest(f"the JSON body is not acceptable: {why}")


def _check_strings(value) -> None:
    """Refuse a lone surrogate (a ``\\ud800`` escape) in any key or string; iterative, so depth costs no stack."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                _bad(f"the string {v[:40]!r} holds a lone surrogate, which is not UTF-8")
        elif isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def parse_body(data: bytes):
    """The JSON value of a request body, or :class:`BadRequest` (400) saying what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _bad(f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        _bad(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except LuodiError as exc:  # no_duplicate_keys
        _bad(exc.detail)
    except RecursionError:
        _bad("nested too deeply")
    except ValueError as exc:  # _Refused, or Python's own limits
        _bad(str(exc))
    _check_strings(value)
    return value


def read_body(req: Request) -> bytes:
    """The request body, at most ``MAX_CONTENT_LENGTH`` bytes (413 beyond), chunked or not."""
    limit = req.max_content_length
    too_large = f"the request body is larger than {limit} bytes"
    try:
        data = req.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise RequestEntityTooLarge(too_large) from exc
    if limit is not None and req.content_length is None and len(data) >= limit:
        # Werkzeug's stream stopped at the limit; is there more?  (The server
        # ends a chunked body, ``wsgi.input_terminated``, so this read returns.)
        if req.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge(too_large)
    return data


def load_json_body(req: Request):
    """What webargs reads for ``location="json"``: ``missing`` for an empty body, else :func:`parse_body`."""
    data = read_body(req)
    if not data:
        return core.missing
    return parse_body(data)


class BodyParser(FlaskParser):
    """webargs' Flask parser, reading JSON bodies with :func:`load_json_body`."""

    def _raw_load_json(self, req: Request):
        if not core.is_json(req.mimetype):
            return core.missing
        return load_json_body(req)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with :class:`BodyParser`; every Luodi blueprint is one."""

    ARGUMENTS_PARSER = BodyParser()


def body_limit(config_key: str):
    """A view decorator (put it right under the route): this view's bodies may be up to
    ``app.config[config_key]`` bytes instead of ``MAX_CONTENT_LENGTH`` (the worker reads
    up to the largest such limit, see :mod:`api.worker`)."""

    def wrap(view):
        @functools.wraps(view)
        def limited(*args, **kwargs):
            request.max_content_length = current_app.config[config_key]
            return view(*args, **kwargs)

        return limited

    return wrap
