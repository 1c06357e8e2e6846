"""Fuzz every operation of the server's OpenAPI schema (schemathesis, bounded): whatever a
client sends with a valid key, the server never answers 5xx."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from serverproc import make_app  # noqa: E402

pytestmark = pytest.mark.slow
KEYS: dict = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    app, key = make_app(tmp_path_factory.mktemp("fuzz"))
    KEYS["admin"] = key
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_server_errors(api_schema):
    """Each operation in turn, a bounded number of generated requests each."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        fuzz(operation)


def fuzz(operation) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def no_server_error(case):
        response = case.call(headers={"Authorization": f"Bearer {KEYS['admin']}"})
        assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                            response.text[:500])

    no_server_error()
