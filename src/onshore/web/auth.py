"""The HTTP binding of :mod:`onshore.auth`: route auth as a typed FastAPI dependency.

A route names the roles it admits once, in its signature::

    @router.get("/v1/stats")
    def stats(principal: OfficerOrAuditor) -> ...

    Reader = Annotated[Principal, Depends(require(Role.ANALYST, Role.OFFICER, region_param="region"))]

The dependency authenticates the bearer token (401), checks the role (403), and, where the route names a region
or a subject parameter, that an analyst stays in their region and a subject speaks for themselves only (403).
It runs before the route's parameters and body are validated, so a caller without the right token learns
nothing about them. Each dependency carries its declaration (:func:`guard_of` finds it on a route): the route x
role test reads it there, and the OpenAPI document lists it per operation (``x-onshore-roles``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

try:
    from fastapi.routing import iter_route_contexts as _iter_route_contexts
except ImportError:  # FastAPI before 0.16x
    _iter_route_contexts = None  # type: ignore[assignment]

from onshore.auth import Authenticator, Principal, Role, VehiclePrincipal
from onshore.errors import AuthError

__all__ = [
    "AnalystOrOfficer",
    "Officer",
    "OfficerOrAuditor",
    "RoleGuard",
    "SubjectCaller",
    "VehicleCaller",
    "document_roles",
    "guard_of",
    "is_api_route",
    "require",
    "served_routes",
]


class RoleGuard:
    """A FastAPI dependency that answers the request's :class:`Principal` once it is allowed.

    Attributes:
        roles: the roles the route admits.
        region_param: the parameter naming the region an analyst must be bound to (path, query, or a top-level
            field of the JSON body, looked up in that order), or None.
        subject_param: the path parameter naming the subject a subject token must be, or None.
        basic: whether HTTP Basic credentials (the token as the password) are taken besides a bearer token.
        cookie: the name of a cookie that may hold the token when no Authorization header is sent (the
            dashboard's pages), or None. A request authenticated by it has ``request.state.by_cookie`` set, so
            that its forms check their CSRF token.
    """

    def __init__(
        self,
        roles: tuple[Role, ...],
        region_param: str | None,
        subject_param: str | None,
        basic: bool = False,
        cookie: str | None = None,
    ) -> None:
        if not roles:
            raise ValueError("a route must admit at least one role")
        self.roles = roles
        self.region_param = region_param
        self.subject_param = subject_param
        self.basic = basic
        self.cookie = cookie

    def __repr__(self) -> str:
        return f"require({', '.join(r.value for r in self.roles)}, region_param={self.region_param!r})"

    async def __call__(self, request: Request) -> Principal:
        auth: Authenticator = request.app.state.auth
        header = request.headers.get("authorization")
        request.state.by_cookie = False
        if header is None and self.cookie is not None and (held := request.cookies.get(self.cookie)):
            header, request.state.by_cookie = f"Bearer {held}", True
        # A token lookup reads a store: off the event loop, like the route's own work.
        principal = await run_in_threadpool(auth.authenticate_bearer, header, basic=self.basic)
        principal.require(*self.roles)
        if self.region_param is not None and principal.region_bound:
            region = await _named(request, self.region_param)
            if isinstance(region, str):  # absent or not text: the route's validation refuses the request (422)
                auth.require_region(principal, region)
        if self.subject_param is not None:
            principal.require_subject(request.path_params.get(self.subject_param, ""))
        return principal


async def _named(request: Request, name: str) -> Any:
    """The value the request gives ``name``: path parameter, query parameter, or top-level JSON body field.

    The body was read (and its JSON cached) by FastAPI before dependencies run; the value checked is the one
    the route will be given.
    """
    if name in request.path_params:
        return request.path_params[name]
    if name in request.query_params:
        return request.query_params[name]
    try:
        body = await request.json()
    except ValueError:  # no body, or not JSON: nothing names a region here
        return None
    return body.get(name) if isinstance(body, dict) else None


def require(
    *roles: Role,
    region_param: str | None = None,
    subject_param: str | None = None,
    basic: bool = False,
    cookie: str | None = None,
) -> RoleGuard:
    """A dependency admitting ``roles``; see :class:`RoleGuard` for the region, subject, basic and cookie
    parameters.

    Use it through ``Annotated[Principal, Depends(require(...))]``.

    Raises (per request): AuthError (401) for no, unknown, malformed or revoked tokens; ForbiddenError (403) for
    another role, an analyst outside the region named, or a subject naming someone else; RateLimitedError (429)
    for a vehicle over its rate.
    """
    return RoleGuard(tuple(roles), region_param, subject_param, basic, cookie)


# The common declarations; a route with another combination writes its own ``Annotated[..., Depends(require(...))]``.
async def _vehicle(principal: Annotated[Principal, Depends(require(Role.VEHICLE))]) -> VehiclePrincipal:
    if not isinstance(principal, VehiclePrincipal):  # every vehicle token yields one; never trust a role alone
        raise AuthError("this token names no vehicle")
    return principal


VehicleCaller = Annotated[VehiclePrincipal, Depends(_vehicle)]
SubjectCaller = Annotated[Principal, Depends(require(Role.SUBJECT))]
Officer = Annotated[Principal, Depends(require(Role.OFFICER))]
OfficerOrAuditor = Annotated[Principal, Depends(require(Role.OFFICER, Role.AUDITOR))]
AnalystOrOfficer = Annotated[Principal, Depends(require(Role.ANALYST, Role.OFFICER))]


def served_routes(app: FastAPI) -> list[Any]:
    """Every route ``app`` serves, included routers flattened: each has ``path``, ``path_format`` and ``methods``,
    and API routes their ``dependant`` (with the dependencies of the routers they were included through)."""
    if _iter_route_contexts is None:  # FastAPI before lazy router inclusion: app.routes holds the routes
        return list(app.routes)
    return list(_iter_route_contexts(app.routes))


def is_api_route(route: Any) -> bool:
    """Whether ``route`` (from :func:`served_routes`) is a FastAPI path operation (not docs, not a mount)."""
    return isinstance(getattr(route, "original_route", route), APIRoute)


def guard_of(route: Any) -> RoleGuard | None:
    """The role guard among an API route's dependencies (searched through nested dependencies), or None.

    Raises:
        ValueError: the route has more than one guard (its roles would be ambiguous).
    """
    found: list[RoleGuard] = []
    pending = list(route.dependant.dependencies) if is_api_route(route) else []
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, RoleGuard) and dependant.call not in found:
            found.append(dependant.call)
        pending.extend(dependant.dependencies)
    if len(found) > 1:
        raise ValueError(f"route {route.path} declares more than one role guard: {found}")
    return found[0] if found else None


def document_roles(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document list each guarded operation's roles as ``x-onshore-roles`` (and the region
    and subject parameters it binds, as ``x-onshore-region-param`` and ``x-onshore-subject-param``)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        paths = schema.get("paths", {})
        for route in served_routes(app):
            if (guard := guard_of(route)) is None or route.path_format not in paths:
                continue
            extra: dict[str, Any] = {"x-onshore-roles": [r.value for r in guard.roles]}
            if guard.region_param is not None:
                extra["x-onshore-region-param"] = guard.region_param
            if guard.subject_param is not None:
                extra["x-onshore-subject-param"] = guard.subject_param
            for method in route.methods or ():
                if (operation := paths[route.path_format].get(method.lower())) is not None:
                    operation.update(extra)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document
