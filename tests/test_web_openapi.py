"""Schemathesis fuzzes the REST API from its own OpenAPI document, authenticated as an
administrator's API key (the role that may call every operation): no answer is a
server error, every documented answer's status code, content type and body conform to
the document. Then the same with a pos key on the operations it may call."""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web_helpers import add_key, client_for

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
KEYS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_app(tmp_path_factory, demo_ws_path):
    path = tmp_path_factory.mktemp("web-openapi") / "ws"
    shutil.copytree(demo_ws_path, path)
    KEYS["admin"] = add_key(path, "admin", "fuzz")
    with client_for(path) as client:  # runs the app's lifespan
        yield client.app


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", api_app)


def test_the_document_is_served_and_complete(api_app):
    doc = _client(api_app).get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    for path, operations in doc["paths"].items():
        assert path.startswith("/api/v1/"), path
        for method, op in operations.items():
            assert "200" in op["responses"] or "201" in op["responses"], (method, path)
            assert "401" in op["responses"] and "403" in op["responses"], (method, path)


def _client(app):
    """A client of the running app (no second lifespan: that would close its workspace)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app, raise_server_exceptions=False)


def test_api_conforms_to_its_document(api_schema):
    # each operation's cases are drawn by Hypothesis from the document (schemathesis'
    # pytest plugin is not used: its lazy loader does not run on pytest 9)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 5
    headers = {"Authorization": f"Bearer {KEYS['admin']}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()
