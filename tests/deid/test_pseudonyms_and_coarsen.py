"""De-identification primitives shared by ingest (minimise) and the border."""

from __future__ import annotations

import numpy as np

from onshore.deid.coarsen import round_position, snap_to_cell
from onshore.deid.pseudonyms import pseudonym, recipient_key
from tests.conftest import CN_VIN


def test_a_pseudonym_is_stable_under_one_key_and_differs_under_another() -> None:
    one, two = b"a" * 32, b"b" * 32
    assert pseudonym(one, CN_VIN) == pseudonym(one, CN_VIN)
    assert pseudonym(one, CN_VIN) != pseudonym(two, CN_VIN)
    assert len(pseudonym(one, CN_VIN)) == 32 and CN_VIN not in pseudonym(one, CN_VIN)


def test_recipients_get_keys_of_their_own() -> None:
    region = b"r" * 32
    assert recipient_key(region, "acme-de") != recipient_key(region, "acme-us")
    assert pseudonym(recipient_key(region, "acme-de"), "vref") != pseudonym(recipient_key(region, "acme-us"), "vref")


def test_positions_are_rounded_to_the_packs_decimals_and_other_values_pass() -> None:
    assert round_position({"latitude": 26.5712345, "longitude": 106.7098765}, 4) == {
        "latitude": 26.5712,
        "longitude": 106.7099,
    }
    assert round_position(26.5712345, 2) == 26.57
    assert round_position("P", 2) == "P" and round_position(7, 2) == 7


def test_snapping_a_scalar_and_an_array_agree_on_the_cell_centre() -> None:
    xs = np.array([26.5712, 26.5799, -0.0001, 0.0])
    snapped = snap_to_cell(xs, 0.01)
    assert snapped.tolist() == [26.575, 26.575, -0.005, 0.005]
    assert [snap_to_cell(float(x), 0.01) for x in xs] == snapped.tolist()
    assert isinstance(snap_to_cell(1.0, 0.5), float)
