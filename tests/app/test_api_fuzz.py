"""Schemathesis against /api/v1/openapi.json, through the Flask app (WSGI, no network): every
operation, as an admin, with a bounded and derandomized number of examples: no server error, and
every answer's status code and body as the document says (status-code and response-schema
conformance)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from sqlalchemy.orm import Session

from tests.factories import add_campaign, add_catalog, add_contacts, add_template

EXAMPLES_PER_OPERATION = (
    6  # in each mode (valid requests, then invalid ones): ~60 s on a loaded 2-core machine
)


def _seed(session: Session) -> None:
    """A little of everything with id 1, the id Hypothesis tries first."""
    contact_ids = add_contacts(session, 3)
    add_catalog(session, contact_ids, n_items=3)
    template = add_template(session)
    add_campaign(session, template.id)
    session.commit()


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.mark.timeout(600)
def test_every_operation_answers_as_documented(app: Flask, api: Any, session: Session) -> None:
    _seed(session)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {api.token}"}
    failures: list[str] = []
    operations = 0

    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _exercise(result.ok(), mode, headers, failures)
        operations += 1

    assert operations >= 80
    assert failures == []


def _exercise(operation: Any, mode: GenerationMode, headers: dict[str, str], failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        where = f"{operation.method.upper()} {case.formatted_path} query={case.query} body={case.body!r}"
        try:  # TESTING propagates a view's exception instead of answering 500
            response = case.call(headers=headers)
        except Exception as exc:
            failures.append(f"{where[:300]} -> {type(exc).__name__}: {str(exc)[:200]}")
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, FailureGroup) as exc:  # a FailureGroup names each failed check
            found = getattr(exc, "exceptions", [exc])
            what = "; ".join(f"{getattr(e, 'title', type(e).__name__)}: {str(e)[:300]}" for e in found)
            failures.append(f"{where[:300]} -> {response.status_code}: {what}")

    call()
