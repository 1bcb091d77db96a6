"""Property-based fuzzing of every decoder onshore runs on outside input (`onshore.sim.robustness.decoders`):
JSON and NDJSON ingest, records handed to the library, the bus's MessagePack batches, frame metadata and images,
basis conditions and basis files, export requests, the configuration, and the adapters' (fleet-telemetry protobuf
and JSON of every record type, MQTT topics and payloads, a worker's bus messages with their headers). A refusal
is one of the decoder's errors in its status range and in the API's error shape; what is accepted passes the
decoder's property (an admitted batch survives the bus; an accepted condition runs at export; a decoded image
matches its header; a fleet-telemetry message keeps every datum and reads the same from its JSON form).

A few hundred examples per decoder here (``EXAMPLES``; derandomized in CI); `bench/robustness.py` runs more.
An adapter that adds a decoder registers it with `register_decoder` and is fuzzed here with no change.
"""

from __future__ import annotations

import os
import time

import pytest

from onshore.sim.robustness import samples
from onshore.sim.robustness.decoders import DECODERS, check_one, run_decoder

EXAMPLES = 200
CI = os.environ.get("CI") == "true"
BUILT_IN = {
    "ingest.json", "ingest.ndjson", "ingest.records", "bus.batch", "frames.meta", "frames.image",
    "border.conditions", "border.basis_file", "border.export_request", "config.load",
    "fleet_telemetry.protobuf", "fleet_telemetry.json", "fleet_telemetry.events", "mqtt.message", "bus.message",
}  # fmt: skip


def test_every_decoder_that_takes_outside_input_is_registered() -> None:
    assert set(DECODERS) >= BUILT_IN


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_a_decoder_refuses_hostile_input_precisely_and_keeps_its_promise_on_the_rest(name: str) -> None:
    result = run_decoder(DECODERS[name], EXAMPLES, derandomize=CI, raise_failure=True)
    assert result.cases == EXAMPLES or result.cases > EXAMPLES // 4  # small input spaces run out early
    assert result.accepted > 0, f"{name}: no case got past the first check; the fuzzer reaches nothing deeper"


def test_an_alias_bomb_in_a_basis_file_is_refused_at_once() -> None:
    """A 'billion laughs' basis (nine anchors of nine aliases) held `onshore bases add` for 90 s."""
    started = time.perf_counter()
    assert check_one(DECODERS["border.basis_file"], samples.alias_bomb()) is False
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("text", ["0000-00-00", "expires_on: 2024-13-45", "[" * 5000, "a: " + "{" * 3000])
def test_a_basis_file_yaml_cannot_build_is_refused_not_a_traceback(text: str) -> None:
    """Found by the bench: YAML reads 0000-00-00 as a date of year 0 (ValueError), and deep nesting exhausts the
    parser's recursion (RecursionError); both were tracebacks of `onshore bases add`."""
    assert check_one(DECODERS["border.basis_file"], text) is False


def test_a_bus_batch_outside_admit_s_ranges_is_refused_by_the_bus_decoder() -> None:
    """A batch with a time past 64 bits used to decode and then fail in the database (a 500 on every delivery)."""
    import msgspec

    from onshore.errors import BatchFormatError
    from onshore.ingest.batch import decode

    fields = msgspec.msgpack.decode(samples.batches()[0].encode())
    for change in ({"ts_ms": [2**64 - 1] * 3}, {"msg_ids": ["m1\n", "m2", "m3"]}, {"values": [b"raw", 1, 2]},
                   {"values": [[2**63], 1, 2]}, {"received": 1}):  # fmt: skip
        with pytest.raises(BatchFormatError):
            decode(msgspec.msgpack.encode({**fields, **change}))


def test_a_fleet_telemetry_payload_with_a_field_number_the_schema_lacks_is_refused_with_a_422() -> None:
    """The property's refusal path, reached on purpose: proto3 keeps an unknown field, onshore refuses it."""
    from onshore.ingest.fleet_telemetry.schema import Payload, RecordType
    from onshore.sim.robustness.ft_targets import with_unknown_field

    message = Payload(vin="LSVM0TEST00000001")
    message.created_at.FromMilliseconds(samples.NOW_MS - 1000)
    datum = message.data.add(key=4)  # VehicleSpeed
    datum.value.double_value = 42.5
    target = DECODERS["fleet_telemetry.protobuf"]
    body = message.SerializeToString()
    assert check_one(target, (body, "application/x-protobuf", RecordType.V)) is True
    with pytest.raises(AssertionError, match="status 422"):  # a 4xx range that excludes 422 rejects the refusal
        check_one(
            type(target)(target.name, target.inputs, target.decode, target.refusals, (400, 422)),
            (with_unknown_field(body, 999), "application/x-protobuf", RecordType.V),
        )
