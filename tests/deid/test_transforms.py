"""De-identification transforms, one behaviour each, on column-shaped chunks."""

from __future__ import annotations

import orjson
import pytest

from onshore.deid.pseudonyms import recipient_key
from onshore.deid.transforms import (
    Columns,
    TransformContext,
    get_transform,
    laplace_counts,
    merge_specs,
)
from onshore.errors import InputError
from onshore.geo.zones import ZoneIndex
from onshore.rules.loader import load_pack
from onshore.rules.outbound import TransformSpec
from tests.border.helpers import PLAIN_POINT, ZONE_POINT


def _cols(values: list[object], tags: str = "location,trajectory", zone: str | None = None) -> Columns:
    n = len(values)
    return Columns(
        cls=["c"] * n,
        ts_ms=[1_718_000_123_456 + i for i in range(n)],
        signal=["Location"] * n,
        value=[orjson.dumps(v).decode() for v in values],
        categories=["personal,sensitive_personal"] * n,
        tags=[tags] * n,
        purpose=["navigation"] * n,
        vehicle=[f"v{i}" for i in range(n)],
        subject=[f"s{i}" for i in range(n)],
        zone=[zone] * n,
    )


def _ctx(recipient: str = "acme-gmbh", zones: ZoneIndex | None = None) -> TransformContext:
    return TransformContext(recipient_key(b"k" * 32, recipient), zones or ZoneIndex([]))


def test_pseudonyms_are_keyed_per_recipient() -> None:
    a = get_transform("pseudonymise")(_cols([1.0]), {}, _ctx("acme-gmbh"))
    b = get_transform("pseudonymise")(_cols([1.0]), {}, _ctx("other-corp"))
    assert a.subject[0] != b.subject[0] and a.subject[0] != "s0" and len(a.subject[0]) == 32
    again = get_transform("pseudonymise")(_cols([1.0]), {}, _ctx("acme-gmbh"))
    assert again.subject == a.subject  # stable for one recipient: its analyses can join


def test_coarsen_position_snaps_points_and_lone_coordinates_to_cell_centres() -> None:
    cols = get_transform("coarsen_position")(_cols([PLAIN_POINT, 31.2304]), {"cell_deg": 0.01}, _ctx())
    assert orjson.loads(cols.value[0]) == {"latitude": 31.235, "longitude": 121.475}
    assert orjson.loads(cols.value[1]) == 31.235
    with pytest.raises(InputError, match="valid: square, h3"):
        get_transform("coarsen_position")(_cols([PLAIN_POINT]), {"grid": "hex"}, _ctx())


def test_coarsen_time_floors_to_the_bucket() -> None:
    cols = get_transform("coarsen_time")(_cols([1.0, 2.0]), {"bucket_s": 3600}, _ctx())
    assert all(ts % 3_600_000 == 0 for ts in cols.ts_ms)


def test_suppress_removes_positions_in_zones_noted_or_found_now() -> None:
    zones = load_pack("cn-auto").zones
    noted = get_transform("suppress_sensitive_positions")(_cols([PLAIN_POINT], zone="z1"), {}, _ctx(zones=zones))
    found = get_transform("suppress_sensitive_positions")(_cols([ZONE_POINT, PLAIN_POINT]), {}, _ctx(zones=zones))
    assert len(noted) == 0 and len(found) == 1 and orjson.loads(found.value[0]) == PLAIN_POINT


def test_images_leave_only_when_anonymised() -> None:
    values = [{"frame": "blob:1"}, {"frame": "blob:2", "anonymised": True}, "Standby"]
    cols = get_transform("anonymise_faces_plates")(_cols(values, tags="external_image"), {}, _ctx())
    assert [orjson.loads(v) for v in cols.value] == values[1:]


def test_direct_identifiers_are_dropped() -> None:
    cols = get_transform("drop_direct_identifiers")(_cols(["VIN-LIKE"], tags="identifier"), {}, _ctx())
    assert len(cols) == 0


def test_merged_transforms_keep_the_more_protective_parameters_in_application_order() -> None:
    specs = [
        TransformSpec(name="pseudonymise"),
        TransformSpec(name="coarsen_position", params={"cell_deg": 0.01}),
        TransformSpec(name="aggregate", params={"epsilon": 2.0}),
        TransformSpec(name="coarsen_position", params={"cell_deg": 0.1}),
        TransformSpec(name="aggregate", params={"epsilon": 0.5}),
        TransformSpec(name="drop_direct_identifiers"),
    ]
    merged = merge_specs(specs)
    assert [s.name for s in merged] == ["drop_direct_identifiers", "coarsen_position", "aggregate", "pseudonymise"]
    assert merged[1].params == {"cell_deg": 0.1} and merged[2].params == {"epsilon": 0.5}


def test_laplace_noise_is_unbiased_enough_and_clamped() -> None:
    noisy = laplace_counts([1000] * 2000, epsilon=1.0, sensitivity=1)
    assert abs(sum(noisy) / len(noisy) - 1000) < 0.5
    assert min(laplace_counts([0] * 100, epsilon=0.1, sensitivity=1)) >= 0
    with pytest.raises(InputError, match="positive"):
        laplace_counts([1], epsilon=0, sensitivity=1)


def test_unknown_transform_lists_the_valid_names() -> None:
    with pytest.raises(InputError, match="valid: aggregate, anonymise_faces_plates"):
        get_transform("blur")
