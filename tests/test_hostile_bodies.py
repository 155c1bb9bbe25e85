"""Hostile and malformed request bodies, through the Flask test client (issue 9, section 2).

JSON a client can send but no Luodi body means (a key twice, an integer of
thousands of digits, NaN, bytes that are not UTF-8) is a 400 problem saying
what is wrong; a body over ``MAX_CONTENT_LENGTH`` is 413 whether it declares
its length or is chunked; a value of the wrong type is a 422 problem whose
detail names the field and the type expected.  Nothing is written.
``tests/test_hostile_gunicorn.py`` sends the same over real HTTP.
"""

from __future__ import annotations

import io
import json

import pytest
from api_helpers import PROJECT, assert_problem, donation_body, make_api, signed  # noqa: F401  (make_api is a fixture)
from test_api_errors import ROUTE_IDS, post_routes

# SQLite only: hostile request bodies are refused by the edge before any storage is touched.
pytestmark = pytest.mark.sqlite_only('hostile request bodies are refused by the edge before any storage is touched')

MAX_BODY = 64 * 1024
HUGE_INT = "9" * 5000  # past Python's 4,300-digit limit for int(), which made this an unauthenticated 500


def with_first_key_twice(body: dict, first_value) -> bytes:
    """The body's JSON text with its first key sent once more in front, holding ``first_value``:
    a reader where the last key wins sees ``body`` unchanged."""
    key = next(iter(body))
    return ("{" + json.dumps(key) + ": " + json.dumps(first_value) + ", " + json.dumps(body)[1:]).encode()


def send(env, url: str, data: bytes, token: str | None = None, **headers):
    return env.client.post(url, data=data, content_type="application/json",
                           headers={**env.auth(token), "Idempotency-Key": "hostile-body-0001", **headers})


def refused(resp, status: int = 400) -> str:
    return assert_problem(resp, status, {400: "bad-request", 413: "too-large", 422: "invalid-input"}[status])["detail"]


# -- duplicate keys ---------------------------------------------------------------------------------


def test_a_donation_with_its_amount_twice_is_refused_not_recorded_at_the_last(make_api):
    """{"amount":"1.00","amount":"9999.00",...} was recorded as 9,999.00."""
    env = make_api()
    text = with_first_key_twice(donation_body(amount="9999.00"), "1.00")
    with env.unchanged():
        detail = refused(send(env, f"/v1/projects/{PROJECT}/donations", text, "intake"))
    assert "duplicate key 'amount'" in detail


@pytest.mark.parametrize("route", range(6), ids=ROUTE_IDS)
def test_every_body_refuses_a_key_twice(make_api, route):
    env = make_api()
    url, token, body = post_routes(env)[route]
    key = next(iter(body))
    with env.unchanged():
        detail = refused(send(env, url, with_first_key_twice(body, body[key]), token))
    assert f"duplicate key {key!r}" in detail


def test_a_key_twice_deep_inside_a_signed_payload_is_refused(make_api):
    env = make_api()
    body = signed(env.disbursement(), *env.keys[:2])
    payload = json.dumps(body["payload"])
    text = json.dumps(body).replace(payload, '{"payee": {"name": "x", "name": "y"}, ' + payload[1:]).encode()
    with env.unchanged():
        detail = refused(send(env, f"/v1/projects/{PROJECT}/disbursements", text))
    assert "duplicate key 'name'" in detail


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["top", "payload"])
def test_an_integer_of_thousands_of_digits_is_400_without_a_token(make_api, where):
    """No token is needed to reach the body reader of a disbursement: this was an unauthenticated 500."""
    env = make_api(config={"TESTING": False})
    if where == "top":
        text = ('{"payload": ' + HUGE_INT + ', "signatures": []}').encode()
    else:
        text = ('{"payload": {"amount": ' + HUGE_INT + '}, "signatures": []}').encode()
    with env.unchanged():
        detail = refused(send(env, f"/v1/projects/{PROJECT}/disbursements", text))
    assert "5000 digits" in detail


@pytest.mark.parametrize("route", range(6), ids=ROUTE_IDS)
def test_every_body_refuses_a_huge_integer(make_api, route):
    env = make_api(config={"TESTING": False})
    url, token, body = post_routes(env)[route]
    text = json.dumps({**body, "extra": 0}).replace('"extra": 0', f'"extra": -{HUGE_INT}').encode()
    with env.unchanged():
        assert "digits" in refused(send(env, url, text, token))


def test_an_integer_as_wide_as_64_bits_still_reaches_the_schema(make_api):
    """The digit limit is wider than any integer a field takes: those get the field's own message."""
    env = make_api()
    url, token, body = post_routes(env)[0]
    text = json.dumps({**body, "threshold": 0}).replace('"threshold": 0', '"threshold": 18446744073709551616').encode()
    with env.unchanged():
        detail = refused(send(env, url, text, token), 422)
    assert detail.startswith("threshold: ")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_numbers_json_cannot_mean_are_400(make_api, value):
    env = make_api()
    text = json.dumps(donation_body(amount="X")).replace('"X"', value).encode()
    with env.unchanged():
        detail = refused(send(env, f"/v1/projects/{PROJECT}/donations", text, "intake"))
    assert value.lstrip("-") in detail


# -- text --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"],
                         ids=["ff", "bad-continuation", "encoded-surrogate", "past-u10ffff"])
def test_bytes_that_are_not_utf8_are_400(make_api, raw):
    env = make_api()
    text = json.dumps(donation_body(donor_ref="D")).encode().replace(b'"D"', b'"' + raw + b'"')
    with env.unchanged():
        assert "not UTF-8" in refused(send(env, f"/v1/projects/{PROJECT}/donations", text, "intake"))


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\ud83d"])
def test_an_escaped_lone_surrogate_is_400(make_api, escape):
    """"\\ud800" is valid JSON but no UTF-8 text: a donor_ref holding it could not even be hashed."""
    env = make_api(config={"TESTING": False})
    text = json.dumps(donation_body(donor_ref="D")).replace('"D"', f'"{escape}"').encode()
    with env.unchanged():
        assert "lone surrogate" in refused(send(env, f"/v1/projects/{PROJECT}/donations", text, "intake"))


def test_syntax_errors_say_where(make_api):
    env = make_api()
    with env.unchanged():
        detail = refused(send(env, f"/v1/projects/{PROJECT}/donations", b'{"amount": "1.00",\n "channel" "cash"}',
                              "intake"))
    assert "line 2" in detail


# -- size -----------------------------------------------------------------------------------------


def chunked(env, url: str, data: bytes, token: str | None = None):
    """A body sent as a server hands on a chunked one: no Content-Length, the stream ended by the server."""
    return env.client.post(
        url, input_stream=io.BytesIO(data), content_type="application/json",
        headers={**env.auth(token), "Transfer-Encoding": "chunked", "Idempotency-Key": "hostile-chunk-0001"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def padded(body: dict, size: int) -> bytes:
    text = json.dumps(body).encode()
    return text + b" " * (size - len(text))


def test_a_chunked_body_over_the_limit_is_413_and_one_at_the_limit_is_read_whole(make_api):
    """A chunked body was cut silently at the limit and then refused as bad JSON (400)."""
    env = make_api()
    with env.unchanged():
        resp = chunked(env, f"/v1/projects/{PROJECT}/donations", padded(donation_body(), MAX_BODY + 1), "intake")
        assert str(MAX_BODY) in refused(resp, 413)
    resp = chunked(env, f"/v1/projects/{PROJECT}/donations", padded(donation_body(), MAX_BODY), "intake")
    assert resp.status_code == 201, resp.get_data(as_text=True)


def test_a_declared_length_over_the_limit_is_413_saying_the_limit(make_api):
    env = make_api()
    with env.unchanged():
        resp = send(env, f"/v1/projects/{PROJECT}/donations", padded(donation_body(), MAX_BODY + 1), "intake")
        assert str(MAX_BODY) in refused(resp, 413)


# -- types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route, change, expected",
    [
        (2, {"amount": 100}, 'amount: must be a string such as "12.30"'),
        (2, {"amount": 12.3}, 'amount: must be a string such as "12.30"'),
        (2, {"channel": ["cash"]}, "channel: must be a string"),
        (2, {"personal": "Li Wei"}, "personal: must be an object"),
        (2, {"personal": {"name": 5}}, "personal.name.value: must be a string"),
        (0, {"threshold": "2"}, "threshold: must be an integer"),
        (0, {"threshold": 1.5}, "threshold: must be an integer"),
        (0, {"keys": "k"}, "keys: must be a list"),
        (0, {"keys": [1]}, "keys[0]: must be a string"),
        (1, {"period": "2026"}, "period: must be an object"),
        (1, {"period": {"start": 2026, "end": "2027-01-01"}}, "period.start: must be a string"),
        (1, {"target": 100}, 'target: must be a string such as "12.30"'),
        (3, {"payload": "x"}, "payload: must be an object"),
        (3, {"signatures": {}}, "signatures: must be a list"),
        (3, {"signatures": ["k"]}, "signatures[0]: must be an object"),
        (5, {"amount": None}, "amount: must not be null"),
        (5, {"reason": True}, "reason: must be a string"),
    ],
)
def test_a_type_error_names_the_field_and_the_type(make_api, route, change, expected):
    env = make_api()
    url, token, body = post_routes(env)[route]
    with env.unchanged():
        resp = send(env, url, json.dumps({**body, **change}).encode(), token)
        detail = refused(resp, 422)
    assert expected in detail, detail


def test_every_schema_error_is_in_the_detail(make_api):
    env = make_api()
    with env.unchanged():
        detail = refused(send(env, f"/v1/projects/{PROJECT}/donations",
                              json.dumps({"amount": 10, "channel": "fax", "extra": 1}).encode(), "intake"), 422)
    for part in ('amount: must be a string such as "12.30"', "channel: ", "extra: ", "payment_ref: is required",
                 "donor_ref: is required", "value_date: is required"):
        assert part in detail, (part, detail)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"5", b"null"])
def test_a_body_that_is_no_object_says_so(make_api, body):
    env = make_api()
    with env.unchanged():
        assert "the body: must be an object" in refused(send(env, f"/v1/projects/{PROJECT}/donations", body, "intake"), 422)


def test_a_header_error_names_the_header(make_api):
    env = make_api()
    with env.unchanged():
        resp = send(env, f"/v1/projects/{PROJECT}/donations", json.dumps(donation_body()).encode(), "intake",
                    **{"Idempotency-Key": "short"})
        assert "header Idempotency-Key: must be 8-128 letters" in refused(resp, 422)


def test_a_query_error_names_the_parameter(make_api):
    env = make_api()
    assert "query parameter start: must be an integer" in refused(env.client.get("/v1/entries?start=abc"), 422)
