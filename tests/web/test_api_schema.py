"""schemathesis against `/api/openapi.json` with a write token: whatever it sends, no 5xx, and every response
matches the schema (status codes, content types, bodies). Bounded: a few examples per operation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks as openapi_checks

from pulsecheck.storage.db import Database
from tests.conftest import Factory
from tests.web.api_helpers import make_token


@pytest.fixture
def api_schema(app: Any, team: Factory, database: Database, now: datetime) -> Any:
    """The schema as the app serves it, over a team with a submitted review and maria's write token."""
    review = team.review()
    team.complete(review)
    team.fire(review, "submit", "bob")
    app.state.schemathesis_token = make_token(database, now, "maria", "write")
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


def test_the_api_matches_its_schema(api_schema: Any, app: Any) -> None:
    # each operation in turn under hypothesis directly (schemathesis' pytest plugin does not load on this pytest)
    headers = {"Authorization": f"Bearer {app.state.schemathesis_token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
