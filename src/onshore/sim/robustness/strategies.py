"""Hypothesis strategies for hostile input: values at the ends of their ranges, byte mutations, and values for
any JSON schema (the OpenAPI document's), biased towards its edges.

Every strategy draws synthetic data only: no VIN, position or token of a real vehicle.
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

from hypothesis import strategies as st

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Integers where parsers, databases and the calendar break: the 32/53/63/64-bit edges and far beyond.
EDGE_INTS = (
    0,
    -1,
    1,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53,
    2**53 + 1,
    INT64_MAX,
    INT64_MAX + 1,
    INT64_MIN,
    INT64_MIN - 1,
    2**64,
    2**64 - 1,
    10**30,
    -(10**30),
    2**200,
)
EDGE_FLOATS = (0.0, -0.0, 5e-324, 1e-300, 1e308, -1e308, 1.7976931348623157e308, 0.1, 1e16, 9.007199254740993e15)
# Times and dates at the ends of the calendar and in the forms parsers half-accept.
EDGE_TIMES = (
    "0001-01-01T00:00:00+14:00",
    "0001-01-01",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2199-12-31T23:59:59+00:00",
    "2200-01-01",
    "2024-02-30",
    "2024-05-01T00:00:00",
    "2024-05-01T24:00:00Z",
    "2024-05-01T00:00:00+25:00",
    "+002024-05-01",
    "2024-W18-3",
    "1e3",
)
# Text that breaks patterns, logs, paths and terminals.
EDGE_TEXT = (
    "",
    " ",
    "\n",
    "a\n",
    "\r\n",
    "\x00",
    "\t",
    "../../etc/passwd",
    "..",
    "%2e%2e%2f",
    "%00",
    "${jndi:ldap://x}",
    "'; DROP TABLE records; --",
    "<script>",
    "\u202e",
    "\ufeff",
    "\ud7ff",
    "é",
    "²³",
    "١٢٣",
    "NaN",
    "Infinity",
    "-0",
    "0x10",
    "1_000",
    "true",
    "null",
    "A" * 257,
    "9" * 400,
)


def edge_ints(low: int | None = None, high: int | None = None) -> st.SearchStrategy[int]:
    """Integers at the edges (and just past the bounds ``low``/``high``), and any integer around them."""
    edges = set(EDGE_INTS)
    for bound in (low, high):
        if bound is not None:
            edges.update({bound - 1, bound, bound + 1})
    return st.sampled_from(sorted(edges)) | st.integers(min_value=-(2**70), max_value=2**70)


def edge_floats() -> st.SearchStrategy[float]:
    return st.sampled_from(EDGE_FLOATS) | st.floats(allow_nan=False, allow_infinity=False)


def edge_text(max_length: int | None = None, pattern: str | None = None) -> st.SearchStrategy[str]:
    """Text at the edges: empty, control characters, path tricks, at and past ``max_length``, and (with
    ``pattern``) text the pattern accepts, so the draws reach past the first check."""
    options: list[st.SearchStrategy[str]] = [st.sampled_from(EDGE_TEXT), st.text(max_size=40)]
    if max_length is not None and max_length < 100_000:
        options.append(st.sampled_from(["a" * max_length, "a" * (max_length + 1), "é" * (max_length + 1)]))
    if pattern is not None:
        options.append(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) < 300))
    return st.one_of(*options)


def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """Any JSON value, with integers beyond 64 bits, extreme floats, edge text and nesting."""
    leaves = (
        st.none()
        | st.booleans()
        | edge_ints()
        | edge_floats()
        | st.sampled_from(EDGE_TIMES)
        | st.sampled_from(EDGE_TEXT)
        | st.text(max_size=20)
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
        max_leaves=max_leaves,
    )


def nested(depth: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[Any]:
    """A list or object nested ``depth`` deep (past any sane limit at the top of the range)."""

    def build(args: tuple[int, bool]) -> Any:
        levels, as_object = args
        value: Any = 1
        for _ in range(levels):
            value = {"a": value} if as_object else [value]
        return value

    return st.tuples(st.integers(0, 400) if depth is None else depth, st.booleans()).map(build)


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_edits: int = 4) -> bytes:
    """``base`` with a few edits: bytes flipped, inserted, deleted or duplicated, the end cut off or extended."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, max_edits))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "duplicate", "append")))
        if edit == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif edit == "truncate":
            del data[at:]
        elif edit == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
        elif edit == "append":
            data += draw(st.binary(max_size=32))
    return bytes(data)


def weighted(*options: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn in proportion to its weight (``one_of`` draws them alike)."""
    choices = [strategy for strategy, weight in options for _ in range(weight)]
    return st.sampled_from(choices).flatmap(lambda strategy: strategy)


def mutations_of(bases: st.SearchStrategy[bytes], max_edits: int = 4) -> st.SearchStrategy[bytes]:
    """Each base as it is, or with a few edits (``mutated``), or plain random bytes."""
    return st.one_of(
        bases,
        bases,
        bases.flatmap(lambda base: mutated(base, max_edits)),
        st.binary(max_size=512) | st.sampled_from([b"", b"\x00", b"\xff" * 64, b"[" * 5000, b"{" * 5000]),
    )


def from_schema(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for a JSON schema (OpenAPI 3.1, pydantic's): half of them valid, half with one hostile part.

    Valid draws fill every required field (and some optional ones) within the schema's bounds, patterns and
    enums, so requests reach past the first check. Hostile draws change one part only: a field at or past its
    bounds or ``maxLength``, of another type altogether, missing when required, or an unknown field.
    """
    return valid_for(schema, components) | hostile_for(schema, components)


def around(base: dict[str, Any], schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values near a valid ``base`` object: ``base`` itself, ``base`` with one field drawn from its schema (valid
    or hostile) or removed, or anything `from_schema` draws. Semantic rules a schema cannot state (``until``
    after ``since``) hold in ``base``, so most draws reach the route's own checks."""
    schema = _resolve(schema, components)
    properties = schema.get("properties", {})
    changes = {name: from_schema(sub, components) for name, sub in properties.items()}
    exact = st.just(base)
    options = [exact, from_schema(schema, components)]
    if changes:
        options += [with_one_changed(exact, changes)] * 3
        options.append(st.sampled_from(sorted(base) or [""]).map(lambda name: _without(base, name)))
    return st.one_of(*options)


def with_one_changed(base: st.SearchStrategy[dict[str, Any]], changes: dict[str, st.SearchStrategy[Any]]) -> Any:
    """Dictionaries drawn from ``base`` with one of ``changes``' fields set to a value of its strategy."""
    names = sorted(changes)
    return st.tuples(base, st.sampled_from(names).flatmap(lambda n: st.tuples(st.just(n), changes[n]))).map(
        lambda a: {**a[0], a[1][0]: a[1][1]}
    )


_WRONG: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.sampled_from(EDGE_INTS)
    | st.sampled_from(EDGE_TEXT)
    | st.just([])
    | st.just({})
    | nested(st.integers(30, 200))
)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if kind is None and "properties" in schema:
        return "object"
    if kind is None and "items" in schema:
        return "array"
    return kind if isinstance(kind, str) else None


def valid_for(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the schema accepts (as far as a schema can say: semantics are the route's)."""
    schema = _resolve(schema, components)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of(*[valid_for(s, components, depth) for s in schema[key]])
    if "allOf" in schema:
        return valid_for(schema["allOf"][0], components, depth)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if isinstance(schema.get("type"), list):
        return st.one_of(*[valid_for({**schema, "type": k}, components, depth) for k in schema["type"]])
    kind = _kind(schema)
    if kind == "integer":
        low = schema.get("minimum", (schema.get("exclusiveMinimum", -(10**6) - 1)) + 1)
        high = schema.get("maximum", (schema.get("exclusiveMaximum", 10**9 + 1)) - 1)
        return st.integers(low, high) | st.sampled_from([low, high])
    if kind == "number":
        low, high = schema.get("minimum", schema.get("exclusiveMinimum")), schema.get("maximum")
        return st.floats(low, high, allow_nan=False, allow_infinity=False, exclude_min="exclusiveMinimum" in schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        return _valid_text(schema)
    if kind == "array":
        items = valid_for(schema.get("items", {}), components, depth + 1) if depth < 5 else st.nothing()
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3)))
    if kind == "object":
        properties = schema.get("properties", {})
        if not properties or depth >= 5:
            return st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8), st.integers(), max_size=2)
        required = set(schema.get("required", []))
        fields = {name: valid_for(sub, components, depth + 1) for name, sub in properties.items()}
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
    return json_values(6)


def _valid_text(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt, pattern = schema.get("format"), schema.get("pattern")
    if fmt == "date":
        return st.dates(dt.date(1971, 1, 1), dt.date(2199, 12, 30)).map(dt.date.isoformat)
    if fmt == "date-time":
        return st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2199, 12, 30), timezones=st.just(dt.UTC)).map(
            dt.datetime.isoformat
        )
    high = min(schema.get("maxLength", 24), 24)
    low = min(schema.get("minLength", 1), high)
    if pattern is not None:
        return st.from_regex(pattern, fullmatch=True).filter(lambda s: low <= len(s) <= schema.get("maxLength", 300))
    return st.text(string.ascii_letters + string.digits + "-_ ", min_size=low, max_size=high)


def hostile_for(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values with one hostile part: an edge or a wrong type here, or (objects, arrays) in one member."""
    schema = _resolve(schema, components)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of(*[hostile_for(s, components, depth) for s in schema[key]])
    if "allOf" in schema:
        return hostile_for(schema["allOf"][0], components, depth)
    if "enum" in schema or "const" in schema:
        return edge_text(64) | _WRONG
    if isinstance(schema.get("type"), list):
        return st.one_of(*[hostile_for({**schema, "type": k}, components, depth) for k in schema["type"]])
    kind = _kind(schema)
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        return edge_ints(low, high) | _WRONG
    if kind == "number":
        return edge_floats() | edge_ints(schema.get("minimum"), schema.get("maximum")) | _WRONG
    if kind == "string":
        if schema.get("format") in ("date", "date-time"):
            return st.sampled_from(EDGE_TIMES) | _WRONG
        return edge_text(schema.get("maxLength"), None) | _WRONG
    if kind == "array" and depth < 5:
        items = schema.get("items", {})
        one_bad = st.tuples(
            st.lists(valid_for(items, components, depth + 1), max_size=2), hostile_for(items, components, depth + 1)
        ).map(lambda a: [*a[0], a[1]])
        limit = schema.get("maxItems")
        too_many = (
            st.lists(valid_for(items, components, depth + 1), min_size=limit + 1, max_size=limit + 1)
            if isinstance(limit, int) and limit < 1000
            else st.nothing()
        )
        return one_bad | too_many | _WRONG
    if kind == "object" and schema.get("properties") and depth < 5:
        return _hostile_object(schema, components, depth)
    return _WRONG | json_values(10)


def _hostile_object(schema: dict[str, Any], components: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    properties = schema["properties"]
    required = sorted(schema.get("required", []))
    valid = valid_for(schema, components, depth)
    changes = {name: hostile_for(sub, components, depth + 1) for name, sub in properties.items()}
    one_bad = with_one_changed(valid, changes)
    unknown = st.tuples(valid, st.sampled_from(["vin", "region_", "x", "__proto__", ""]), json_values(4)).map(
        lambda a: {**a[0], a[1]: a[2]}
    )
    options = [one_bad, one_bad, unknown, _WRONG]
    if required:
        options.append(st.tuples(valid, st.sampled_from(required)).map(lambda a: _without(a[0], a[1])))
    return st.one_of(*options)


def _without(value: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != name}
