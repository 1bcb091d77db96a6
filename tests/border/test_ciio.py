"""A CIIO: any personal information abroad needs a security assessment (2024 Provisions); without the status the
volume thresholds apply. The status comes from `processor.ciio` and is recorded in the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from onshore.config import load_settings
from onshore.ledger import MerkleLog
from onshore.runtime import Runtime
from tests.border.helpers import Plant, basis, plant, request, utc
from tests.conftest import Workspace

TRIP = (Plant("MilesToArrival", 3),)  # non-sensitive personal information of 3 people
AT = utc("2026-05-04")


def _runtime(ws: Workspace, ciio: bool) -> Runtime:
    text = ws.config.read_text(encoding="utf-8")
    ws.config.write_text(text + f'\n[processor]\nname = "Test Motors"\nciio = {str(ciio).lower()}\n', encoding="utf-8")
    return Runtime(load_settings(Path(ws.config), env={}))


def _trip_class(rt: Runtime, **req: object) -> tuple[str, list[str], list[str]]:
    decision = rt.border.decide(request("cn", AT, **req), at=AT)
    (c,) = [c for c in decision.classes if c.data_class.rule_id == "cn.sig.trip"]
    return c.decision, [r.rule for r in c.reasons], [r.article for r in c.reasons]


@pytest.mark.parametrize(
    ("ciio", "bases", "expect", "cites"),
    [
        # non-CIIO, 3 people < 100,000: the volume exemption, exemption (6) of the 2024 Provisions
        (False, (), "transform", "cn.out.2024.pi"),
        # CIIO, no basis: denied, citing the CIIO rule of the 2024 Provisions
        (True, (), "deny", "cn.out.2024.ciio"),
        # CIIO with a standard contract: still denied (only an assessment, or a recorded exemption, will do)
        (True, (("scc-1", "standard_contract"),), "deny", "cn.out.2024.ciio"),
        # CIIO with an approved security assessment in scope: leaves
        (True, (("sa-1", "security_assessment"),), "transform", "cn.out.2024.ciio"),
    ],
)
def test_the_ciio_status_decides_what_personal_information_needs(
    workspace: Workspace, ciio: bool, bases: tuple[tuple[str, str], ...], expect: str, cites: str
) -> None:
    rt = _runtime(workspace, ciio)
    try:
        plant(rt, "cn", TRIP, utc("2026-05-01"))
        for basis_id, route in bases:
            basis(rt, "cn", basis_id, route, approved_on="2026-01-05")
        decision, rules, articles = _trip_class(rt)
        assert decision == expect, (rules, articles)
        assert cites in rules
        if ciio:
            assert "cn.out.2024.pi" not in rules, "the non-CIIO thresholds do not apply to a CIIO"
            assert any("a CIIO provides personal information" in a for a in articles)
    finally:
        rt.close()


def test_the_profile_is_recorded_in_the_ledger_once_per_change(workspace: Workspace) -> None:
    region = workspace.runtime.regions["cn"]

    def profile_events() -> list[bytes]:
        with region.store.read("events") as conn:
            log = MerkleLog("cn")
            return [e for e in log.entries(conn, 0, log.tree_size(conn)) if b'"kind":"profile_change"' in e]

    assert profile_events() == [], "a default profile is not recorded"
    _runtime(workspace, True).close()
    Runtime(load_settings(Path(workspace.config), env={})).close()  # unchanged: nothing new
    events = profile_events()
    assert len(events) == 1 and b'"ciio":1' in events[0] and b"Test Motors" not in events[0]
