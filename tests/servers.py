"""Real `onshore serve` processes for tests: the helpers live in `onshore.sim.servers` (the benchmarks use them
too); this module keeps the tests' import path."""

from onshore.sim.servers import rss_bytes, start_server, stop_server

__all__ = ["rss_bytes", "start_server", "stop_server"]
