"""Every decoder onshore runs on input from outside, as a fuzz target: hostile input in, a precise refusal or a
well-formed result out, never anything else.

A `DecoderTarget` names a decoder, the hypothesis strategy of its input, the errors a refusal may raise (with
their HTTP status range) and a property of what it accepts. `DECODERS` holds the built-in ones
(`onshore.sim.robustness.decoder_targets`) and the adapters' (`onshore.sim.robustness.adapter_targets`:
fleet-telemetry protobuf and JSON and its event record types, MQTT messages, the worker's bus messages); a new
decoder is added with `register_decoder` in a few lines, e.g.::

    register_decoder(DecoderTarget(
        "fleet_telemetry.protobuf", mutations_of(st.sampled_from(SAMPLE_PAYLOADS)),
        decode=lambda payload: decode_payload(payload, IngestSettings()), refusals=(InputError,),
        check=round_trips_over_the_bus,
    ))

and the test (`tests/robustness/test_fuzz_decoders.py`) and `bench/robustness.py` fuzz it with the rest.
`run_decoder` runs one target for a number of examples and returns how many ran and the first failure.
"""

from __future__ import annotations

from typing import Any

import orjson

from onshore.sim.robustness.adapter_targets import adapter_targets
from onshore.sim.robustness.decoder_targets import built_in_targets
from onshore.sim.robustness.fuzzing import DecoderTarget, FuzzResult, run_property

__all__ = ["DECODERS", "DecoderTarget", "FuzzResult", "check_one", "register_decoder", "run_decoder"]

DECODERS: dict[str, DecoderTarget] = {}


def register_decoder(target: DecoderTarget) -> DecoderTarget:
    """Add ``target`` to `DECODERS` (a name may be registered once)."""
    if target.name in DECODERS:
        raise ValueError(f"decoder {target.name!r} is already registered")
    DECODERS[target.name] = target
    return target


def check_one(target: DecoderTarget, value: Any) -> bool:
    """Run ``target`` on ``value``: a refusal must be one of its errors, in its status range, in the API's error
    shape; an accepted result must pass its check. Returns whether it was accepted; raises AssertionError (or
    the unexpected error) otherwise."""
    try:
        result = target.decode(value)
    except target.refusals as error:
        low, high = target.statuses
        assert low <= error.status < high, f"{target.name}: refused with status {error.status}: {error.message}"
        body = error.to_dict()["error"]
        assert isinstance(body["code"], str) and body["code"], f"{target.name}: a refusal without a code"
        assert isinstance(body["message"], str) and body["message"], f"{target.name}: a refusal without a message"
        orjson.dumps(body)  # the error shape is JSON as it stands
        return False
    if target.check is not None:
        target.check(value, result)
    return True


def run_decoder(
    target: DecoderTarget, examples: int, *, derandomize: bool = False, raise_failure: bool = False
) -> FuzzResult:
    """Fuzz ``target`` with ``examples`` inputs (see `run_property`)."""
    return run_property(
        target.name,
        target.inputs,
        lambda value: check_one(target, value),
        examples,
        derandomize=derandomize,
        raise_failure=raise_failure,
    )


for _target in [*built_in_targets(), *adapter_targets()]:
    register_decoder(_target)
