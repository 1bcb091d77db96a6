"""`onshore demo`: the embedded default end to end, with a simulated fleet and a live summary."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from onshore import clock
from onshore.cli_tables import DataTable, data_table, fields, number
from onshore.config import load_settings
from onshore.errors import ConflictError
from onshore.runtime import Runtime
from onshore.sim.cameras import send_frames
from onshore.sim.client import BatchResult, run_fleet_http
from onshore.sim.fleet import FleetSimulator, make_fleet
from onshore.web.app import create_app
from onshore.web.routes import region_stats
from onshore.web.server import ServerThread
from onshore.workspace import init_workspace

MARKER = ".onshore-demo"
# Consents a share of simulated owners give (the rest give none: their personal data is not collected).
DEMO_CONSENTS = (
    ("navigation", "separate"),
    ("driving_safety", "separate"),
    ("infotainment", "ordinary"),
    ("vehicle_services", "ordinary"),
    ("charging", "ordinary"),
)


@dataclass(frozen=True)
class DemoOptions:
    vehicles: int
    duration_s: float
    n_ticks: int
    folder: Path
    consent_share: float = 0.7
    seed: int = 2021
    quick: bool = False
    camera_vehicles: int = 4  # vehicles that also upload three camera frames each

    @classmethod
    def for_mode(cls, *, quick: bool, vehicles: int | None, duration_s: float | None, folder: Path) -> DemoOptions:
        if quick:
            return cls(vehicles or 12, duration_s or 20.0, 60, folder, quick=True)
        return cls(vehicles or 60, duration_s or 30.0, 7200, folder)


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: Counter[str] = field(default_factory=Counter)
    by_category: dict[str, Counter[str]] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    duplicate: Counter[str] = field(default_factory=Counter)
    zone_hits: Counter[str] = field(default_factory=Counter)
    unclassified: set[str] = field(default_factory=set)
    errors: Counter[int] = field(default_factory=Counter)

    def add(self, result: BatchResult) -> None:
        with self.lock:
            body = result.body or {}
            if result.status != 200 or "region" not in body:
                self.errors[result.status] += 1
                return
            region = body["region"]
            self.accepted[region] += body["accepted"]
            self.by_category.setdefault(region, Counter()).update(body["by_category"])
            self.dropped[region] += body["dropped_no_consent"]
            self.duplicate[region] += body["duplicate"]
            self.zone_hits[region] += body["zone_hits"]
            self.unclassified.update(body["unclassified_signals"])

    def table(self, elapsed_s: float) -> DataTable:
        with self.lock:
            counts = ("stored", "PI", "sensitive", "important", "general", "no consent", "zone", "dups")
            table = data_table(["region", *map(number, counts)], title=f"onshore demo — {elapsed_s:.0f} s (live)")
            for region in sorted(set(self.accepted) | set(self.dropped)):
                cats = self.by_category.get(region, Counter())
                table.add_row(
                    region,
                    self.accepted[region],
                    cats["personal"],
                    cats["sensitive_personal"],
                    cats["important"],
                    cats["general"],
                    self.dropped[region],
                    self.zone_hits[region],
                    self.duplicate[region],
                )
            return table


def _level(runtime: Any, vehicle: Any, purpose: str, level: str) -> str:
    """A separate consent where the pack lets the purpose process sensitive data, else an ordinary one."""
    pack = runtime.rulebook.for_jurisdiction(vehicle.market).pack
    allowed = next((p.sensitive_allowed for p in pack.purposes if p.id == purpose), False)
    return level if allowed else "ordinary"


def prepare_folder(folder: Path) -> Path:
    """Recreate the demo workspace; refuses to delete a folder that is not a demo workspace."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise ConflictError(f"{folder} exists and is not an onshore demo workspace; choose another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("created by `onshore demo`; recreated on each run\n")
    config, _ = init_workspace(folder)
    return config


def run_demo(options: DemoOptions, console: Console | None) -> dict[str, Any]:
    """Run the demo; returns the summary (printed by the CLI). ``console`` None runs silently."""
    config = prepare_folder(options.folder)
    runtime = Runtime(load_settings(config, env={}), create=True)
    try:
        vehicles = make_fleet(options.vehicles, options.seed)
        tokens: dict[str, str] = {}
        consenting = 0
        for i, sim_vehicle in enumerate(vehicles):
            issued = runtime.vehicles.add(sim_vehicle.vin, sim_vehicle.market)
            tokens[sim_vehicle.vin] = issued.token
            if i % 10 < options.consent_share * 10:
                consenting += 1
                for purpose, level in DEMO_CONSENTS:
                    owner = runtime.consents.subject_at_vehicle(issued.vehicle, None)
                    runtime.consents.grant(
                        owner, purpose, _level(runtime, issued.vehicle, purpose, level), "365d", actor_role="officer"
                    )
        start_ms = clock.now_ms() - options.n_ticks * 1000
        fleet = FleetSimulator(vehicles, start_ms, 1.0, unknown_signal_rate=0.001, duplicate_rate=0.01)
        server = ServerThread(create_app(runtime)).start()
        tally = _Tally()
        started = time.monotonic()
        try:
            if console is not None:
                console.print(
                    f"[bold]onshore demo[/]: API on {server.url}, {options.vehicles} simulated vehicles "
                    f"({consenting} owners consented), workspace {options.folder}"
                )
            outcome: dict[str, Any] = {}

            def drive() -> None:
                outcome["summary"] = run_fleet_http(
                    server.url,
                    fleet,
                    tokens,
                    n_ticks=options.n_ticks,
                    duration_s=options.duration_s,
                    batch_size=500,
                    concurrency=4,
                    flush_ticks=30,
                    on_result=tally.add,
                )

            driver = threading.Thread(target=drive, name="onshore-demo-fleet")
            driver.start()
            if console is not None:
                with Live(tally.table(0), console=console, refresh_per_second=4) as live:
                    while driver.is_alive():
                        driver.join(0.25)
                        live.update(tally.table(time.monotonic() - started))
            driver.join()
            # Camera frames beside the signals: a road frame, one inside a sensitive zone, a cabin frame.
            frames = send_frames(
                server.url,
                dict(list(tokens.items())[: options.camera_vehicles]),
                ts_ms=clock.now_ms() - 1000,
            )
        finally:
            server.stop()
        run = outcome["summary"]
        stats = region_stats(runtime)["regions"]
        by_category: Counter[str] = Counter()
        for region in stats.values():
            by_category.update(region["by_category"])
        summary = {
            "ok": not run.errors_by_status and sum(tally.errors.values()) == 0 and not frames.errors_by_status,
            "workspace": str(options.folder),
            "vehicles": options.vehicles,
            "vehicles_with_consent": consenting,
            "requests": run.requests,
            "records_sent": run.records_sent,
            "ingested": sum(region["records"] for region in stats.values()),
            "by_region": {name: region["records"] for name, region in stats.items()},
            "by_category": dict(by_category),
            "dropped_no_consent": run.dropped_no_consent,
            "duplicates": run.duplicate,
            "zone_hits": sum(tally.zone_hits.values()),
            "zone_records_stored": sum(region["zone_records"] for region in stats.values()),
            "unclassified_signals": sorted(tally.unclassified),
            "errors_by_status": {str(k): v for k, v in (run.errors_by_status or {}).items()},
            "frames_sent": frames.sent,
            "frames_stored": frames.stored,
            "frames_dropped": dict(frames.dropped),
            "records_per_s": round(run.records_per_s),
            "elapsed_s": round(time.monotonic() - started, 2),
        }
    finally:
        runtime.close()
    if console is not None:
        _print_summary(console, summary, config)
    return summary


def _print_summary(console: Console, summary: dict[str, Any], config: Path) -> None:
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(summary["frames_dropped"].items())) or "none"
    rows = [
        ("records sent by the fleet", summary["records_sent"]),
        ("stored, per region", ", ".join(f"{k}: {v}" for k, v in summary["by_region"].items())),
        ("stored, per category", ", ".join(f"{k}: {v}" for k, v in sorted(summary["by_category"].items()))),
        ("dropped: no consent (Art. 6(2), 8, 9)", summary["dropped_no_consent"]),
        ("duplicates ignored", summary["duplicates"]),
        ("positions in sensitive zones (Art. 3(1))", summary["zone_hits"]),
        ("unknown signals (kept as personal, reported)", ", ".join(summary["unclassified_signals"]) or None),
        (
            "camera frames (anonymised, in-region)",
            f"{summary['frames_stored']} of {summary['frames_sent']} stored; dropped {dropped}",
        ),
        ("throughput", f"{summary['records_per_s']} records/s over HTTP"),
    ]
    console.print(fields(rows, title="what onshore did"))
    console.print(f"Explore the workspace: onshore residency check -c {config}", highlight=False)
