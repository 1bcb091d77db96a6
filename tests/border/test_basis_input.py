"""A basis is checked whole when it is recorded: conditions with their ranges, dates within the calendar the
border takes, and no identifier the product knows in any of its text (it leaves with every export)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from onshore.border.conditions import PARAMS, check_conditions
from onshore.errors import ValidationError
from onshore.rules.outbound import TransformSpec
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, auth

SCOPE = {"categories": ["general"], "purposes": ["diagnostics"], "recipient": "acme-gmbh", "destinations": ["DE"]}


def _add(client: TestClient, ws: Workspace, **spec: Any) -> Any:
    body = {"id": "ti-1", "region": "cn", "route": "standard_contract", "scope": SCOPE, **spec}
    return client.post("/v1/border/bases", json=body, headers=auth(ws.token("officer")))


def test_a_registered_vin_glued_into_text_is_found_by_its_pseudonym(workspace: Workspace, client: TestClient):
    workspace.runtime.vehicles.add(CN_VIN, "CN")
    refused = _add(client, workspace, reference=f"REF{CN_VIN}X")
    assert refused.status_code == 422
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["reference"]
    assert "registered vehicle" in refused.json()["error"]["message"] and CN_VIN not in refused.text
    # the same shape around a VIN nobody registered is only text (it is not a standalone VIN-shaped token)
    assert _add(client, workspace, reference=f"REF{CN_VIN_2}X").status_code == 201


def test_ordinary_references_notes_and_conditions_are_accepted(workspace: Workspace, client: TestClient):
    workspace.runtime.vehicles.add(CN_VIN, "CN")
    conditions = [
        {"name": "coarsen_position", "params": {"cell_deg": 0.1}},
        {"name": "coarsen_time", "params": {"bucket_s": 3600}},
        {
            "name": "aggregate",
            "params": {"cell_deg": 0.5, "bucket_s": 86400, "epsilon": 1.0, "min_count": 5, "max_cells_per_vehicle": 1},
        },  # fmt: skip
        {"name": "drop_direct_identifiers", "params": {"tags": "identifier,sensitive_area"}},
        {"name": "pseudonymise"},
    ]
    created = _add(
        client,
        workspace,
        reference="CAC-2024-0815 / SCC filing 2024-17",
        note="Recipient Acme Diagnostics GmbH, Munich; reviewed 2024-05-01 at 14:30.",
        attestations=["subjects_informed"],
        conditions=conditions,
        expires_on="2199-12-31",
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("condition", "field", "words"),
    [
        (TransformSpec(name="coarsen_time", params={"bucket_s": 0}), "conditions[0].params.bucket_s", "[1, "),
        (TransformSpec(name="aggregate", params={"epsilon": 0}), "conditions[0].params.epsilon", "(0, 100]"),
        (TransformSpec(name="coarsen_position", params={"grid": "hex"}), "conditions[0].params.grid", "square, h3"),
        (TransformSpec(name="aggregate", params={"sigma": 1}), "conditions[0].params.sigma", "valid: bucket_s"),
        (TransformSpec(name="teleport"), "conditions[0].name", "valid: aggregate"),
    ],
)
def test_a_condition_out_of_range_names_the_field_and_the_range(condition, field, words) -> None:
    with pytest.raises(ValidationError) as raised:
        check_conditions([condition])
    assert raised.value.details[0]["field"] == field and words in raised.value.message


def test_every_transform_has_a_parameter_table() -> None:
    from onshore.deid.transforms import TRANSFORM_NAMES

    assert set(PARAMS) == set(TRANSFORM_NAMES)
