"""The API fuzzed from its own OpenAPI document: never a 5xx, and every answer as documented.

Cases are generated from the document the API publishes (positive and negative, strings with
U+0000 and any code point) with the settings in `schemathesis.toml` beside this file: a fixed
seed, `max-examples` per operation (FUZZ_MAX_EXAMPLES overrides it), no deadline, and every
check schemathesis has — no server error, documented status codes, content types, headers and
response bodies, negative data rejected, auth enforced.

Random scope codes and ids almost always answer 404 before any input reaches the database, so
the test seeds one of everything (scopes, a community, devices, an alert, a work order, a target,
a round, a command) and points most well-formed path parameters at them: the bodies and queries then reach
the code that writes. Each case is sent through the running application (lifespan, pool, scope
checks and all) as an administrator, and once more without a token, which must be refused with
a documented status and body.
"""

import os
import re
from pathlib import Path

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from tests.fixtures.app import (
    SEEDED_BOARD,
    SEEDED_COMMAND,
    SEEDED_COMMUNITY,
    SEEDED_RECORDER,
    SEEDED_SCHOOL,
    seed_one_of_everything,
)
from tests.fixtures.factories import PASSWORD

CONFIG = SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
if "FUZZ_MAX_EXAMPLES" in os.environ:
    CONFIG.projects.default.generation.update(max_examples=int(os.environ["FUZZ_MAX_EXAMPLES"]))
APP = create_app()
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)
schema.app = APP  # the probes some checks send (no token, another content type) reach the same application
PUBLIC = {"/api/v1/auth/token"}
ANONYMOUS_REFUSALS = {400, 401, 404, 405, 422}
load_all_checks()
DOCUMENTED = [status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance]

SCOPES = [("province", "420000"), ("city", "421300"), ("county", "421303"), ("school", SEEDED_SCHOOL),
          ("community", SEEDED_COMMUNITY)]
KNOWN = {"device_id": [SEEDED_BOARD, SEEDED_RECORDER], "alert_id": [1], "order_id": [1], "target_id": [1],
         "round_id": [1], "command_id": [SEEDED_COMMAND], "rule_id": ["device_offline", "storage_low"], "username": ["fuzz-viewer"]}
WELL_FORMED = {"level": re.compile(r"province|city|county|school|community"), "code": re.compile(r"[A-Za-z0-9_-]{1,32}"),
               "device_id": re.compile(r"[A-Za-z0-9_-]{3,64}"), "rule_id": re.compile(r"[a-z0-9_]{2,64}"),
               "command_id": re.compile(r"[a-f0-9]{32}"), "username": re.compile(r"[^\x00/]{1,128}")}


def _well_formed(name: str, value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return 1 <= value <= 2**62
    pattern = WELL_FORMED.get(name)
    return isinstance(value, str) and pattern is not None and pattern.fullmatch(value) is not None


@schema.hook("flatmap_path_parameters")
def _point_at_seeded_rows(_context, path_parameters: dict) -> st.SearchStrategy:
    """Three cases in four: the same well-formed parameters, but naming rows that exist."""
    if not path_parameters or not all(_well_formed(k, v) for k, v in path_parameters.items()):
        return st.just(path_parameters)  # a negative case stays as generated
    choices = {k: st.sampled_from(KNOWN[k]) for k in path_parameters if k in KNOWN}
    known = st.fixed_dictionaries({**{k: st.just(v) for k, v in path_parameters.items()}, **choices})
    if "level" in path_parameters:
        known = st.tuples(known, st.sampled_from(SCOPES)).map(lambda t: {**t[0], "level": t[1][0], "code": t[1][1]})
    return st.sampled_from([0, 1, 2, 3]).flatmap(lambda n: st.just(path_parameters) if n == 0 else known)


@pytest.fixture(scope="module", autouse=True)
def _stop_the_application():
    """The application's lifespan starts with the first case and ends with this module."""
    yield
    asgi.shutdown_lifespans()


@pytest.fixture
def admin(db, registry):
    """Everything seeded, and the administrator's headers."""
    seed_one_of_everything(db, registry)
    registry.user("fuzz-admin", "province", "420000", role="admin")
    registry.user("fuzz-viewer", "county", "421303", role="viewer")
    with asgi.get_client(APP) as client:
        r = client.post("/api/v1/auth/token", data={"username": "fuzz-admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@schema.parametrize()
def test_no_request_makes_the_api_fail(case, admin):
    case.call_and_validate(headers=admin)
    anonymous = case.call()
    case.validate_response(anonymous, checks=DOCUMENTED)
    if case.path not in PUBLIC:
        assert anonymous.status_code in ANONYMOUS_REFUSALS, f"{case.method} {case.path} answered without a token"
