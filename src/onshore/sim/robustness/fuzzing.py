"""One way to run a fuzzing property, for the decoders and the routes alike: hypothesis with no example database
and no deadline, counting the cases, and the failure either raised (tests) or returned (the bench)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onshore.errors import InputError, OnshoreError


@dataclass(frozen=True)
class DecoderTarget:
    """One decoder under fuzzing.

    Attributes:
        name: ``area.format`` (``ingest.json``, ``bus.batch``...).
        inputs: what hostile input looks like for it.
        decode: runs the decoder on one input; returns what it accepted.
        refusals: the errors a refusal may raise; anything else is a failure.
        statuses: the HTTP statuses a refusal may carry, ``(low, high)`` inclusive-exclusive (4xx by default;
            the bus decoder refuses with 500, its sender being a faulty part of the deployment).
        check: a property of an accepted result (``check(input, result)`` raises AssertionError), or None.
    """

    name: str
    inputs: st.SearchStrategy[Any]
    decode: Callable[[Any], Any]
    refusals: tuple[type[OnshoreError], ...] = (InputError,)
    statuses: tuple[int, int] = (400, 500)
    check: Callable[[Any, Any], None] | None = None


@dataclass(frozen=True)
class FuzzResult:
    name: str
    cases: int
    accepted: int  # cases the target accepted (the rest it refused): a fuzzer must reach past the first check
    failure: str | None  # the falsifying input and the error, or None when every case held


def run_property(
    name: str,
    inputs: st.SearchStrategy[Any],
    check: Callable[[Any], bool],
    examples: int,
    *,
    derandomize: bool = False,
    raise_failure: bool = False,
) -> FuzzResult:
    """Run ``check`` (which raises on a failure and answers whether the input was accepted) on ``examples``
    draws of ``inputs``. With ``raise_failure`` the shrunk failure is raised; otherwise it is in the result."""
    cases = accepted = 0

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def fuzz(value: Any) -> None:
        nonlocal cases, accepted
        cases += 1
        accepted += check(value)

    try:
        fuzz()
    except Exception as exc:  # noqa: BLE001 - the failure is the result
        if raise_failure:
            raise
        notes = "; ".join(getattr(exc, "__notes__", []))
        return FuzzResult(name, cases, accepted, f"{type(exc).__name__}: {exc} {notes}"[:2000])
    return FuzzResult(name, cases, accepted, None)
