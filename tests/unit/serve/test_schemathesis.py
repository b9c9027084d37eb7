"""Property-based requests generated from the service's own OpenAPI schema: none may get a 5xx.

Runs in-process over ASGI, as an admin (so every endpoint is reached past auth), with a bounded number of
examples per operation so it stays a few seconds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.unit.serve.conftest import build_service

SERVICE = build_service(Path(tempfile.mkdtemp(prefix="answerdesk-schemathesis-")))
schema = schemathesis.openapi.from_asgi("/openapi.json", SERVICE.app)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_allows_gets_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=SERVICE.headers("admin"), checks=[not_a_server_error])
