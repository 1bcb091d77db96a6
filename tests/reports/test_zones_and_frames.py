"""The annual report over activity with a sensitive-zone record and camera frames (stored and not collected): every
figure it states is the one the test computes from what it did (the shared known activity has neither)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from onshore import clock
from onshore.reports.verify import report_text, stated_figures, verify_report
from onshore.sim.cameras import synthetic_frame
from onshore.vision.ingest import POSITION_HEADER
from tests.conftest import CN_VIN, Workspace, auth, record
from tests.reports.known import NOW, ms, write

ZONE = {"latitude": 26.6475, "longitude": 106.71}  # inside cn-auto's illustrative sensitive zone


def test_zone_records_and_frames_are_counted_in_the_annual_report(workspace: Workspace, client: TestClient) -> None:
    rt = workspace.runtime
    with clock.frozen(ms(NOW)):
        token = rt.vehicles.add(CN_VIN, "CN").token
        rt.consents.grant(rt.vehicles.owner_of(CN_VIN, "CN"), "navigation", "separate", "90d", actor_role="officer")
        ts = ms(NOW) - 60_000
        body = [record("z1", "Location", ZONE, ts), record("z2", "MilesToArrival", 12, ts)]
        r = client.post("/v1/ingest", json=body, headers=auth(token))
        assert r.status_code == 200 and r.json()["accepted"] == 2 and r.json()["zone_hits"] == 1, r.text
        stored_frames = 0
        for msg_id, position in (("f-street", "31.2304,121.4737"), ("f-zone", "26.6475,106.71")):
            r = client.post(
                "/v1/frames",
                params={"msg_id": msg_id, "camera": "front", "ts": str(ts)},
                content=synthetic_frame(3),
                headers={**auth(token), "Content-Type": "image/jpeg", POSITION_HEADER: position},
            )
            assert r.status_code == 200, r.text
            stored_frames += int(r.json()["stored"])
            assert r.json()["stored"] == (msg_id == "f-street"), r.json()
    expected = {
        "collect.received": 2,
        "collect.dropped_no_consent": 0,
        "store.records_stored": 2 + stored_frames,
        "frames.received": 2,
        "consent.granted": 1,
    }
    path = write(workspace, "annual", "en", "md")
    stated = stated_figures(report_text(path))
    assert {k for k, _ in stated} >= set(expected)
    for key, value in stated:
        assert value == expected.get(key, 0), (key, value)  # nothing else happened: every other figure is 0
    assert verify_report(rt, path).ok
