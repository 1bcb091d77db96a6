"""Route x role matrix, generated from the app's routes: no route escapes authentication or its declared roles.

Every route of the app is walked (``app.routes``); its roles are read from its auth dependency (``guard_of``).
A route that declares none fails the test unless it is listed in ``PUBLIC`` on purpose. For every route and every
kind of token: the roles it admits are never refused for auth reasons, every other caller gets exactly 401 (no,
unknown, malformed or revoked token) or 403 (wrong role, an analyst outside their region, a subject naming someone
else), and nobody gets a 5xx.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from onshore.auth import Role
from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.web.app import create_app
from onshore.web.auth import RoleGuard, guard_of, is_api_route, served_routes
from onshore.workspace import init_workspace
from tests.conftest import CN_VIN, CN_VIN_2

# Public on purpose: liveness and the API's own description. Anything else must declare its roles.
PUBLIC = frozenset({"/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# The dashboard's login and logout: they take a token (or clear the cookie) themselves (dashboard/session.py).
PUBLIC |= {"/desk/login", "/desk/logout"}
# The docs page's Swagger UI files and the dashboard's CSS and JS, served from the package: no data behind them.
PUBLIC_MOUNTS = frozenset({"/static/swagger-ui", "/desk/static"})
# A value for each path and required query parameter the routes name (a new name must be added here, on purpose).
PARAMS = {
    "region": "cn",
    "vehicle_ref": "0" * 32,
    "msg_id": "m-route-roles",
    "basis_id": "rr-basis-none",
    "transfer_id": "xf-" + "0" * 20,
    "name": "data.csv",
    "purpose": "analytics",
    "camera": "front",
    "ts": "1",
    "index": "0",
    "size": "1",
    "from": "1",
    "to": "1",
    "register": "incident",
    "entry_id": "999999",
}
NOBODY = "s-nobody-route-roles"  # the subject an officer names: nobody, so that no request erases anyone


@dataclass(frozen=True)
class Caller:
    """A kind of token: what it is, the principal's role and region when it authenticates, else None (401)."""

    kind: str
    role: Role | None
    region: str | None = None
    other_subject: bool = False  # a subject token naming another subject in the path


CALLERS = [
    Caller("vehicle", Role.VEHICLE, "cn"),
    Caller("gateway", Role.GATEWAY),
    Caller("subject", Role.SUBJECT),
    Caller("subject naming another subject", Role.SUBJECT, other_subject=True),
    Caller("officer", Role.OFFICER),
    Caller("auditor", Role.AUDITOR),
    Caller("monitor", Role.MONITOR),
    Caller("analyst of cn", Role.ANALYST, "cn"),
    Caller("analyst of eu", Role.ANALYST, "eu"),
    Caller("revoked vehicle", None),
    Caller("erased subject", None),
    Caller("unknown api token", None),
    Caller("unknown vehicle token", None),
    Caller("vehicle token of an unknown region", None),
    Caller("unknown subject token", None),
    Caller("officer token with a character more", None),
    Caller("no token", None),
    Caller("malformed: no scheme", None),
    Caller("malformed: basic scheme", None),
    Caller("malformed: bearer without token", None),
    Caller("malformed: bearer with blanks", None),
    Caller("malformed: 8 KB token", None),
]


@dataclass
class World:
    app: FastAPI
    client: TestClient
    headers: dict[str, Callable[[], dict[str, str]]]
    subject_ref: dict[str, str]  # the subject ref the last subject token minted belongs to


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("route-roles")
    config, issued = init_workspace(folder)
    settings = load_settings(config, env={}, overrides={"limits": {"vehicle_rate_per_s": 1e6, "vehicle_burst": 10**6}})
    runtime = Runtime(settings, create=True)
    api = {t.name: t.token for t in issued}
    vehicle = runtime.vehicles.add(CN_VIN, "CN").token
    revoked = runtime.vehicles.add(CN_VIN_2, "CN").token
    runtime.vehicles.revoke(CN_VIN_2, "CN")
    other_ref, other = runtime.subjects.bind(CN_VIN, "CN", "owner")
    erased_ref, erased = runtime.subjects.bind(CN_VIN, "CN", "passenger")
    runtime.requests.erase(erased_ref, actor_role="officer")
    subject_ref: dict[str, str] = {"other": other_ref}
    minted = iter(range(10**6))

    def fresh_subject() -> dict[str, str]:
        # A subject of its own for each request: a subject's erasure of themselves must not spoil the next case.
        ref, token = runtime.subjects.bind(CN_VIN, "CN", "driver", profile=f"rr-{next(minted)}")
        subject_ref["self"] = ref
        return bearer(token or "")

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def const(value: dict[str, str]) -> Callable[[], dict[str, str]]:
        return lambda: value

    headers: dict[str, Callable[[], dict[str, str]]] = {
        "vehicle": const(bearer(vehicle)),
        "gateway": const(bearer(api["gateway"])),
        "subject": fresh_subject,
        "subject naming another subject": fresh_subject,
        "officer": const(bearer(api["officer"])),
        "auditor": const(bearer(api["auditor"])),
        "monitor": const(bearer(api["monitor"])),
        "analyst of cn": const(bearer(api["analyst-cn"])),
        "analyst of eu": const(bearer(api["analyst-eu"])),
        "revoked vehicle": const(bearer(revoked)),
        "erased subject": const(bearer(erased or "")),
        "unknown api token": const(bearer("ons_" + secrets.token_urlsafe(24))),
        "unknown vehicle token": const(bearer("onv_cn_" + secrets.token_urlsafe(24))),
        "vehicle token of an unknown region": const(bearer("onv_mars_" + secrets.token_urlsafe(24))),
        "unknown subject token": const(bearer("ons_sub_" + secrets.token_urlsafe(24))),
        "officer token with a character more": const(bearer(api["officer"] + "x")),
        "no token": const({}),
        "malformed: no scheme": const({"Authorization": api["officer"]}),
        "malformed: basic scheme": const({"Authorization": "Basic b2ZmaWNlcjpzZWNyZXQ="}),
        "malformed: bearer without token": const({"Authorization": "Bearer"}),
        "malformed: bearer with blanks": const({"Authorization": "Bearer     "}),
        "malformed: 8 KB token": const(bearer("ons_" + "A" * 8192)),
    }
    assert set(headers) == {c.kind for c in CALLERS}
    try:
        app = create_app(runtime)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield World(app, client, headers, subject_ref)
    finally:
        runtime.close()


def _operations(app: FastAPI) -> list[tuple[str, str, RoleGuard | None]]:
    """(method, path, guard) for every route and method of the app; fails for a route that declares no roles."""
    out: list[tuple[str, str, RoleGuard | None]] = []
    for route in served_routes(app):  # app.routes, with included routers flattened
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        assert isinstance(path, str), f"a route without a path: {route!r}"
        if not is_api_route(route) and path.rsplit("/{path}", 1)[0] in PUBLIC_MOUNTS:
            continue  # static files (checked by tests/web/test_docs_offline.py)
        assert is_api_route(route) or path in PUBLIC, f"{path} is no API route: list it in PUBLIC or make it one"
        guard = guard_of(route)
        if path in PUBLIC:
            assert guard is None, f"{path} is listed as public but declares roles {guard}"
        else:
            assert guard is not None, f"route {path} declares no roles: add a require(...) dependency (or PUBLIC)"
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method not in ("HEAD", "OPTIONS"):
                out.append((method, path, guard))
    return out


def _allowed(caller: Caller, guard: RoleGuard | None) -> bool:
    if guard is None:
        return True
    if caller.role is None or caller.role not in guard.roles:
        return False
    if guard.region_param is not None and caller.role is Role.ANALYST and caller.region != PARAMS["region"]:
        return False
    return not (guard.subject_param is not None and caller.other_subject)


def _request(world: World, method: str, path: str, caller: Caller) -> dict[str, Any]:
    """The request for ``method path`` by ``caller``: every parameter the OpenAPI document names, filled."""
    headers = world.headers[caller.kind]()
    operation = world.app.openapi()["paths"].get(path, {}).get(method.lower(), {})
    values = dict(PARAMS)
    if caller.role is Role.SUBJECT:
        values["subject_ref"] = world.subject_ref["other" if caller.other_subject else "self"]
    else:
        values["subject_ref"] = NOBODY
    url, query = path, {}
    for param in operation.get("parameters", []):
        name = param["name"]
        if param["in"] == "path":
            assert name in values, f"{method} {path}: add a value for the path parameter {name!r} to PARAMS"
            url = url.replace("{" + name + "}", values[name])
        elif param["in"] == "query" and param.get("required"):
            assert name in values, f"{method} {path}: add a value for the query parameter {name!r} to PARAMS"
            query[name] = values[name]
    assert "{" not in url, f"{method} {path}: add a value for its path parameters to PARAMS"
    body = operation.get("requestBody", {}).get("content", {})
    # Any JSON body names the region: a region-bound route must check the body's region too.
    json = {"region": PARAMS["region"]} if "application/json" in body else None
    return {"method": method, "url": url, "params": query, "json": json, "headers": headers}


def test_every_route_answers_every_kind_of_token_as_it_declares(world: World) -> None:
    operations = _operations(world.app)
    guarded = [op for op in operations if op[2] is not None]
    assert len(guarded) >= 28, [f"{m} {p}" for m, p, _ in guarded]  # the API's 28 guarded operations: none lost
    failures: list[str] = []
    for method, path, guard in operations:
        for caller in CALLERS:
            response = world.client.request(**_request(world, method, path, caller))
            status, where = response.status_code, f"{method} {path} by {caller.kind}: {response.status_code}"
            is_json = response.headers.get("content-type") == "application/json"
            error = response.json().get("error", {}) if is_json else {}
            if status >= 500:
                failures.append(f"{where} (a server error) {response.text[:200]}")
            elif _allowed(caller, guard):
                if status == 401 or (status == 403 and error.get("code") == "forbidden"):
                    failures.append(f"{where}, refused although it declares {guard} {response.text[:200]}")
            elif caller.role is None:
                if (status, error.get("code")) != (401, "unauthenticated"):
                    failures.append(f"{where}, expected 401 unauthenticated {response.text[:200]}")
            elif (status, error.get("code")) != (403, "forbidden"):
                failures.append(f"{where}, expected 403 forbidden {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_a_route_that_declares_no_roles_fails_the_matrix() -> None:
    app = FastAPI()

    @app.get("/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(AssertionError, match="route /v1/forgotten declares no roles"):
        _operations(app)


def test_the_openapi_document_lists_each_operation_s_roles(world: World) -> None:
    paths = world.app.openapi()["paths"]
    for method, path, guard in _operations(world.app):
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
    for method, path, guard in _operations(world.app):
        if guard is None:
            continue
        operation = schema["paths"][path][method.lower()]
        names = {p["name"] for p in operation.get("parameters", [])} | _body_properties(schema, operation)
        if Role.ANALYST in guard.roles and "region" in names:
            assert guard.region_param == "region", f"{method} {path} names a region but does not bind analysts to it"
        if Role.SUBJECT in guard.roles and "subject_ref" in names:
            assert guard.subject_param == "subject_ref", f"{method} {path} names a subject but does not bind it"
