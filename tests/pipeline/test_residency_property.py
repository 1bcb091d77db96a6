"""Property: for random fleets, configs and batches, no record of origin X is ever stored in a region
of another jurisdiction (Provisions Art. 11: data stays in the country that collected it)."""

from __future__ import annotations

import contextlib
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from onshore.config import load_settings
from onshore.errors import InputError
from onshore.runtime import Runtime

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
SIGNALS = [
    "VehicleSpeed",
    "Odometer",
    "Soc",
    "Location",
    "MediaNowPlayingTitle",
    "VendorThing",
    "Vehicle.Speed",
]

vins = st.text(alphabet=VIN_ALPHABET, min_size=17, max_size=17)
fleet = st.lists(st.tuples(vins, st.sampled_from(["CN", "EU"])), min_size=1, max_size=6, unique_by=lambda v: v[0])
region_layout = st.lists(
    st.tuples(st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6), st.sampled_from(["CN", "EU"])),
    min_size=2,
    max_size=4,
    unique_by=lambda r: r[0],
).filter(lambda rs: {j for _, j in rs} == {"CN", "EU"})


def _value(signal: str, draw_float: float) -> object:
    if signal == "Location":
        return {"latitude": 30 + draw_float % 10, "longitude": 100 + draw_float % 20}
    if signal == "MediaNowPlayingTitle":
        return "Invented Song"
    return abs(draw_float) % 1000


record_st = st.fixed_dictionaries(
    {
        "signal": st.sampled_from(SIGNALS),
        "x": st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        "claim": st.sampled_from([None, None, None, "vin", "country"]),
        "msg": st.integers(min_value=0, max_value=40),
    }
)


def _config(folder: Path, layout: list[tuple[str, str]]) -> Path:
    parts = ['[rules]\npacks = ["cn-auto", "eu-gdpr"]\n']
    for name, jurisdiction in layout:
        parts.append(
            f'[regions.{name}]\njurisdiction = "{jurisdiction}"\nlocation = "{name}-site"\n'
            f'record_store = "sqlite:///data/{name}.sqlite"\nblob_store = "file://data/{name}/blobs"\n'
            f'key_store = "file://data/{name}/keys"\nsqlite_synchronous = "OFF"\n'
        )
    path = folder / "onshore.toml"
    path.write_text("\n".join(parts))
    return path


# Shrinking real-database examples can take minutes; a failure prints its seed to reproduce instead.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    layout=region_layout,
    vehicles=fleet,
    batches=st.lists(
        st.tuples(st.integers(0, 5), st.lists(record_st, min_size=1, max_size=15)), min_size=1, max_size=8
    ),
    consent=st.booleans(),
)
def test_no_record_is_ever_stored_outside_its_origin_jurisdiction(layout, vehicles, batches, consent) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(load_settings(_config(Path(tmp), layout), env={}), create=True)
        try:
            registered = [runtime.vehicles.add(vin, market).vehicle for vin, market in vehicles]
            if consent:
                for v in registered:
                    owner = runtime.consents.subject_at_vehicle(v, None)
                    sensitive = "separate" if v.market == "CN" else "ordinary"  # GDPR: location is not special
                    for purpose, level in (
                        ("navigation", sensitive),
                        ("infotainment", "ordinary"),
                        ("vehicle_services", "ordinary"),
                    ):
                        runtime.consents.grant(owner, purpose, level, "7d", actor_role="officer")
            for who, recs in batches:
                vehicle = registered[who % len(registered)]
                body = []
                for r in recs:
                    rec = {
                        "msg_id": f"m{r['msg']}",
                        "ts": 1_700_000_000_000,
                        "signal": r["signal"],
                        "value": _value(r["signal"], r["x"]),
                    }
                    if r["claim"]:
                        # the payload lies about where it comes from: never trusted
                        rec[r["claim"]] = "EU" if vehicle.market == "CN" else "CN"
                    body.append(rec)
                with contextlib.suppress(InputError):  # lying payloads are refused whole
                    runtime.ingest.ingest_records(vehicle, body)
            for name, region in runtime.regions.items():
                origins = region.store.origins()
                assert set(origins) <= {region.jurisdiction}, f"region {name} holds {origins}"
            stored = sum(sum(r.store.origins().values()) for r in runtime.regions.values())
            assert stored <= sum(len(recs) for _, recs in batches)
        finally:
            runtime.close()
