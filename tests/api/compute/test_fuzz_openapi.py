"""Schemathesis against a running cloud, driven by the OpenAPI document the cloud serves.

Every operation of the Compute, Identity, Image and Network APIs gets a fixed number of generated
requests (derandomized: the same ones on every run), as the admin and as a project member; an
operation taking a body also gets bodies the document forbids, as a hostile client sends. Each
response must not be a 5xx and must conform to the document: a documented status code, the
documented content type and body schema. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from harness.api import running_cloud
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Enough to reach each model's required fields and a few malformed variants; the whole run stays
# well under a minute per backend on two cores.
EXAMPLES_PER_OPERATION = 10


def no_server_error_but_nova_501(ctx: Any, response: Any, case: schemathesis.Case[Any]) -> bool | None:
    # Nova answers 501 for what it deliberately does not do (os-certificates other than root):
    # a documented answer (status_code_conformance checks that), not a crash; any other 5xx is.
    if response.status_code == 501:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error_but_nova_501, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _fuzz_operation(operation: Any, mode: GenerationMode, base: str, token: str,
                    answered: set[str]) -> str | None:
    """The first failure of `operation` as `token`'s user, or None; adds the label of an
    operation that answered 2xx at least once to `answered`."""
    session = requests.Session()

    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
                         database=None, phases=[hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base, session=session, headers={"X-Auth-Token": token},
                             timeout=30)
        if response.status_code < 300:
            answered.add(operation.label)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Exception as exc:  # a failed check, with the request that caused it
        return f"{operation.label}: {exc}"
    finally:
        session.close()
    return None


def fuzz(document: dict[str, Any], base: str, tokens: list[str]) -> tuple[list[str], set[str]]:
    """(failures, labels of the operations that answered 2xx at least once)."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    answered: set[str] = set()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the document does not parse: {result.err()}")
            continue
        operation = result.ok()
        # Negative (bodies that violate the document) where there is a body to break: elsewhere it
        # would only vary path strings, which the positive run does already.
        modes = [GenerationMode.POSITIVE]
        if operation.body:
            modes.append(GenerationMode.NEGATIVE)
        for mode, token in itertools.product(modes, tokens):
            failure = _fuzz_operation(operation, mode, base, token, answered)
            if failure:
                failures.append(failure)
                break
    return failures, answered


async def test_no_operation_answers_5xx_or_outside_its_document(tmp_path: Path, db_url: str) -> None:
    async with running_cloud(tmp_path, database={"connection": db_url}) as cloud:
        async with cloud.session.get(f"{cloud.base}/openapi.json") as resp:  # no token: public
            assert resp.status == 200
            document = await resp.json()
        member_token, _ = await cloud.user_token("fuzzed", ("member",))
        # The fuzzer's client blocks: in a thread, while this loop serves the cloud.
        failures, answered = await asyncio.to_thread(fuzz, document, cloud.base,
                                                     [cloud.admin_token, member_token])
    assert failures == [], "\n\n".join(failures)
    # The tokens were taken and the generated requests reached the handlers: most GETs and a
    # good share of the writes succeeded (a run that only met 401 or 400 would prove nothing).
    assert len(answered) > len(document["paths"]) / 2, sorted(answered)
