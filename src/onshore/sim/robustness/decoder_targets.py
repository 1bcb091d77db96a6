"""The decoders onshore runs on outside input today, as fuzz targets (`built_in_targets`; `onshore.sim.robustness
.decoders` registers them): JSON and NDJSON ingest, records handed to the library, the bus's MessagePack batches,
frame metadata and images, basis conditions, basis files, export requests, the configuration."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import strategies as st

from onshore.errors import BatchFormatError, ConfigError, InputError
from onshore.ingest.batch import FrameBatch, FrameMeta, RecordBatch, decode
from onshore.sim.robustness import samples
from onshore.sim.robustness.fuzzing import DecoderTarget
from onshore.sim.robustness.strategies import (
    EDGE_INTS,
    EDGE_TEXT,
    EDGE_TIMES,
    around,
    edge_ints,
    edge_text,
    from_schema,
    json_values,
    mutations_of,
    nested,
    with_one_changed,
)

VEHICLE = samples.VEHICLE


def round_trips_over_the_bus(_value: Any, batch: RecordBatch | FrameBatch) -> None:
    """What admit accepts, the bus decoder reads back unchanged (a worker takes every batch a gateway admits)."""
    assert decode(batch.encode()) == batch, "an admitted batch does not survive the bus"


def record_lists() -> st.SearchStrategy[list[dict[str, Any]]]:
    """Batches of records that admit takes, and batches where one record has one hostile field."""
    valid = st.fixed_dictionaries(
        {
            "msg_id": st.from_regex(r"[A-Za-z0-9._:\-]{1,20}", fullmatch=True),
            "ts": st.integers(samples.NOW_MS - 10**9, samples.NOW_MS) | st.just("2024-05-01T08:00:00+08:00"),
            "signal": st.sampled_from(samples.SIGNALS),
            "value": json_values(8),
        },
        optional={"purpose": st.sampled_from(["diagnostics", "navigation"]), "profile": st.sampled_from(["1", "2"])},
    )
    hostile = with_one_changed(
        valid,
        {
            "msg_id": edge_text(128) | edge_ints(),
            "ts": edge_ints(samples.MIN_TS_MS, samples.NOW_MS) | st.sampled_from(EDGE_TIMES) | st.floats(),
            "signal": edge_text(200, r"[A-Z][A-Za-z0-9_]{0,12}(\.[A-Z][a-z]{0,5})?"),
            "value": st.one_of(json_values(40), nested(), _edge_in_containers(), _edge_in_containers()),
            "purpose": edge_text(64, r"[a-z_]{1,10}"),
            "profile": edge_text(64) | st.none(),
            "vin": st.just("LSVM0TEST00000009"),
        },
    )
    only_valid = st.sampled_from([True, False, False])  # two batches in three carry a hostile record
    return st.tuples(st.lists(valid, max_size=6), hostile, only_valid, st.integers(0, 6)).map(
        lambda a: a[0] if a[2] else [*a[0][: a[3]], a[1], *a[0][a[3] :]]
    )


def _edge_in_containers() -> st.SearchStrategy[Any]:
    """An edge integer inside a list or an object: where a check that only looks at scalars misses it."""
    edges = st.sampled_from(EDGE_INTS)
    return edges.map(lambda i: [1, i]) | edges.map(lambda i: {"a": {"b": i}})


def _json_bodies() -> st.SearchStrategy[bytes]:
    # json.dumps writes integers of any size, Infinity and NaN (not JSON): hostile as they are
    return mutations_of(record_lists().map(lambda rs: json.dumps(rs).encode()), max_edits=2)


def _ndjson_bodies() -> st.SearchStrategy[bytes]:
    def lines(records: list[dict[str, Any]], sep: bytes) -> bytes:
        return sep.join(json.dumps(r).encode() for r in records) + sep

    separators = st.sampled_from([b"\n", b"\r\n", b"\n\n"])
    return mutations_of(st.tuples(record_lists(), separators).map(lambda a: lines(*a)), max_edits=2)


_CONTENT_TYPES = ["application/json", "application/x-ndjson", "application/json; charset=utf-8", None, "text/csv"]


def _ingest(body_and_type: tuple[bytes, str | None]) -> RecordBatch:
    from onshore.config import IngestSettings
    from onshore.pipeline.admit import admit, decode_body

    limits = IngestSettings()
    body, content_type = body_and_type
    return admit(decode_body(body, content_type, limits), VEHICLE, limits, now_ms=samples.NOW_MS)


def _ingest_records(records: Any) -> RecordBatch:
    from onshore.config import IngestSettings
    from onshore.pipeline.admit import admit, records_from_python

    limits = IngestSettings()
    return admit(records_from_python(records, limits), VEHICLE, limits, now_ms=samples.NOW_MS)


def msgpack_with_one_changed(args: tuple[dict[str, Any], str, Any]) -> bytes:
    """``(fields, name, value)``: the MessagePack of ``fields`` with ``name`` set to ``value`` (as they are when
    MessagePack cannot write that value)."""
    fields, name, value = args
    try:
        return msgspec.msgpack.encode({**fields, name: value})
    except (TypeError, OverflowError, msgspec.EncodeError):
        return msgspec.msgpack.encode(fields)


def _bus_inputs() -> st.SearchStrategy[bytes]:
    batches = st.sampled_from(samples.batches())
    as_fields = batches.map(lambda b: msgspec.msgpack.decode(b.encode()))
    field_names = st.sampled_from(sorted(set(RecordBatch.__struct_fields__) | set(FrameBatch.__struct_fields__)))
    values = json_values(10) | st.binary(max_size=16) | st.just([2**64 - 1]) | st.just([msgspec.msgpack.Ext(1, b"x")])
    return mutations_of(batches.map(lambda b: b.encode())) | st.tuples(as_fields, field_names, values).map(
        msgpack_with_one_changed
    )


def _frame_meta(args: tuple[dict[str, str], str | None]) -> FrameMeta:
    from onshore.config import IngestSettings
    from onshore.vision.ingest import parse_frame_meta

    params, position = args
    return parse_frame_meta(params, IngestSettings(), now_ms=samples.NOW_MS, position=position)


def _frame_meta_inputs() -> st.SearchStrategy[tuple[dict[str, str], str | None]]:
    valid = st.fixed_dictionaries(
        {
            "msg_id": st.from_regex(r"[a-z0-9\-]{1,12}", fullmatch=True),
            "camera": st.sampled_from(["front", "rear", "cabin"]),
            "ts": st.integers(samples.NOW_MS - 10**9, samples.NOW_MS).map(str),
        },
        optional={"purpose": st.sampled_from(["diagnostics", "navigation"])},
    )
    hostile = with_one_changed(
        valid,
        {
            "msg_id": edge_text(200),
            "camera": edge_text(64),
            "ts": st.sampled_from(EDGE_TIMES) | edge_ints().map(str) | edge_text(40),
            "purpose": edge_text(64),
            "lat": st.just("31.2"),
            "vin": st.just("x"),
        },
    )
    missing = st.tuples(valid, st.sampled_from(["msg_id", "camera", "ts"])).map(
        lambda a: {k: v for k, v in a[0].items() if k != a[1]}
    )
    position = st.none() | st.tuples(st.floats(-90, 90), st.floats(-180, 180)).map(lambda p: f"{p[0]:.6f},{p[1]:.6f}")
    hostile_position = edge_text(40, r"-?[0-9]{1,3}(\.[0-9]{1,16})?, ?-?[0-9]{1,3}(\.[0-9]{1,16})?")
    return st.tuples(valid, position) | st.tuples(hostile | missing | valid, position | hostile_position)


def _meta_in_range(_value: Any, meta: FrameMeta) -> None:
    assert meta.latitude is None or -90 <= meta.latitude <= 90
    assert meta.longitude is None or -180 <= meta.longitude <= 180
    assert samples.MIN_TS_MS <= meta.ts_ms <= samples.NOW_MS + 86_400_000


def _frame_image(data: bytes) -> tuple[Any, int, int]:
    from onshore.vision.codec import decode_frame
    from onshore.vision.headers import FrameLimits, check_frame

    limits = FrameLimits(max_bytes=1024 * 1024, max_pixels=4_000_000)
    _media, width, height = check_frame(data, limits)
    image, _ = decode_frame(data, limits)
    return image, width, height


def _image_matches_its_header(_data: bytes, result: tuple[Any, int, int]) -> None:
    image, width, height = result
    assert image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] * image.shape[1] == width * height


def _conditions(raw: Any) -> list[Any]:
    from onshore.border.bases import parse_spec
    from onshore.border.conditions import check_conditions

    spec = parse_spec({**samples.BASIS, "conditions": raw})
    check_conditions(spec.conditions)
    return list(spec.conditions)


def _condition_inputs() -> st.SearchStrategy[Any]:
    from onshore.border.conditions import PARAMS

    def params_of(name: str) -> st.SearchStrategy[dict[str, Any]]:
        known = sorted(PARAMS.get(name, {})) or ["x"]
        value = edge_ints(0, 100) | st.floats(allow_nan=False) | st.booleans() | edge_text(40, r"[a-z_,]{1,20}")
        return st.dictionaries(st.sampled_from([*known, "sigma"]), value | st.sampled_from(["square", "h3"]))

    names = st.sampled_from(sorted(PARAMS)) | edge_text(40, r"[a-z_]{1,20}")
    condition = names.flatmap(lambda n: st.fixed_dictionaries({"name": st.just(n)}, optional={"params": params_of(n)}))
    return st.lists(condition, max_size=4) | json_values(8)


def _conditions_run_at_export(_raw: Any, conditions: list[Any]) -> None:
    """A condition accepted when the basis is recorded runs when data leaves (it used to fail only then)."""
    from onshore.deid.transforms import get_transform, merge_specs, release_flows

    cols, ctx = samples.export_columns()
    for spec in merge_specs(conditions):
        cols = get_transform(spec.name)(cols, spec.params, ctx)
    release_flows(ctx)


def _basis_file(text: str) -> Any:
    from onshore.border.bases import parse_spec
    from onshore.documents import read_document

    path = _scratch() / "basis.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return parse_spec(read_document(path, "basis", InputError))


def _basis_texts() -> st.SearchStrategy[str]:
    texts = st.sampled_from([samples.BASIS_YAML, samples.alias_bomb(), samples.alias_bomb(3)])
    edited = texts.flatmap(
        lambda text: st.tuples(st.integers(0, len(text)), st.sampled_from([*EDGE_TEXT, ": [", "&a", "*a", "!!python"]))
    )
    return texts | st.tuples(texts, edited).map(lambda a: a[0][: a[1][0]] + a[1][1] + a[0][a[1][0] :]) | st.text()


def _export_request(raw: Any) -> Any:
    from onshore.border.requests import parse_request

    return parse_request(raw)


def _export_request_inputs() -> st.SearchStrategy[Any]:
    from onshore.border.requests import ExportRequest

    schema = ExportRequest.model_json_schema()
    return around(samples.EXPORT_REQUEST, schema, schema.get("$defs", {}))


def _config(args: tuple[str, dict[str, Any], dict[str, str]]) -> Any:
    from onshore.config import load_settings

    text, overrides, env = args
    path = _scratch() / "onshore.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return load_settings(path, env=env, overrides=overrides)


def _config_inputs() -> st.SearchStrategy[tuple[str, dict[str, Any], dict[str, str]]]:
    from onshore.config import Settings

    schema = Settings.model_json_schema()
    base = samples.CONFIG_TOML
    texts = st.just(base) | mutations_of(st.just(base.encode())).map(lambda b: b.decode("utf-8", "replace"))
    defs = schema.get("$defs", {})
    sections = {
        name: from_schema(schema["properties"][name], defs) for name in ("server", "ingest", "frames", "limits")
    }
    overrides = st.fixed_dictionaries({}, optional=sections)
    env_keys = st.sampled_from(
        ["ONSHORE_SERVER__PORT", "ONSHORE_INGEST__MAX_BATCH_RECORDS", "ONSHORE_REGIONS__CN__RECORD_STORE",
         "ONSHORE_LIMITS__VEHICLE_RATE_PER_S", "ONSHORE_", "ONSHORE_SERVER", "ONSHORE_X__Y__Z"]
    )  # fmt: skip
    env = st.dictionaries(env_keys, edge_text(40) | edge_ints().map(str) | st.just("[1, 2]"), max_size=3)
    return st.tuples(texts, overrides, env)


_SCRATCH: list[Path] = []


def _scratch() -> Path:
    """A folder for the files the file decoders read (made once per process)."""
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="onshore-fuzz-")))
    return _SCRATCH[0]


def built_in_targets() -> list[DecoderTarget]:
    """A fresh target for every built-in decoder."""
    targets: list[DecoderTarget] = []
    content_types = st.sampled_from(_CONTENT_TYPES)
    targets.append(
        DecoderTarget("ingest.json", st.tuples(_json_bodies(), content_types), _ingest, check=round_trips_over_the_bus)
    )
    targets.append(
        DecoderTarget(
            "ingest.ndjson",
            st.tuples(_ndjson_bodies(), st.just("application/x-ndjson")),
            _ingest,
            check=round_trips_over_the_bus,
        )
    )
    targets.append(
        DecoderTarget("ingest.records", record_lists() | json_values(), _ingest_records, check=round_trips_over_the_bus)
    )
    targets.append(
        DecoderTarget(
            "bus.batch", _bus_inputs(), decode, refusals=(BatchFormatError,), statuses=(500, 501),
            check=round_trips_over_the_bus,
        )
    )  # fmt: skip
    targets.append(DecoderTarget("frames.meta", _frame_meta_inputs(), _frame_meta, check=_meta_in_range))
    targets.append(
        DecoderTarget(
            "frames.image", mutations_of(st.sampled_from(samples.images())), _frame_image,
            check=_image_matches_its_header,
        )
    )  # fmt: skip
    targets.append(
        DecoderTarget("border.conditions", _condition_inputs(), _conditions, check=_conditions_run_at_export)
    )
    targets.append(DecoderTarget("border.basis_file", _basis_texts(), _basis_file))
    targets.append(DecoderTarget("border.export_request", _export_request_inputs(), _export_request))
    targets.append(
        DecoderTarget("config.load", _config_inputs(), _config, refusals=(ConfigError,), statuses=(500, 501))
    )
    return targets
