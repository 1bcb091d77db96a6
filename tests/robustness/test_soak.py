"""A short soak of a real `onshore serve` (`onshore.sim.robustness.soak`): ten seconds at a modest steady rate,
every request answered 200, every acknowledged record stored once, nothing personal in the server's output and
its memory flat. `bench/robustness.py` runs the real soak (minutes, at half the measured capacity) and reports
the latency growth too, which a ten-second run on a shared test machine cannot judge."""

from __future__ import annotations

from pathlib import Path

from onshore.sim.robustness.faults import make_deployment
from onshore.sim.robustness.soak import soak


def test_a_steady_stream_for_ten_seconds_is_answered_without_errors_and_memory_stays_flat(tmp_path: Path) -> None:
    deployment = make_deployment(tmp_path, vehicles=4)
    deployment.start()
    try:
        report = soak(deployment, rate_records_per_s=600, duration_s=10, batch=50, threads=2, warmup_s=2)
    finally:
        deployment.stop()
    summary = report.to_dict()
    assert report.requests >= 100 and report.errors == 0, summary
    assert report.lost == 0 and report.duplicates == 0 and report.log_leaks == 0, summary
    assert report.rss_growth_ratio < 1.5, summary
    assert report.p50_start_ms > 0 and report.p99_end_ms >= report.p50_end_ms, summary
