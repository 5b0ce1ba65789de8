"""The app against its own OpenAPI document, over real HTTP: schemathesis generates requests from the document
that the app serves (valid ones, and in negative mode invalid ones) and checks each answer against it. A
schema-valid request must be accepted, a schema-violating one rejected, and every response must fit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.servers import running_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
EXAMPLES = int(os.environ.get("FAULTLAB_CONTRACT_EXAMPLES", "150"))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_app_keeps_its_own_document(tmp_path: Path, mode: GenerationMode) -> None:
    with running_app(tmp_path, f"sqlite:///{tmp_path / 'todos.db'}") as (base, _proc):
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=schema.as_strategy(mode))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        check()
