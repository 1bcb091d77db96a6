"""Transfer bases: validity by approval date, re-application windows, lifecycle, and their ledger events."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from onshore.border import dates
from onshore.border.bases import parse_spec
from onshore.errors import ConflictError, InputError, NotFoundError, ValidationError
from onshore.ledger import MerkleLog
from onshore.ledger.event_check import event_problems
from tests.border.helpers import basis
from tests.conftest import Workspace


def _spec(**over: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "id": "cn-sa-1",
        "region": "cn",
        "route": "security_assessment",
        "scope": {
            "categories": ["important"],
            "purposes": ["diagnostics"],
            "recipient": "acme-gmbh",
            "destinations": ["DE"],
        },
    }
    spec.update(over)
    return spec


@pytest.mark.parametrize(
    ("approved_on", "expires_on", "reapply_from", "rule"),
    [
        # 2022 Measures Art. 14: 2 years; re-declare 60 working days before expiry
        ("2022-10-01", "2024-10-01", "2024-07-09", "cn.out.validity-2022"),
        ("2024-03-21", "2026-03-21", "2025-12-29", "cn.out.validity-2022"),
        # 2024 Provisions: 3 years from 2024-03-22 on; extension within 60 working days before expiry
        ("2024-03-22", "2027-03-22", "2026-12-28", "cn.out.validity-2024"),
        ("2024-02-29", "2026-02-28", "2025-12-08", "cn.out.validity-2022"),
    ],
)
def test_assessment_validity_follows_the_rules_in_force_on_the_approval_date(
    workspace: Workspace, approved_on: str, expires_on: str, reapply_from: str, rule: str
) -> None:
    border = workspace.runtime.border
    border.add_basis(parse_spec(_spec()), actor_role="officer")
    approved = border.approve_basis("cn-sa-1", approved_on=dt.date.fromisoformat(approved_on), actor_role="officer")
    assert approved.expires_on == dt.date.fromisoformat(expires_on)
    assert approved.reapply_from == dt.date.fromisoformat(reapply_from)
    assert approved.validity_rule == rule
    # 60 working days back from the expiry date (59 after the start when the expiry falls on a weekend)
    assert approved.reapply_from is not None
    assert dates.working_days_before(approved.expires_on, 60) == approved.reapply_from


def test_reapplication_window_and_status_are_shown_on_a_date(workspace: Workspace) -> None:
    basis(workspace.runtime, "cn", "cn-sa-1", "security_assessment", approved_on="2024-04-01")
    b = workspace.runtime.border.bases.get("cn-sa-1")
    before = b.to_dict(dt.date(2026, 12, 1))
    assert before["status_on_date"] == "approved" and not before["in_reapply_window"]
    inside = b.to_dict(dt.date(2027, 1, 15))
    assert inside["in_reapply_window"] and inside["working_days_to_expiry"] == 54
    assert b.to_dict(dt.date(2027, 4, 1))["status_on_date"] == "expired"
    assert b.to_dict(dt.date(2024, 3, 1))["status_on_date"] == "pending"


def test_working_days_skip_weekends() -> None:
    friday = dt.date(2024, 5, 10)
    assert dates.working_days_before(dt.date(2024, 5, 13), 1) == friday  # Monday -> Friday
    assert dates.working_days_between(friday, dt.date(2024, 5, 13)) == 1
    assert dates.working_days_between(friday, friday) == 0
    assert dates.add_years(dt.date(2024, 2, 29), 3) == dt.date(2027, 2, 28)


def test_lifecycle_changes_are_ledger_events_without_personal_data(workspace: Workspace) -> None:
    border = workspace.runtime.border
    border.add_basis(parse_spec(_spec(reference="CAC-2024-0815")), actor_role="officer")
    border.approve_basis("cn-sa-1", approved_on=dt.date(2024, 6, 3), actor_role="officer")
    with pytest.raises(ConflictError, match="only a draft"):
        border.approve_basis("cn-sa-1", approved_on=dt.date(2024, 6, 3), actor_role="officer")
    border.revoke_basis("cn-sa-1", actor_role="officer")
    with pytest.raises(ConflictError, match="already revoked"):
        border.revoke_basis("cn-sa-1", actor_role="officer")
    log = MerkleLog("cn")
    with workspace.runtime.regions["cn"].store.read("test") as conn:
        entries = log.entries(conn, 0, log.tree_size(conn))
    events = [orjson.loads(e) for e in entries]
    assert [(e["kind"], e["basis_id"], sorted(e["counts"])) for e in events] == [
        ("basis_change", "cn-sa-1", ["added", "version"]),
        ("basis_change", "cn-sa-1", ["approved", "version"]),
        ("basis_change", "cn-sa-1", ["revoked", "version"]),
    ]
    assert all(event_problems(e, "cn")[1] == [] for e in entries)
    assert len({e["digest"] for e in events}) == 3
    assert border.bases.get("cn-sa-1").status == "revoked"


@pytest.mark.parametrize(
    ("over", "error", "message"),
    [
        ({"route": "volume_exemption"}, InputError, "needs no basis"),
        ({"route": "teleport"}, InputError, "valid: security_assessment"),
        ({"region": "mars"}, NotFoundError, "not configured"),
        (
            {
                "scope": {
                    "categories": ["important"],
                    "purposes": ["diagnostics"],
                    "recipient": "acme-gmbh",
                    "destinations": ["CN"],
                }
            },
            InputError,
            "not abroad",
        ),
        ({"conditions": [{"name": "blur_everything"}]}, InputError, "valid: aggregate"),
        (
            {
                "scope": {
                    "categories": ["important"],
                    "purposes": ["sightseeing"],
                    "recipient": "acme-gmbh",
                    "destinations": ["DE"],
                }
            },
            InputError,
            "not in rule pack",
        ),
        ({"id": "LSVM0TEST00000001"}, ValidationError, "id"),
    ],
)
def test_invalid_bases_are_refused_with_the_reason(
    workspace: Workspace, over: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        workspace.runtime.border.add_basis(parse_spec(_spec(**over)), actor_role="officer")


def test_derogation_needs_a_known_key_and_duplicate_ids_conflict(workspace: Workspace) -> None:
    border = workspace.runtime.border
    eu = {
        "id": "eu-der-1",
        "region": "eu",
        "route": "derogation",
        "scope": {
            "categories": ["personal"],
            "purposes": ["diagnostics"],
            "recipient": "acme-gmbh",
            "destinations": ["CN"],
        },
    }
    with pytest.raises(InputError, match="derogation None is unknown"):
        border.add_basis(parse_spec(eu), actor_role="officer")
    border.add_basis(parse_spec({**eu, "derogation": "legal_claims"}), actor_role="officer")
    with pytest.raises(ConflictError, match="exists"):
        border.add_basis(parse_spec({**eu, "derogation": "legal_claims"}), actor_role="officer")


def test_a_route_without_statutory_validity_takes_the_contract_term(workspace: Workspace) -> None:
    border = workspace.runtime.border
    spec = _spec(id="cn-scc-1", route="standard_contract", expires_on="2026-06-30")
    border.add_basis(parse_spec(spec), actor_role="officer")
    approved = border.approve_basis("cn-scc-1", approved_on=dt.date(2024, 7, 1), actor_role="officer")
    assert approved.expires_on == dt.date(2026, 6, 30) and approved.reapply_from is None
    border.add_basis(parse_spec(_spec(id="cn-sa-old")), actor_role="officer")
    with pytest.raises(InputError, match="write expires_on"):  # before the 2022 Measures: no validity rule
        border.approve_basis("cn-sa-old", approved_on=dt.date(2022, 1, 10), actor_role="officer")
