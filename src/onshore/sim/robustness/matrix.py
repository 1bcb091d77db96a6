"""The route x role matrix, generated from the app's routes: no route escapes authentication or its roles.

Every route of the app is walked (``served_routes``); its roles are read from its auth dependency
(``guard_of``). A route that declares none fails unless it is listed in ``PUBLIC`` on purpose. For every route
and every kind of token (`CALLERS`): the roles it admits are never refused for auth reasons, every other caller
gets exactly 401 (no, unknown, malformed or revoked token) or 403 (wrong role, an analyst outside their region,
a subject naming someone else), and nobody gets a 5xx. `tests/web/test_route_roles.py` and
`bench/robustness.py` run it; the route fuzzer (`onshore.sim.robustness.routes`) sends its requests with the
callers of the `World` built here.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from onshore.auth import Role
from onshore.config import load_settings
from onshore.runtime import Runtime
from onshore.web.app import create_app
from onshore.web.auth import RoleGuard, guard_of, is_api_route, served_routes
from onshore.workspace import init_workspace

# Synthetic VINs (ISO 3779 alphabet, no real vehicle): the matrix's registered and revoked vehicles.
VIN = "LSVM0TEST00000001"
REVOKED_VIN = "LSVM0TEST00000002"
# Public on purpose: liveness and the API's own description. Anything else must declare its roles.
PUBLIC = frozenset({"/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# The docs page's own Swagger UI files, served from the package (web/docs.py): no data behind them.
# The dashboard's login and logout: they take a token (or clear the cookie) themselves (dashboard/session.py).
PUBLIC |= {"/desk/login", "/desk/logout"}
# The docs page's Swagger UI files and the dashboard's CSS and JS, served from the package: no data behind them.
PUBLIC_MOUNTS = frozenset({"/static/swagger-ui", "/desk/static"})
# A value for each path and required query parameter the routes name (a new name must be added here, on purpose).
PARAMS = {
    "region": "cn",
    "vehicle_ref": "0" * 32,
    "msg_id": "m-route-roles",
    "receipt_id": "0" * 32,
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
    """An app over a fresh workspace, and the headers of every kind of caller."""

    app: FastAPI
    client: TestClient
    runtime: Runtime
    folder: Path
    headers: dict[str, Callable[[], dict[str, str]]]
    subject_ref: dict[str, str]  # the subject ref the last subject token minted belongs to

    def caller_for(self, guard: RoleGuard | None) -> Caller:
        """The first caller of `CALLERS` that ``guard`` admits (any caller for a public route)."""
        return next(c for c in CALLERS if allowed(c, guard))


@contextlib.contextmanager
def open_world(folder: Path) -> Iterator[World]:
    """A workspace in ``folder`` with a vehicle, a revoked vehicle, subjects (one erased) and every API token;
    vehicle rate limits are lifted so that thousands of requests fit in a run."""
    config, issued = init_workspace(folder)
    settings = load_settings(config, env={}, overrides={"limits": {"vehicle_rate_per_s": 1e6, "vehicle_burst": 10**6}})
    runtime = Runtime(settings, create=True)
    api = {t.name: t.token for t in issued}
    vehicle = runtime.vehicles.add(VIN, "CN").token
    revoked = runtime.vehicles.add(REVOKED_VIN, "CN").token
    runtime.vehicles.revoke(REVOKED_VIN, "CN")
    other_ref, _other = runtime.subjects.bind(VIN, "CN", "owner")
    erased_ref, erased = runtime.subjects.bind(VIN, "CN", "passenger")
    runtime.requests.erase(erased_ref, actor_role="officer")
    subject_ref: dict[str, str] = {"other": other_ref}
    minted = iter(range(10**9))

    def fresh_subject() -> dict[str, str]:
        # A subject of its own for each request: a subject's erasure of themselves must not spoil the next case.
        ref, token = runtime.subjects.bind(VIN, "CN", "driver", profile=f"rr-{next(minted)}")
        subject_ref["self"] = ref
        return bearer(token or "")

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def const(value: dict[str, str]) -> Callable[[], dict[str, str]]:
        return lambda: value

    headers: dict[str, Callable[[], dict[str, str]]] = {
        "vehicle": const(bearer(vehicle)),
        "subject": fresh_subject,
        "subject naming another subject": fresh_subject,
        "officer": const(bearer(api["officer"])),
        "auditor": const(bearer(api["auditor"])),
        "gateway": const(bearer(api["gateway"])),
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
            yield World(app, client, runtime, folder, headers, subject_ref)
    finally:
        runtime.close()


def operations(app: FastAPI) -> list[tuple[str, str, RoleGuard | None]]:
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


def allowed(caller: Caller, guard: RoleGuard | None) -> bool:
    """Whether ``guard`` admits ``caller`` (for the matrix's region and subject parameters)."""
    if guard is None:
        return True
    if caller.role is None or caller.role not in guard.roles:
        return False
    if guard.region_param is not None and caller.role is Role.ANALYST and caller.region != PARAMS["region"]:
        return False
    return not (guard.subject_param is not None and caller.other_subject)


def path_values(world: World, caller: Caller, *, own_subject: str | None = None) -> dict[str, str]:
    """The values of `PARAMS`, and the subject ref ``caller`` names (its own, another's, or nobody's).

    ``own_subject`` stands for the caller's own subject ref where it is not minted yet (a placeholder)."""
    values = dict(PARAMS)
    if caller.role is Role.SUBJECT:
        own = own_subject if own_subject is not None else world.subject_ref["self"]
        values["subject_ref"] = world.subject_ref["other"] if caller.other_subject else own
    else:
        values["subject_ref"] = NOBODY
    return values


def request_for(world: World, method: str, path: str, caller: Caller) -> dict[str, Any]:
    """The request for ``method path`` by ``caller``: every parameter the OpenAPI document names, filled."""
    headers = world.headers[caller.kind]()
    operation = world.app.openapi()["paths"].get(path, {}).get(method.lower(), {})
    values = path_values(world, caller)
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


def check_matrix(world: World) -> tuple[int, list[str]]:
    """Send every kind of caller to every route; returns (pairs checked, what went wrong)."""
    failures: list[str] = []
    checked = 0
    for method, path, guard in operations(world.app):
        for caller in CALLERS:
            checked += 1
            response = world.client.request(**request_for(world, method, path, caller))
            status, where = response.status_code, f"{method} {path} by {caller.kind}: {response.status_code}"
            is_json = response.headers.get("content-type") == "application/json"
            error = response.json().get("error", {}) if is_json else {}
            if status >= 500:
                failures.append(f"{where} (a server error) {response.text[:200]}")
            elif allowed(caller, guard):
                if status == 401 or (status == 403 and error.get("code") == "forbidden"):
                    failures.append(f"{where}, refused although it declares {guard} {response.text[:200]}")
            elif caller.role is None:
                if (status, error.get("code")) != (401, "unauthenticated"):
                    failures.append(f"{where}, expected 401 unauthenticated {response.text[:200]}")
            elif (status, error.get("code")) != (403, "forbidden"):
                failures.append(f"{where}, expected 403 forbidden {response.text[:200]}")
    return checked, failures
