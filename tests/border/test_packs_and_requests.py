"""The outbound sections of the packs are law as data, and export requests refuse what they must."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from onshore.border.gate import BorderGate
from onshore.border.requests import load_request, parse_request
from onshore.border.service import BorderService
from onshore.errors import InputError, RulePackError, ValidationError
from onshore.rules.loader import RuleBook, load_pack
from onshore.rules.schema import Confidence
from tests.border.helpers import Plant, basis, plant, request, utc
from tests.conftest import Workspace

PACKS_DIR = Path(__file__).resolve().parents[2] / "src" / "onshore" / "rules" / "packs"


@pytest.mark.parametrize("name", ["cn-auto", "eu-gdpr"])
def test_every_outbound_rule_has_a_source_and_unconfirmed_ones_are_held_back(name: str) -> None:
    pack = load_pack(name)
    gate = BorderGate(pack)  # checks that every cited instrument is listed by the pack
    outbound = pack.pack.outbound
    assert outbound is not None
    for rule in outbound.rules():
        assert rule.source.article and rule.source.instrument in pack.pack.instruments
        assert rule.active == (rule.source.confidence is not Confidence.UNCONFIRMED)
    held = {r.id for r in outbound.rules() if not r.active}
    assert held.isdisjoint({r.id for r in gate.class_rules} | {t.id for t in gate.thresholds})


def test_thresholds_switch_on_2024_03_22() -> None:
    gate = BorderGate(load_pack("cn-auto"))
    assert gate.counting_needs(utc("2024-03-21")) == [
        ("pi", dt.date(2023, 1, 1)),
        ("processor_pi", None),
        ("sensitive_pi", dt.date(2023, 1, 1)),
    ]
    assert gate.counting_needs(utc("2024-03-22")) == [
        ("pi_non_sensitive", dt.date(2024, 1, 1)),
        ("sensitive_pi", dt.date(2024, 1, 1)),
    ]
    # local midnight in Beijing: 2024-03-21T16:30Z is already the 22nd there
    assert gate.counting_needs(dt.datetime(2024, 3, 21, 16, 30, tzinfo=dt.UTC))[0][0] == "pi_non_sensitive"


def test_an_unconfirmed_rule_applies_once_switched_on(workspace: Workspace) -> None:
    """The TC260 draft's "no location abroad" is [U]: held back unless the operator enables it."""
    at = utc("2024-06-15")
    plant(workspace.runtime, "cn", [Plant("Location", 2)], at - dt.timedelta(days=1))
    basis(workspace.runtime, "cn", "cn-scc-1", "standard_contract")
    assert workspace.runtime.border.decide(request("cn", at), at=at).classes[0].decision == "transform"
    strict = RuleBook.load(["cn-auto", "eu-gdpr"], enable_unconfirmed=["cn.out.tc260-location-draft"])
    border = BorderService(strict, workspace.runtime.regions, base_dir=workspace.folder)
    denied = border.decide(request("cn", at), at=at).classes[0]
    assert denied.decision == "deny" and "cn.out.tc260-location-draft" in {r.rule for r in denied.reasons}


def test_a_pack_citing_an_unlisted_instrument_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((PACKS_DIR / "eu-gdpr.yaml").read_text())
    raw["outbound"]["basis_scope"]["source"]["instrument"] = "nowhere-2030"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(raw))
    with pytest.raises(RulePackError, match="nowhere-2030"):
        BorderGate(load_pack(str(broken)))


def test_a_pack_naming_an_unknown_route_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((PACKS_DIR / "eu-gdpr.yaml").read_text())
    raw["outbound"]["classes"][0]["routes"].append("teleport")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(raw))
    with pytest.raises(RulePackError, match="route 'teleport' is not in outbound.routes"):
        load_pack(str(broken))


def test_a_vin_in_a_request_is_refused_without_being_echoed() -> None:
    body = {
        "region": "cn",
        "destination": "DE",
        "recipient": "acme-gmbh",
        "purpose": "diagnostics",
        "since": "2024-05-01T00:00:00+08:00",
        "until": "2024-06-01T00:00:00+08:00",
        "vehicles": ["LSVM0TEST00000001"],
    }
    with pytest.raises(ValidationError) as caught:
        parse_request(body)
    assert "looks like a VIN" in caught.value.message and "LSVM0TEST00000001" not in str(caught.value.details)
    assert "LSVM0TEST00000001" not in caught.value.message


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"since": "2024-05-01T00:00:00"}, "UTC offset"),
        ({"until": "2024-04-01T00:00:00+08:00"}, "until must be after since"),
        ({"fleet": None}, "exactly one of vehicles"),
        ({"destination": "Germany"}, "destination"),
        ({"signals": ["not a signal"]}, "signal"),
    ],
)
def test_malformed_requests_name_the_field(over: dict[str, object], message: str) -> None:
    body = {
        "region": "cn",
        "destination": "DE",
        "recipient": "acme-gmbh",
        "purpose": "diagnostics",
        "since": "2024-05-01T00:00:00+08:00",
        "until": "2024-06-01T00:00:00+08:00",
        "fleet": "all",
        **over,
    }
    with pytest.raises(ValidationError, match=message):
        parse_request(body)


def test_request_files_are_yaml_or_json(tmp_path: Path) -> None:
    good = tmp_path / "r.yaml"
    good.write_text(
        "region: cn\ndestination: DE\nrecipient: acme-gmbh\npurpose: diagnostics\n"
        "since: 2024-05-01T00:00:00+08:00\nuntil: 2024-06-01T00:00:00+08:00\nfleet: all\n"
    )
    req = load_request(good)
    assert req.since.utcoffset() == dt.timedelta(hours=8) and req.format == "parquet"
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="mapping"):
        load_request(bad)
    vehicles = parse_request({**req.model_dump(mode="json"), "fleet": None, "vehicles": ["ab" * 16, "cd" * 16]})
    assert vehicles.public_dict()["vehicles"]["count"] == 2  # refs never travel in the manifest
