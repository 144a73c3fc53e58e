"""Fuzz the public API from its own OpenAPI document (schemathesis): no 5xx, responses match the schema."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from geoservice.api.openapi import document

# Built by the same function the service serves, so the document under test is the real one.
schema = schemathesis.openapi.from_dict(document(1.3, 75.0))


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_public_api_never_fails_and_matches_its_schema(case, app) -> None:  # type: ignore[no-untyped-def]
    # Every default check runs (no 5xx, status codes, content types, response schemas, headers, negative data
    # rejected) except "schema-valid data accepted": a valid-looking `at` such as 2026-02-30 or a site id that
    # does not exist is rightly refused, and JSON Schema cannot express calendars or existence.
    case.call_and_validate(app=app, excluded_checks=[positive_data_acceptance])
