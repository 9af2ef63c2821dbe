"""Schemathesis against each running service's own OpenAPI (issue 8: bounded inputs).

Zero 5xx and zero responses that break their declared schema, over generated valid and
invalid input. The suite runs FUZZ_EXAMPLES examples per operation (default 5 here;
`make fuzz` runs 500). Direct to each service's port: the gateway does not route
/openapi.json. Requests carry the app credential (issue 15: every public route needs one),
so user routes run for real and admin operations stop at their 403 (a generated cleanup must
never delete the models the other end-to-end tests use). Every path also answers a method it
does not declare with 405 and an Allow header naming the declared ones.
"""

from __future__ import annotations

import os
import re

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from musicspace_shared.registry import names
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.mariadb, pytest.mark.fuzz]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
# Errors are application/problem+json, and the shared app factory documents them so.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


# The demo users (small ids) serve the other end-to-end tests: a generated DELETE or library
# replace must never erase them, so valid small ids in user paths are moved out of their range.
FUZZ_USER_OFFSET = 5 * 10**11


def _spare_demo_users(case: schemathesis.Case) -> None:
    params = case.path_parameters or {}
    raw = params.get("user_id")
    if "/api/users/" not in case.path or isinstance(raw, bool):
        return
    text = str(raw) if isinstance(raw, int | str) else ""
    if re.fullmatch(r"[1-9][0-9]{0,5}", text):  # a valid demo-range id, as a number or text
        params["user_id"] = type(raw)(int(text) + FUZZ_USER_OFFSET)


@pytest.mark.parametrize("service", names())
def test_openapi_fuzz_gives_no_server_errors_or_schema_violations(
    stack: Stack, service: str
) -> None:
    stack.require(service)
    base_url = stack.services[service].url
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        def check(case: schemathesis.Case) -> None:
            _spare_demo_users(case)
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60, headers=stack.app)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, report together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations > 3, f"{service} publishes too few operations"
    assert failures == [], "\n\n".join(failures)


@pytest.mark.parametrize("service", names())
def test_undeclared_methods_answer_405_with_allow(stack: Stack, service: str) -> None:
    """schemathesis's unsupported_method check, for every path of the service's schema."""
    stack.require(service)
    base_url = stack.services[service].url
    paths = httpx.get(base_url + "/openapi.json", timeout=30).json()["paths"]
    failures = []
    for template, item in paths.items():
        path = template.replace("{user_id}", "1").replace("{track_id}", "t1")
        declared = {method.upper() for method in item} | ({"HEAD"} if "get" in item else set())
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - declared):
            response = httpx.request(method, base_url + path, headers=stack.app, timeout=30)
            allow = set(response.headers.get("allow", "").split(", "))
            if response.status_code != 405 or allow != declared:
                failures.append(f"{method} {path}: {response.status_code} Allow={allow}")
    assert failures == []
