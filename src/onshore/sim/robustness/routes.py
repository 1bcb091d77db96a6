"""Every route's parameters at their extremes, generated from the app's OpenAPI document.

For each operation (`route_operations`), requests are drawn from its parameters' and body's schemas
(`onshore.sim.robustness.strategies`): path, query and header values valid or hostile, bodies near a valid base
(`BODY_BASES`) or anything the schema's edges give, raw bodies that are no JSON. Each request goes out with the
token of a caller the route admits (the route x role `World`), so it reaches the route's own checks. Every answer
must hold (`check_answer`): no 5xx, the one JSON error shape on a refusal, and nothing written by a refusal
(`snapshot`: records, ledger sizes, bases, blobs, frames per region, before and after).

A new route is covered as soon as it is served; one with a JSON body needs a base in `BODY_BASES` (the test
fails until it has one, so that its fuzzing reaches past the schema).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hypothesis import strategies as st

from onshore.ledger import MerkleLog
from onshore.runtime import Runtime
from onshore.sim.robustness import samples
from onshore.sim.robustness.fuzzing import FuzzResult, run_property
from onshore.sim.robustness.matrix import World, operations, path_values
from onshore.sim.robustness.strategies import (
    EDGE_TEXT,
    around,
    from_schema,
    hostile_for,
    mutations_of,
    valid_for,
    with_one_changed,
)
from onshore.web.auth import RoleGuard

# A valid body for every route that takes JSON, so that most draws pass the schema and reach the route's logic.
BODY_BASES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/ingest"): [
        {"msg_id": "fz-1", "ts": samples.NOW_MS - 5000, "signal": "VehicleSpeed", "value": 42.5},
        {"msg_id": "fz-2", "ts": samples.NOW_MS - 4000, "signal": "OutsideTemp", "value": 21},
    ],
    ("POST", "/v1/consents"): {"purpose": "diagnostics", "level": "ordinary", "validity": "7d"},
    ("POST", "/v1/subjects/me/consents"): {"purpose": "diagnostics", "level": "ordinary"},
    ("POST", "/v1/border/bases"): {**samples.BASIS, "reference": "SCC-2024-17", "expires_on": "2030-12-31"},
    ("POST", "/v1/border/bases/{basis_id}/approve"): {"approved_on": "2024-07-01", "reference": "CAC-2024-1"},
    ("POST", "/v1/border/exports/decide"): samples.EXPORT_REQUEST,
    ("POST", "/v1/border/exports"): samples.EXPORT_REQUEST,
    ("POST", "/v1/ingest/fleet-telemetry"): {
        "vin": samples.CN_VIN if hasattr(samples, "CN_VIN") else "LSVM0TEST00000001",
        "createdAt": "2024-06-01T00:00:00Z",
        "data": [{"key": "VehicleSpeed", "value": {"doubleValue": 42.5}}],
    },
    ("POST", "/v1/registers/{register}"): {
        "title": "fuzz",
        "occurred_on": "2024-05-01",
        "categories": ["personal"],
        "people_affected": 1,
    },
    ("PATCH", "/v1/registers/{register}/{entry_id}"): {"title": "fuzz again"},
    ("POST", "/v1/reports"): {"kind": "inventory", "year": 2026, "format": "md"},
}
# Parameter values that reach further than the matrix's placeholders: a frame time that is recent, the basis the
# bases route creates. Drawn per request where a value must be new (a message id, a basis id).
FUZZ_VALUES: dict[str, st.SearchStrategy[str]] = {
    "ts": st.integers(samples.NOW_MS - 10**8, samples.NOW_MS).map(str),
    "msg_id": st.from_regex(r"fz-[a-z0-9]{8}", fullmatch=True),
    "basis_id": st.sampled_from(["fz-basis", "rr-basis-none"]),
}
_FRESH = st.from_regex(r"fz-[a-z0-9]{10}", fullmatch=True)
_RAW_BODIES = [b"", b"{", b"[1,", b"\x00\xff", b"null", b'"text"', b"[" * 3000, b'{"a":' * 600 + b"1" + b"}" * 600]


@dataclass(frozen=True)
class RouteOperation:
    """One method of one route, with what its OpenAPI document says about its input."""

    method: str
    path: str
    guard: RoleGuard | None
    parameters: tuple[dict[str, Any], ...]
    body: dict[str, Any] | None  # the JSON body's schema, if it takes one
    media_types: tuple[str, ...]  # what its body may be

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class RouteFuzzStats:
    """What a run of one operation saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    slowest_s: float = 0.0


def route_operations(world: World) -> list[RouteOperation]:
    """Every guarded operation of the app (the public ones take no input), read from its OpenAPI document."""
    doc = world.app.openapi()
    out = []
    for method, path, guard in operations(world.app):
        if guard is None:
            continue
        operation = doc["paths"][path][method.lower()]
        content = operation.get("requestBody", {}).get("content", {})
        body = content.get("application/json", {}).get("schema")
        out.append(RouteOperation(method, path, guard, tuple(operation.get("parameters", [])), body, tuple(content)))
    return out


SELF = "__the-caller-s-own-subject__"  # replaced, at send time, by the subject the caller's fresh token is bound to


def requests_for(world: World, op: RouteOperation) -> st.SearchStrategy[dict[str, Any]]:
    """Requests (``httpx`` keyword arguments, headers aside) for ``op``: valid ones, and valid ones with one
    hostile part (a parameter, a header, the body, or an unknown parameter)."""
    components = world.app.openapi().get("components", {}).get("schemas", {})
    caller = world.caller_for(op.guard)
    values = {**path_values(world, caller, own_subject=SELF)}
    valid: dict[str, st.SearchStrategy[Any]] = {}
    changes: dict[str, st.SearchStrategy[Any]] = {}
    for param in op.parameters:
        name, where, schema = param["name"], param["in"], param.get("schema", {})
        if name in FUZZ_VALUES:
            fitting = FUZZ_VALUES[name]
        else:
            fitting = st.just(values[name]) if name in values else valid_for(schema, components)
        valid[f"{where}:{name}"] = fitting if param.get("required") else st.none() | fitting
        changes[f"{where}:{name}"] = hostile_for(schema, components) | st.none()
    changes["query:__unknown"] = st.sampled_from(EDGE_TEXT)
    valid["body"], changes["body"] = _bodies(op, components)
    fine = st.fixed_dictionaries(valid)
    drawn = st.one_of(fine, with_one_changed(fine, changes), with_one_changed(fine, changes))
    return drawn.map(lambda parts: _assemble(op, parts))


def _bodies(op: RouteOperation, components: dict[str, Any]) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid bodies, hostile bodies) of ``op``, each as ``(media type, bytes)`` or None."""
    if op.path == "/v1/frames":
        images = st.sampled_from(samples.images())
        return images.map(lambda b: ("image/jpeg", b)), mutations_of(images).map(lambda b: ("image/jpeg", b))
    if op.body is None:
        return st.none(), st.sampled_from(_RAW_BODIES).map(lambda b: ("application/json", b))
    base = BODY_BASES.get((op.method, op.path))
    valid = st.just(base) if base is not None else valid_for(op.body, components)
    if isinstance(base, dict) and "id" in base:  # a new id each time, or every request after the first is a 409
        valid = st.tuples(valid, _FRESH).map(lambda a: {**a[0], "id": a[1]})
    hostile = around(base, op.body, components) if isinstance(base, dict) else from_schema(op.body, components)
    as_json = hostile.map(lambda v: ("application/json", _dumps(v)))
    raw = st.sampled_from(_RAW_BODIES).map(lambda b: ("application/json", b))
    media = st.sampled_from([m for m in op.media_types if m != "application/json"] or ["text/plain"])
    other = st.tuples(media, hostile.map(_dumps))
    return valid.map(lambda v: ("application/json", _dumps(v))), st.one_of(as_json, as_json, as_json, raw, other)


def _dumps(value: Any) -> bytes:
    # the standard library writes integers of any size and Infinity (which is no JSON): hostile as they are
    try:
        return json.dumps(value).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError):
        return b"[]"


def _assemble(op: RouteOperation, drawn: dict[str, Any]) -> dict[str, Any]:
    url, params = op.path, {}
    headers: dict[str, Any] = {}
    for key, value in drawn.items():
        if key == "body" or value is None:
            continue
        where, name = key.split(":", 1)
        text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)
        if isinstance(value, bool):
            text = "true" if value else "false"
        if where == "path":
            url = url.replace("{" + name + "}", urllib.parse.quote(text, safe="") or "%20")
        elif where == "header":
            # as bytes: a header is Latin-1 on the wire, and a client encodes text headers as ASCII only
            headers[name] = text.replace("\n", " ").replace("\r", " ").encode("latin-1", "replace")
        else:
            params[name.removeprefix("__unknown") or "x-unknown"] = text
    request: dict[str, Any] = {"method": op.method, "url": url, "params": params, "headers": headers}
    if drawn["body"] is not None:
        media, content = drawn["body"]
        request["content"] = content
        request["headers"] = {**headers, "Content-Type": media}
    return request


def seed(world: World) -> None:
    """What the fuzzed routes find in place: the draft basis ``fz-basis`` (so approve, revoke and reads of it
    reach their own checks)."""
    body = {**samples.BASIS, "reference": "SCC-2024-17"}
    response = world.client.post("/v1/border/bases", json=body, headers=world.headers["officer"]())
    assert response.status_code in (201, 409), response.text


def snapshot(runtime: Runtime) -> dict[str, Any]:
    """Everything a request could write: records, ledger sizes, bases, blobs and frame counts per region."""
    out: dict[str, Any] = {}
    for name, region in runtime.regions.items():
        with region.store.read("robustness snapshot") as conn:
            ledger = MerkleLog(region.name).tree_size(conn)
        root = getattr(region.blobs, "root", None)
        blobs = sorted(str(p) for p in root.rglob("*") if p.is_file()) if root is not None and root.exists() else []
        out[name] = {
            "records": region.store.count_records(),
            "ledger": ledger,
            "bases": len(runtime.border.bases.list_bases(name)),
            "blobs": len(blobs),
            "frames": runtime.frames.stats(region),
        }
    return out


class Answer(Protocol):
    """What `check_answer` reads of a response (httpx's, or the test client's)."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


def check_answer(response: Answer, before: dict[str, Any], after: dict[str, Any], where: str) -> None:
    """No 5xx; a refusal is the one JSON error shape and wrote nothing. Raises AssertionError naming ``where``."""
    status = response.status_code
    assert status < 500, f"{where}: {status} {response.text[:300]}"
    if status < 400:
        return
    assert response.headers.get("content-type", "").startswith("application/json"), f"{where}: {status} not JSON"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"{where}: {status} not the error shape: {body}"
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, f"{where}: error fields {sorted(error)}"
    assert isinstance(error.get("code"), str) and error["code"], f"{where}: no error code"
    assert isinstance(error.get("message"), str) and error["message"], f"{where}: no error message"
    assert after == before, f"{where}: a {status} refusal wrote {_difference(before, after)}"


def _difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        region: {k: (before[region][k], v) for k, v in values.items() if before.get(region, {}).get(k) != v}
        for region, values in after.items()
    }


def fuzz_route(
    world: World,
    op: RouteOperation,
    examples: int,
    *,
    derandomize: bool = False,
    raise_failure: bool = False,
    stats: RouteFuzzStats | None = None,
) -> FuzzResult:
    """Send ``examples`` drawn requests to ``op`` in-process; every answer must pass `check_answer`."""
    caller = world.caller_for(op.guard)
    stats = stats if stats is not None else RouteFuzzStats()

    def check(request: dict[str, Any]) -> bool:
        request["headers"] = {**request["headers"], **world.headers[caller.kind]()}
        if SELF in request["url"]:
            request["url"] = request["url"].replace(SELF, world.subject_ref["self"])
        before = snapshot(world.runtime)
        started = time.perf_counter()
        response = world.client.request(**request)
        stats.slowest_s = max(stats.slowest_s, time.perf_counter() - started)
        stats.statuses[response.status_code] = stats.statuses.get(response.status_code, 0) + 1
        check_answer(response, before, snapshot(world.runtime), f"{op.id} {request['url']} {request['params']}")
        return response.status_code < 400

    return run_property(
        op.id, requests_for(world, op), check, examples, derandomize=derandomize, raise_failure=raise_failure
    )
