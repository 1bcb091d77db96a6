"""Content of the shipped rule packs (cn-auto, eu-gdpr).

The packs are law as data; these tests pin what REGULATION.md states: every fleet-telemetry field is
classified exactly once, the §8 examples land in the right categories, and every rule cites a source
that resolves.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from onshore.ingest.fleet_telemetry.records import RECORD_TYPE_SIGNALS
from onshore.rules.schema import Category, Confidence, RulePack, SignalRule

REPO_ROOT = Path(__file__).parents[2]
PACKS_DIR = REPO_ROOT / "src" / "onshore" / "rules" / "packs"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FLEET_FIELDS_TSV = SHARED_DATA / "fleet-telemetry-fields.tsv"

PACK_NAMES = ["cn-auto", "eu-gdpr"]

# Fleet-telemetry fields whose content is undocumented.
UNDOCUMENTED_FIELD = re.compile(r"^(Unknown|Deprecated_\d+|Experimental_\d+)$")

# VSS paths that FLEET_TELEMETRY.md §2 names; each pack must classify them by exact name.
VSS_PATHS_IN_FLEET_TELEMETRY_MD = [
    "Vehicle.Speed",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.VehicleIdentification.VIN",
    "Vehicle.Cabin.Infotainment.Navigation.DestinationSet.Latitude",
    "Vehicle.Driver.HeartRate",
    "Vehicle.Driver.FatigueLevel",
    "Vehicle.Driver.Identifier.Subject",
    "Vehicle.Occupant.Row1.DriverSide.Identifier.Subject",
    "Vehicle.Cabin.Infotainment.Media.Played.Artist",
    "Vehicle.OutsideAirTemperature",
]

# Fields that carry the charging network's operating state (Auto Provisions Art. 3(3)).
CHARGING_NETWORK_FIELDS = [
    "DCChargingPower",
    "DCChargingEnergyIn",
    "ACChargingPower",
    "ACChargingEnergyIn",
    "ChargerVoltage",
    "ChargerPhases",
    "FastChargerPresent",
    "FastChargerType",
    "ChargingCableType",
]

# The vehicle's own battery and charge state: not charging-network operating data.
VEHICLE_BATTERY_FIELDS = ["Soc", "BatteryLevel", "ChargeLimitSoc", "ChargeState", "TimeToFullCharge"]


@cache
def load_pack(name: str) -> RulePack:
    with (PACKS_DIR / f"{name}.yaml").open(encoding="utf-8") as fh:
        return RulePack.model_validate(yaml.safe_load(fh))


def fleet_field_names() -> list[str]:
    """The 260 fleet-telemetry Field names; skips (or fails under CI=true) if the shared data is absent."""
    if not FLEET_FIELDS_TSV.is_file():
        message = f"shared data not found at {FLEET_FIELDS_TSV}; fleet-telemetry coverage cannot be checked"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    rows = FLEET_FIELDS_TSV.read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t")[1].strip() for row in rows if row.strip()]


def rules_naming(pack: RulePack, signal: str) -> list[SignalRule]:
    return [rule for rule in pack.signals if signal in rule.signals]


def rule_for(pack: RulePack, signal: str) -> SignalRule:
    rules = rules_naming(pack, signal)
    assert len(rules) == 1, f"{pack.pack}: {signal} is named by {[r.id for r in rules]}"
    return rules[0]


# --- loading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "jurisdiction"), [("cn-auto", "CN"), ("eu-gdpr", "EU")])
def test_pack_file_validates_against_the_schema(name: str, jurisdiction: str) -> None:
    pack = load_pack(name)
    assert pack.pack == name
    assert pack.jurisdiction == jurisdiction
    assert pack.version == "2026.11.0"
    assert pack.signals, "a pack without signal rules classifies everything by default"


def test_cn_pack_lists_the_chinese_instruments_with_their_dates() -> None:
    instruments = load_pack("cn-auto").instruments
    assert set(instruments) >= {
        "auto-provisions-2021",
        "outbound-measures-2022",
        "cross-border-provisions-2024",
        "auto-outbound-guidelines-2026",
        "pipl-2021",
        "gbt-41871-2022",
        "network-data-regulations-2024",
    }
    assert str(instruments["auto-provisions-2021"].in_force) == "2021-10-01"
    assert str(instruments["outbound-measures-2022"].in_force) == "2022-09-01"
    assert str(instruments["cross-border-provisions-2024"].issued) == "2024-03-22"
    assert str(instruments["auto-outbound-guidelines-2026"].issued) == "2026-02-03"
    assert str(instruments["pipl-2021"].in_force) == "2021-11-01"
    assert str(instruments["gbt-41871-2022"].in_force) == "2023-05-01"
    assert str(instruments["network-data-regulations-2024"].in_force) == "2025-01-01"


def test_eu_pack_lists_gdpr_and_the_edpb_connected_vehicle_guidelines() -> None:
    assert set(load_pack("eu-gdpr").instruments) == {"gdpr-2016", "edpb-connected-vehicles-2020"}


# --- fleet-telemetry coverage ----------------------------------------------------------------------


def test_fleet_telemetry_field_list_has_all_260_fields() -> None:
    names = fleet_field_names()
    assert len(names) == len(set(names)) == 260
    assert names[0] == "Unknown"


@pytest.mark.parametrize("name", PACK_NAMES)
def test_every_fleet_telemetry_field_is_claimed_by_exactly_one_rule(name: str) -> None:
    pack = load_pack(name)
    claims = {field: [rule.id for rule in rules_naming(pack, field)] for field in fleet_field_names()}
    unclaimed = sorted(field for field, rule_ids in claims.items() if not rule_ids)
    claimed_twice = {field: ids for field, ids in claims.items() if len(ids) > 1}
    assert not unclaimed, f"{name}: fields no rule classifies: {unclaimed}"
    assert not claimed_twice, f"{name}: fields classified by more than one rule: {claimed_twice}"


@pytest.mark.parametrize("name", PACK_NAMES)
def test_undocumented_fields_are_classified_like_the_conservative_default(name: str) -> None:
    pack = load_pack(name)
    default = pack.default_signal
    assert default.categories == [Category.PERSONAL]
    assert default.tags == ["unclassified"]
    assert default.purposes == ["vehicle_services"]
    undocumented = [field for field in fleet_field_names() if UNDOCUMENTED_FIELD.match(field)]
    assert len(undocumented) == 19  # Unknown, Deprecated_1..3, Experimental_1..15
    for field in undocumented:
        rule = rule_for(pack, field)
        assert rule.categories == default.categories, rule.id
        assert rule.tags == default.tags, rule.id
        assert rule.purposes == default.purposes, rule.id


@pytest.mark.parametrize("name", PACK_NAMES)
def test_rules_name_only_real_fleet_telemetry_fields_or_vss_paths(name: str) -> None:
    known = set(fleet_field_names()) | set(RECORD_TYPE_SIGNALS)  # the alerts, errors and connectivity records
    flat_names = {s for rule in load_pack(name).signals for s in rule.signals if "." not in s}
    assert flat_names <= known, f"{name}: not fleet-telemetry fields: {sorted(flat_names - known)}"


@pytest.mark.parametrize("name", PACK_NAMES)
@pytest.mark.parametrize("vss_path", VSS_PATHS_IN_FLEET_TELEMETRY_MD)
def test_vss_paths_from_fleet_telemetry_md_are_classified_by_exact_name(name: str, vss_path: str) -> None:
    rule_for(load_pack(name), vss_path)


def test_both_packs_name_the_same_signals() -> None:
    def named(pack: RulePack) -> set[str]:
        return {s for rule in pack.signals for s in rule.signals}

    assert named(load_pack("cn-auto")) == named(load_pack("eu-gdpr"))


# --- REGULATION.md §8 examples under the Auto Provisions (cn-auto) ---------------------------------

SECTION_8_EXAMPLES = [
    # field, categories the rule must include, tag it must carry, article it must cite
    ("Location", {Category.PERSONAL, Category.SENSITIVE_PERSONAL}, "location", "Art. 3"),
    ("RouteLine", {Category.PERSONAL, Category.SENSITIVE_PERSONAL}, "trajectory", "Art. 3"),
    ("DestinationLocation", {Category.PERSONAL, Category.SENSITIVE_PERSONAL}, "location", "Art. 3"),
    ("DestinationName", {Category.PERSONAL, Category.SENSITIVE_PERSONAL}, "whereabouts", "Art. 3"),
    ("LocatedAtHome", {Category.PERSONAL, Category.SENSITIVE_PERSONAL}, "whereabouts", "Art. 3"),
    ("LocatedAtWork", {Category.PERSONAL, Category.SENSITIVE_PERSONAL}, "whereabouts", "Art. 3"),
    ("Vehicle.Driver.HeartRate", {Category.PERSONAL, Category.SENSITIVE_PERSONAL}, "biometric", "Art. 10"),
    ("SentryMode", {Category.PERSONAL}, "external_image", "Art. 3(4)"),
    ("DriverSeatOccupied", {Category.PERSONAL}, "occupancy", "Art. 3"),
    ("MediaNowPlayingArtist", {Category.PERSONAL}, "media", "Art. 3"),
    ("GuestModeEnabled", {Category.PERSONAL}, "user_profile", "Art. 3"),
    ("Vehicle.VehicleIdentification.VIN", {Category.PERSONAL}, "identifier", "Art. 3"),
    *[(field, {Category.IMPORTANT}, "charging_network", "Art. 3(3)") for field in CHARGING_NETWORK_FIELDS],
    ("VehicleSpeed", {Category.GENERAL}, "vehicle_operational", "Art. 3"),
    ("Odometer", {Category.GENERAL}, "vehicle_operational", "Art. 3"),
    ("Soc", {Category.GENERAL}, "vehicle_operational", "Art. 3"),
]


@pytest.mark.parametrize(("field", "categories", "tag", "article"), SECTION_8_EXAMPLES)
def test_cn_classifies_the_regulation_section_8_examples(
    field: str, categories: set[Category], tag: str, article: str
) -> None:
    rule = rule_for(load_pack("cn-auto"), field)
    assert categories <= set(rule.categories), f"{rule.id}: {rule.categories}"
    assert tag in rule.tags, f"{rule.id}: {rule.tags}"
    assert rule.source.instrument == "auto-provisions-2021"
    assert article in rule.source.article


@pytest.mark.parametrize("field", [row[0] for row in SECTION_8_EXAMPLES])
def test_cn_rules_for_the_section_8_examples_are_confirmed_and_active(field: str) -> None:
    rule = rule_for(load_pack("cn-auto"), field)
    assert rule.source.confidence is not Confidence.UNCONFIRMED, rule.id
    assert rule.active, rule.id


@pytest.mark.parametrize("field", ["VehicleSpeed", "Odometer", "Soc"])
def test_cn_vehicle_operational_fields_are_general_only(field: str) -> None:
    assert rule_for(load_pack("cn-auto"), field).categories == [Category.GENERAL]


@pytest.mark.parametrize("field", VEHICLE_BATTERY_FIELDS)
def test_cn_vehicle_own_battery_state_is_not_charging_network_data(field: str) -> None:
    rule = rule_for(load_pack("cn-auto"), field)
    assert Category.IMPORTANT not in rule.categories
    assert "charging_network" not in rule.tags


LOCATION_VALUE_FIELDS = ["Location", "OriginLocation", "DestinationLocation", "Vehicle.CurrentLocation"]


@pytest.mark.parametrize("field", LOCATION_VALUE_FIELDS)
def test_location_value_fields_expect_a_location_value(field: str) -> None:
    for name in PACK_NAMES:
        assert rule_for(load_pack(name), field).value.value == "location"


def test_cn_biometrics_may_be_collected_for_driving_safety_only() -> None:
    rule = rule_for(load_pack("cn-auto"), "Vehicle.Driver.HeartRate")
    assert rule.purposes == ["driving_safety"]


# --- EU classification ------------------------------------------------------------------------------


def test_eu_classifies_location_as_personal_but_not_special_category() -> None:
    rule = rule_for(load_pack("eu-gdpr"), "Location")
    assert rule.categories == [Category.PERSONAL]
    assert "location" in rule.tags


def test_eu_classifies_heart_rate_as_special_category_under_article_9() -> None:
    rule = rule_for(load_pack("eu-gdpr"), "Vehicle.Driver.HeartRate")
    assert set(rule.categories) == {Category.PERSONAL, Category.SENSITIVE_PERSONAL}
    assert "biometric" in rule.tags
    assert (rule.source.instrument, rule.source.article) == ("gdpr-2016", "Art. 9(1)")


def test_eu_classifies_every_vehicle_signal_as_personal_and_never_important_or_general() -> None:
    pack = load_pack("eu-gdpr")
    for rule in pack.signals:
        assert Category.PERSONAL in rule.categories, rule.id
        assert Category.IMPORTANT not in rule.categories, rule.id
        assert Category.GENERAL not in rule.categories, rule.id
    assert pack.zones == []


@pytest.mark.parametrize("field", ["VehicleSpeed", "Odometer", "Soc", "DCChargingPower", "SentryMode"])
def test_eu_treats_vin_linked_vehicle_data_as_personal(field: str) -> None:
    assert Category.PERSONAL in rule_for(load_pack("eu-gdpr"), field).categories


# --- sources, purposes, consent, precision, zones --------------------------------------------------


@pytest.mark.parametrize("name", PACK_NAMES)
def test_every_source_resolves_to_an_instrument_and_cites_an_article(name: str) -> None:
    pack = load_pack(name)
    sources = [rule.source for rule in [pack.default_signal, *pack.signals, *pack.precision, *pack.zones]]
    sources.append(pack.consent.source)
    sources.extend(purpose.source for purpose in pack.purposes if purpose.source is not None)
    for source in sources:
        assert source.instrument in pack.instruments
        assert source.article.strip()


@pytest.mark.parametrize("name", PACK_NAMES)
def test_rules_classifying_sensitive_or_important_data_are_not_held_back(name: str) -> None:
    for rule in load_pack(name).signals:
        if {Category.SENSITIVE_PERSONAL, Category.IMPORTANT} & set(rule.categories):
            assert rule.source.confidence is not Confidence.UNCONFIRMED, rule.id
            assert rule.active, rule.id


@pytest.mark.parametrize("name", PACK_NAMES)
def test_sensitive_rules_only_allow_purposes_that_permit_sensitive_data(name: str) -> None:
    pack = load_pack(name)
    allows_sensitive = {purpose.id: purpose.sensitive_allowed for purpose in pack.purposes}
    for rule in pack.signals:
        if Category.SENSITIVE_PERSONAL in rule.categories:
            refused = [p for p in rule.purposes if not allows_sensitive[p]]
            assert not refused, f"{rule.id}: purposes that do not allow sensitive data: {refused}"


def test_cn_declares_the_required_purposes_with_vehicle_services_as_default() -> None:
    pack = load_pack("cn-auto")
    purposes = {purpose.id: purpose for purpose in pack.purposes}
    assert set(purposes) >= {
        "driving_safety",
        "navigation",
        "diagnostics",
        "vehicle_services",
        "charging",
        "infotainment",
        "autonomy_training",
        "remote_control",
        "ota",
    }
    assert purposes["driving_safety"].sensitive_allowed
    assert purposes["navigation"].sensitive_allowed
    # GB/T 41871-2022: in principle no sensitive PI to improve service or develop new products.
    assert not purposes["autonomy_training"].sensitive_allowed
    assert not purposes["infotainment"].sensitive_allowed
    assert pack.default_signal.purposes == ["vehicle_services"]


@pytest.mark.parametrize("name", PACK_NAMES)
def test_consent_is_required_for_personal_data_and_separate_for_sensitive_data(name: str) -> None:
    consent = load_pack(name).consent
    assert set(consent.required_for) == {Category.PERSONAL, Category.SENSITIVE_PERSONAL}
    assert consent.separate_for == [Category.SENSITIVE_PERSONAL]


def test_cn_consent_cites_the_confirmed_auto_provisions_articles() -> None:
    source = load_pack("cn-auto").consent.source
    assert source.instrument == "auto-provisions-2021"
    assert "Art. 8" in source.article
    assert source.confidence is Confidence.CONFIRMED


@pytest.mark.parametrize(
    ("name", "instrument", "article"),
    [("cn-auto", "auto-provisions-2021", "Art. 6(3)"), ("eu-gdpr", "gdpr-2016", "Art. 5(1)(c)")],
)
def test_location_is_coarsened_to_four_decimals(name: str, instrument: str, article: str) -> None:
    precision = load_pack(name).precision
    assert len(precision) == 1
    rule = precision[0]
    assert rule.tags == ["location"]
    assert rule.decimals == 4
    assert rule.source.instrument == instrument
    assert rule.source.article.startswith(article)
    assert rule.note and "policy" in rule.note, "the 4-decimal figure must be marked as operator policy"


def test_cn_sensitive_area_zone_file_exists_and_marks_important_data() -> None:
    zones = load_pack("cn-auto").zones
    assert [zone.id for zone in zones] == ["cn.zone.sensitive-areas"]
    zone = zones[0]
    assert (PACKS_DIR / zone.file).is_file()
    assert zone.categories == [Category.IMPORTANT]
    assert zone.tags == ["sensitive_area"]
    assert (zone.source.instrument, zone.source.article, zone.source.confidence) == (
        "auto-provisions-2021",
        "Art. 3(1)",
        Confidence.CONFIRMED,
    )
