"""The OpenAPI contract says exactly what the server accepts (issue 9, section 2).

Path parameters carry the core's own rules as their ``pattern``, and routing
takes exactly the ids the core takes, so a URL the contract rules out is a
404 problem; bodies carry the core's limits; and every operation documents
the problems it can answer.  ``tests/test_schemathesis.py`` fuzzes the same
contract against the server.
"""

from __future__ import annotations

import pytest
from api_helpers import assert_problem, make_api  # noqa: F401  (make_api is a fixture)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from api import create_app
from ledger.charity.kinds import ID_PATTERN, MAX_KEYS, ident
from ledger.charity.money import CURRENCIES
from ledger.errors import InvalidEntry
from ledger.log.canonical import INT_MAX
from ledger.log.fields import HEX64, is_hex64

# SQLite only: the OpenAPI contract of the edge, the same whatever the storage.
pytestmark = pytest.mark.sqlite_only('the OpenAPI contract of the edge, the same whatever the storage')

APP = create_app({"INSTANCE": "/nonexistent/luodi-contract-only", "RATELIMIT_ENABLED": False})
with APP.test_client() as _client:
    CONTRACT = _client.get("/openapi.json").get_json()
OPERATIONS = [
    (method, path, op)
    for path, ops in CONTRACT["paths"].items()
    for method, op in ops.items()
    if method in ("get", "post", "put", "patch", "delete")
]
RULES = {"project_id": ID_PATTERN, "charity_id": ID_PATTERN, "leaf_hash": HEX64}


def path_parameters(path: str) -> list[dict]:
    return [p for p in CONTRACT["paths"][path].get("parameters", []) if p["in"] == "path"]


@pytest.mark.parametrize("path", [p for p in CONTRACT["paths"] if "{" in p])
def test_every_path_parameter_carries_the_core_rule(path):
    params = path_parameters(path)
    assert params, path
    for param in params:
        schema = param["schema"]
        if param["name"] == "seq":
            assert schema == {"type": "integer", "minimum": 0, "maximum": INT_MAX}
        else:
            assert schema["type"] == "string"
            assert schema["pattern"] == f"^{RULES[param['name']].pattern}$", (path, param)


def routed(url: str) -> bool:
    """Whether some route's path takes ``url`` (whatever its methods)."""
    try:
        APP.url_map.bind("luodi.test").match(url, method="GET")
    except (NotFound, RequestRedirect):  # an empty id: "/v1/projects/" is the list's URL
        return False
    except MethodNotAllowed:
        return True
    return True


def core_takes_id(value: str) -> bool:
    try:
        ident(value, "$.project")
    except InvalidEntry:
        return False
    return True


ID_TEXT = st.text(alphabet="abz09-_.A ~é\n", max_size=70)


@given(st.one_of(ID_TEXT, st.from_regex(ID_PATTERN, fullmatch=True)))
@example("a-")
@example("-a")
@example("a" * 64)
@example("a" * 65)
@example("x\n")
@settings(max_examples=200, deadline=None)
def test_routing_takes_exactly_the_ids_the_core_takes(value):
    assert routed(f"/v1/projects/{value}") == core_takes_id(value), value
    assert routed(f"/v1/charities/{value}/key-rotations") == core_takes_id(value), value
    assert routed(f"/v1/projects/{value}/entries") == core_takes_id(value), value


@given(st.one_of(st.text(alphabet="0123456789abcdefABCDEFg\n", min_size=62, max_size=66),
                 st.from_regex(HEX64, fullmatch=True)))
@example("A" * 64)
@example("a" * 64 + "\n")
@settings(max_examples=200, deadline=None)
def test_routing_takes_exactly_the_receipt_hashes_the_core_takes(value):
    assert routed(f"/v1/receipts/{value}") == is_hex64(value), value


@pytest.mark.parametrize("url", ["/v1/projects/Hope", "/v1/projects/a--", "/v1/receipts/ABC",
                                 "/v1/projects/" + "a" * 65 + "/entries", "/v1/entries/9007199254740992"])
def test_a_url_the_contract_rules_out_is_a_404_problem_that_says_the_rule(make_api, url):
    env = make_api()
    detail = assert_problem(env.client.get(url, headers=env.auth("admin")), 404, "not-found")["detail"]
    assert "lowercase" in detail


def test_bodies_carry_the_core_limits():
    schemas = CONTRACT["components"]["schemas"]
    charity = schemas["CharityIn"]["properties"]
    assert charity["charity"]["pattern"] == f"^{ID_PATTERN.pattern}$"
    assert (charity["threshold"]["minimum"], charity["threshold"]["maximum"]) == (1, MAX_KEYS)
    assert (charity["keys"]["minItems"], charity["keys"]["maxItems"]) == (1, MAX_KEYS)
    project = schemas["ProjectIn"]["properties"]
    assert project["project"]["pattern"] == project["charity"]["pattern"] == f"^{ID_PATTERN.pattern}$"
    assert set(project["currency"]["enum"]) == set(CURRENCIES)
    assert schemas["SignedIn"]["properties"]["signatures"]["maxItems"] == MAX_KEYS
    for name in ("CharityIn", "ProjectIn", "DonationIn", "SignedIn", "RefundIn", "ClosureIn", "Period", "Signature"):
        assert schemas[name]["additionalProperties"] is False, name


def problems_of(method: str, path: str, op: dict) -> set[str]:
    """The problem statuses an operation can answer, from what it reads."""
    expected = set()
    if "{" in path:
        expected.add("404")
    if "requestBody" in op:
        expected |= {"400", "413", "415", "422"}
    if op.get("security"):
        expected |= {"401", "403"}
    if method in ("post", "delete"):
        expected |= {"429", "503"}
    return expected


EXPECTING = [(m, p, op) for m, p, op in OPERATIONS if problems_of(m, p, op)]


@pytest.mark.parametrize("method, path, op", EXPECTING, ids=[f"{m} {p}" for m, p, _ in EXPECTING])
def test_every_operation_documents_the_problems_it_can_answer(method, path, op):
    expected = problems_of(method, path, op)
    documented = set(op["responses"])
    assert expected <= documented, (method, path, sorted(expected - documented))
    for status in expected:
        ref = op["responses"][status]["$ref"].rsplit("/", 1)[1]
        content = CONTRACT["components"]["responses"][ref]["content"]
        assert list(content) == ["application/problem+json"], (status, content)
