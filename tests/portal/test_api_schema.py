"""The API keeps the promises of its OpenAPI file, for every role: Schemathesis generates
requests from ``/api/v1/openapi.json`` (valid ones and broken ones) and checks each answer:
never a 5xx, the status codes, content types and bodies the file describes.

Examples are bounded so the suite stays quick; each role gets its own run, since what an
answer holds depends on who asks. (Schemathesis's own pytest loader does not run under
pytest 9, hence one Hypothesis test per operation, made here.)
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import negative_data_rejection
from schemathesis.checks import positive_data_acceptance as not_only_shapes
from schemathesis.generation import GenerationMode

from tests.conftest import PASSWORD


@pytest.fixture
def token_of(client: Any, make_user: Any, make_partner: Any, make_lead: Any,
             session: Any) -> Any:
    """``token_of(role)``: the bearer header of a new user of ``role``, in a world with a
    product line, a dealer holding a lead, and a distributor with a dealer."""
    dealer = make_partner("SD1", territories=["zip:50401"])
    distributor = make_partner("SX1", kind="distributor", territories=["zip:70701"])
    make_partner("SX1A", parent_id=distributor.id, territories=["zip:70701"])
    make_lead(postal_code="50401")

    def token(role: str) -> dict[str, str]:
        user = {"manager": lambda: make_user("manager"),
                "dealer": lambda: make_user("partner", partner=dealer),
                "distributor": lambda: make_user("partner", partner=distributor)}[role]()
        session.commit()
        answer = client.post("/api/v1/tokens",
                             json={"email": user.email, "password": PASSWORD})
        assert answer.status_code == 201
        return {"Authorization": f"Bearer {answer.get_json()['token']}"}

    return token


BOUNDED = settings(max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", 15)), deadline=None,
                   derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.filter_too_much])


#: requests the file allows, then ones it does not, and the checks each is held to. Not
#: checked: that every request the file allows is taken (the file gives the shapes; what
#: the values mean, a real ZIP or a known product line, is the capture's to refuse with a
#: 422, as the file says), nor that every request it does not allow is refused (a query
#: parameter the API does not know is ignored, as HTTP APIs do).
MODES = {GenerationMode.POSITIVE: [not_only_shapes],
         GenerationMode.NEGATIVE: [not_only_shapes, negative_data_rejection]}


def _keeps_its_file(app: Flask, headers: dict[str, str]) -> int:
    """Every operation of the file, with generated requests; the number tried."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, unchecked in MODES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @BOUNDED
            def answers_as_described(case: Any) -> None:
                case.call_and_validate(headers=headers, excluded_checks=unchecked)  # noqa: B023 - run at once, in this iteration

            answers_as_described()
        operations += 1
    return operations


@pytest.mark.parametrize("role", ["manager", "dealer", "distributor"])
def test_the_api_keeps_its_openapi_file(app: Flask, token_of: Any, role: str) -> None:
    assert _keeps_its_file(app, token_of(role)) >= 7
