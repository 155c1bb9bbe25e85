"""RFC 9457 problem details for every HTTP error: one handler maps the core's
error tree (status and type live on each class), one maps HTTP errors from
Flask, webargs and flask-limiter, and one answers unexpected errors.

Every request gets an id (a sane ``X-Request-Id`` from the client or proxy,
else a new one), echoed in the ``X-Request-Id`` response header and in every
problem body as ``request_id``.  Every unexpected error, and every domain
error of status 500 and up, is logged with it and its traceback.
"""

from __future__ import annotations

import http
import re
import uuid

from flask import Flask, Response, current_app, g, json, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, fields
from werkzeug.exceptions import HTTPException, InternalServerError

from ledger.errors import LuodiError, Unavailable

from . import contract

PROBLEM = "application/problem+json"
_HTTP_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
}


REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        given = request.headers.get("X-Request-Id", "")
        rid = g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return rid


def problem(status: int, slug: str, title: str, detail: str, **extra) -> Response:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, "instance": request.path}
    body.update(extra)
    body["request_id"] = request_id()
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="luodi"'
    return resp


class ProblemSchema(Schema):
    """RFC 9457 problem details, as every error is answered."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String()
    request_id = fields.String(metadata={"description": "this request's id, as the server logged it (X-Request-Id)"})
    errors = fields.Dict(metadata={"description": "schema errors by location and field"})


class ProblemApi(Api):
    """flask-smorest's Api, answering HTTP errors (webargs' 422 included) as problem+json,
    and documenting them so in the OpenAPI contract."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if status in (429, 503):
                response["headers"] = {"Retry-After": {
                    "description": "seconds to wait before trying again", "schema": {"type": "string"}}}
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        extra = {}
        data = getattr(error, "data", None) or {}
        if "messages" in data:
            extra["errors"] = data["messages"]
        detail = error.description or error.name
        if status == 422 and "errors" in extra:
            detail = describe_errors(extra["errors"])
        elif status == 404 and request.url_rule is None:
            detail = f"nothing at {request.path}: {contract.PATH_RULES}"
        elif status == 413 and request.max_content_length:
            detail = f"the request body is larger than {request.max_content_length} bytes"
        resp = problem(status, _HTTP_TYPES.get(status, "http-error"), error.name, detail, **extra)
        for key, value in (getattr(error, "get_headers", lambda: [])() or []):
            if key.lower() in ("allow", "retry-after"):
                resp.headers[key] = value
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            resp.headers["Allow"] = ", ".join(error.valid_methods)
        return resp


_WHERE = {"json": "", "query": "query parameter ", "headers": "header ", "view_args": "path parameter "}


def describe_errors(messages: dict) -> str:
    """One line from webargs' schema errors (by location, then field), naming each field:
    ``amount: must be a string such as "12.30"; period.start: is required``."""
    lines = []

    def walk(node, prefix: str, path: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                if key == "_schema":
                    walk(sub, prefix, path)
                elif isinstance(key, int):
                    walk(sub, prefix, f"{path}[{key}]")
                else:
                    walk(sub, prefix, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list) and not all(isinstance(m, str) for m in node):
            for sub in node:
                walk(sub, prefix, path)
        else:
            text = "; ".join(node) if isinstance(node, list) else str(node)
            lines.append(f"{prefix}{path}: {text}" if path else f"the {prefix.strip() or 'body'}: {text}")

    for location, errors in messages.items():
        walk(errors, _WHERE.get(location, f"{location} "), "")
    return "; ".join(lines) or "the request does not match its schema"


def log_failure(exc_info) -> None:
    """Log a failed request with its id and traceback (Flask calls this for every
    unexpected exception, see :class:`LuodiFlask`)."""
    current_app.logger.error("request %s: %s %s failed", request_id(), request.method, request.path, exc_info=exc_info)


class LuodiFlask(Flask):
    """Flask, logging each unexpected exception once, with the request's id."""

    def log_exception(self, exc_info) -> None:
        log_failure(exc_info)


def _log(error: BaseException) -> None:
    log_failure((type(error), error, error.__traceback__))


def _domain_error(error: LuodiError):
    if error.status >= 500:
        _log(error)
    body = error.problem()
    resp = problem(body.pop("status"), error.slug, body.pop("title"), body.pop("detail"), **{
        k: v for k, v in body.items() if k != "type"
    })
    if isinstance(error, Unavailable):
        g.retry_after = error.retry_after  # set by _retry_after, after flask-limiter's headers
    return resp


def _unexpected(error: InternalServerError):
    """Flask's answer to any exception no other handler took, after logging it
    (outside testing, where it propagates to the test instead).  What the failed
    request wrote is not known here, so the answer does not say."""
    detail = f"the server failed; its operator can find request {request_id()} in its log"
    return problem(500, "internal", "Internal error", detail)


def _tag(resp: Response) -> Response:
    resp.headers["X-Request-Id"] = request_id()
    return resp


def _retry_after(resp: Response) -> Response:
    """A 503's ``Retry-After`` is the error's own (or none).  flask-limiter puts its
    window's reset there on every limited route; registered before it, this runs after it."""
    if "retry_after" in g:
        if g.retry_after is None:
            resp.headers.pop("Retry-After", None)
        else:
            resp.headers["Retry-After"] = str(g.retry_after)
    return resp


def _too_deep(error: RecursionError):
    return problem(400, "bad-request", "Bad Request", "the JSON body is nested too deeply")


def init_app(app: Flask) -> Api:
    api = ProblemApi(app, spec_kwargs={"extra_plugins": [contract.ProblemsPlugin()]})
    contract.init_app(app, api)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    app.register_error_handler(LuodiError, _domain_error)
    app.register_error_handler(RecursionError, _too_deep)
    app.register_error_handler(InternalServerError, _unexpected)
    app.after_request(_tag)
    app.after_request(_retry_after)
    return api
