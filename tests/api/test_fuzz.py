"""The API fuzzed from its own OpenAPI schema: whatever is sent, the answer is never a 5xx.

Cases are generated from the schema the API publishes, then sent through the running
application (lifespan, pool, scope checks and all) as the demo administrator, and once
more without a token. A 4xx with a reason is the right answer to nonsense.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.main import create_app
from tests.fixtures.app import login

schema = schemathesis.openapi.from_dict(create_app().openapi())
PUBLIC = {"/api/v1/auth/token", "/healthz", "/readyz", "/metrics"}


@pytest.fixture
def admin(api, registry):
    """A seeded scope to reach into, and the administrator's headers."""
    registry.area()
    registry.device(registry.school())
    registry.user("fuzz-admin", "province", "420000", role="admin")
    return login(api, "fuzz-admin")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail(case, api, admin):
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs.pop("cookies", None)  # the API reads none
    if isinstance(kwargs.get("data"), bytes | str):  # requests' raw body is the test client's content
        kwargs["content"] = kwargs.pop("data")
    for headers in (admin, {}):
        response = api.request(**{**kwargs, "headers": {**kwargs.get("headers", {}), **headers}})
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
        if not headers and case.path not in PUBLIC:
            assert response.status_code in (400, 401, 404, 405, 422), f"{case.method} {case.path} answered without a token"
