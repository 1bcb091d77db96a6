"""Every route's parameters at their extremes, generated from the app's OpenAPI document
(`onshore.sim.robustness.routes`): for each operation, requests valid and with one hostile part, sent with the
token of a caller it admits. No answer is a 5xx, every refusal is the one JSON error shape, and a refusal writes
nothing (records, ledger sizes, bases, blobs and frames compared before and after).

``EXAMPLES`` requests per operation here (derandomized in CI); `bench/robustness.py` sends more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from onshore.sim.robustness.matrix import World, open_world
from onshore.sim.robustness.routes import BODY_BASES, RouteFuzzStats, fuzz_route, route_operations, seed

EXAMPLES = 25
CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("route-fuzz")) as built:
        seed(built)
        yield built


def test_every_route_with_a_json_body_has_a_valid_base_to_fuzz_around(world: World) -> None:
    with_body = {(op.method, op.path) for op in route_operations(world) if op.body is not None}
    assert with_body, "no route takes a JSON body: the OpenAPI document was not read"
    assert with_body <= set(BODY_BASES), f"add a valid body to BODY_BASES for {sorted(with_body - set(BODY_BASES))}"


def test_every_route_s_parameters_at_their_extremes_get_no_5xx_and_refusals_write_nothing(world: World) -> None:
    operations = route_operations(world)
    assert len(operations) >= 28
    failures, reached = [], 0
    for op in operations:
        stats = RouteFuzzStats()
        result = fuzz_route(world, op, EXAMPLES, derandomize=CI, stats=stats)
        if result.failure is not None:
            failures.append(f"{op.id}: {result.failure}")
        reached += result.accepted > 0
        assert stats.slowest_s < 10, f"{op.id}: a request took {stats.slowest_s:.1f} s"
    assert not failures, "\n\n".join(failures)
    assert reached >= len(operations) // 2, "most routes never accepted a request: the fuzzer reaches nothing"
