"""Route x role matrix, generated from the app's routes: no route escapes authentication or its declared roles.

The matrix itself (the callers, the parameters, what each must get) lives in `onshore.sim.robustness.matrix`,
where `bench/robustness.py` runs it too: every route of the app is walked, its roles read from its auth
dependency; a route that declares none fails unless it is listed in ``PUBLIC`` on purpose. For every route and
every kind of token the roles it admits are never refused for auth reasons, every other caller gets exactly 401
or 403, and nobody gets a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from onshore.auth import Role
from onshore.sim.robustness.matrix import World, check_matrix, open_world, operations


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("route-roles")) as built:
        yield built


def test_every_route_answers_every_kind_of_token_as_it_declares(world: World) -> None:
    guarded = [op for op in operations(world.app) if op[2] is not None]
    assert len(guarded) >= 28, [f"{m} {p}" for m, p, _ in guarded]  # the API's guarded operations: none lost
    checked, failures = check_matrix(world)
    assert checked >= 29 * 20
    assert not failures, "\n".join(failures)


def test_a_route_that_declares_no_roles_fails_the_matrix() -> None:
    app = FastAPI()

    @app.get("/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(AssertionError, match="route /v1/forgotten declares no roles"):
        operations(app)


def test_the_openapi_document_lists_each_operation_s_roles(world: World) -> None:
    paths = world.app.openapi()["paths"]
    for method, path, guard in operations(world.app):
        if guard is None:
            continue
        operation = paths[path][method.lower()]
        assert operation["x-onshore-roles"] == [r.value for r in guard.roles], f"{method} {path}"
        assert operation.get("x-onshore-region-param") == guard.region_param, f"{method} {path}"


def _body_properties(schema: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    body = content.get("schema", {})
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    return set(body.get("properties", {}))


def test_a_route_that_names_a_region_or_a_subject_binds_it(world: World) -> None:
    """The matrix trusts each route's declaration; this keeps the declaration honest: a route an analyst may call
    that names a region (path, query or JSON body) binds the analyst to it, and a route a subject may call that
    names a subject binds the subject to themselves."""
    schema = world.app.openapi()
    for method, path, guard in operations(world.app):
        if guard is None:
            continue
        operation = schema["paths"][path][method.lower()]
        names = {p["name"] for p in operation.get("parameters", [])} | _body_properties(schema, operation)
        if Role.ANALYST in guard.roles and "region" in names:
            assert guard.region_param == "region", f"{method} {path} names a region but does not bind analysts to it"
        if Role.SUBJECT in guard.roles and "subject_ref" in names:
            assert guard.subject_param == "subject_ref", f"{method} {path} names a subject but does not bind it"
