"""A synthetic connected-vehicle fleet for the demo and the benchmarks.

Everything it produces is made up and deterministic from a seed: VINs, routes, media, values. It
never reads real trajectories.

    >>> from onshore.sim import FleetSimulator, make_fleet
    >>> fleet = FleetSimulator(make_fleet(3, seed=1), start_ms=1_700_000_000_000)
    >>> batches = fleet.records_ndjson(1_000, max_records=200)
    >>> sum(body.count(b"\\n") for _, body in batches)
    1000
"""

from onshore.sim.client import BatchResult, FleetRunSummary, run_fleet_http
from onshore.sim.fleet import FleetSimulator, SimBatch, encode_ndjson, make_fleet
from onshore.sim.routes import CITIES, City, GridRoute, SensitiveZone, load_zones
from onshore.sim.vehicle import SimulatedVehicle
from onshore.sim.vins import synthetic_vin, vin_is_well_formed

__all__ = [
    "CITIES",
    "BatchResult",
    "City",
    "FleetRunSummary",
    "FleetSimulator",
    "GridRoute",
    "SensitiveZone",
    "SimBatch",
    "SimulatedVehicle",
    "encode_ndjson",
    "load_zones",
    "make_fleet",
    "run_fleet_http",
    "synthetic_vin",
    "vin_is_well_formed",
]
