"""The border gate's legal scenarios, one row per case, each citing the article it tests.

Each row plants records (classified by the real rule pack), records bases, seeds the counters with people
provided abroad earlier (distinct refs in one executemany, or an opening balance for the millions), and asks
the gate for its decision on a date. It checks the decision of one data class, that the class's reasons name
the rule ids and the article of the row, and the numbers counted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from onshore.border.decisions import ClassDecision, ExportDecision
from onshore.border.tables import border_transfer_bases
from tests.border.helpers import Plant, basis, plant, request, subject, utc
from tests.conftest import Workspace

SA = "security_assessment"
SCC = "standard_contract"


@dataclass(frozen=True)
class History:
    """``people`` provided abroad on ``on``; refs ``first..`` of the planted subjects, or fresh ones."""

    kind: str
    people: int
    on: str
    first: int | None = None


@dataclass(frozen=True)
class Case:
    id: str
    article: tuple[str, str]  # (instrument, article) the row tests: must appear in the class's reasons
    at: str
    plants: tuple[Plant, ...]
    cls: str  # rule id of the class checked; "+zone" for its sensitive-zone class
    expect: str
    cites: tuple[str, ...] = ()
    region: str = "cn"
    bases: tuple[dict[str, Any], ...] = ()
    history: tuple[History, ...] = ()
    balances: tuple[tuple[int, str, int], ...] = ()
    prior_transfers: tuple[str, ...] = ()
    req: dict[str, Any] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    transforms: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()


CHARGING = (Plant("DCChargingPower", 5),)
TRIP_1 = (Plant("MilesToArrival", 1),)
HEART_1 = (Plant("Vehicle.Driver.HeartRate", 1),)
ZONE = (Plant("Location", 3, zone=True),)
A11 = ("auto-provisions-2021", "Art. 11")
A12 = ("auto-provisions-2021", "Art. 12")
P24 = ("cross-border-provisions-2024", "thresholds")
M22 = ("outbound-measures-2022", "Art. 4(3)")
G44 = ("gdpr-2016", "Art. 44")


def sa(id: str = "cn-sa-1", **kw: Any) -> dict[str, Any]:
    return {"id": id, "route": SA, **kw}


def scc(id: str = "cn-scc-1", **kw: Any) -> dict[str, Any]:
    return {"id": id, "route": SCC, **kw}


CN_CASES = [
    # -- important data: Art. 11 (assessment) and Art. 12 (never beyond its scope) ---------------------------
    Case("important-without-assessment-denied", A11, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.important",)),
    Case("important-with-assessment-allowed", A11, "2024-06-15", CHARGING, "cn.sig.charging-network", "allow",
         ("cn.out.important",), bases=(sa(),)),
    Case("assessment-outside-purpose-denied", A12, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.important", "cn.out.basis-scope"), bases=(sa(purposes=["charging"]),), texts=("purpose",)),
    Case("assessment-outside-recipient-denied", A12, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.basis-scope",), bases=(sa(recipient="other-corp"),), texts=("recipient",)),
    Case("assessment-outside-categories-denied", A12, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.basis-scope",), bases=(sa(categories=["personal"]),), texts=("categories important",)),
    Case("assessment-outside-destination-denied", A12, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.basis-scope",), bases=(sa(destinations=["US"]),), texts=("destination DE",)),
    Case("assessment-outside-data-types-denied", A12, "2024-06-15", ZONE, "cn.sig.location+zone", "deny",
         ("cn.out.basis-scope",), bases=(sa(tags=["charging_network"]),), texts=("data types",)),
    Case("assessment-outside-scale-people-denied", A12, "2024-06-15", (Plant("Location", 11, zone=True),),
         "cn.sig.location+zone", "deny", ("cn.out.basis-scope",), bases=(sa(max_people=10),),
         numbers={"people_new": 11, "max_people": 10}),
    Case("assessment-outside-scale-records-denied", A12, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.basis-scope",), bases=(sa(max_records=4),), numbers={"records_new": 5, "max_records": 4}),
    # -- 2024 Provisions: non-sensitive PI since 1 January of the current year --------------------------------
    Case("pi-99999-people-exempt", P24, "2024-06-15", TRIP_1, "cn.sig.trip", "transform", ("cn.out.2024.pi",),
         history=(History("pi", 99_998, "2024-02-01"),), numbers={"total": 99_999, "band_from": 0},
         texts=("met by volume_exemption",)),
    Case("pi-100000-people-need-contract-denied", P24, "2024-06-15", TRIP_1, "cn.sig.trip", "deny",
         ("cn.out.2024.pi",), history=(History("pi", 99_999, "2024-02-01"),),
         numbers={"already": 99_999, "request": 1, "total": 100_000, "band_from": 100_000}),
    Case("pi-100000-people-with-contract-allowed", P24, "2024-06-15", TRIP_1, "cn.sig.trip", "transform",
         ("cn.out.2024.pi",), bases=(scc(),), history=(History("pi", 99_999, "2024-02-01"),),
         numbers={"total": 100_000}, transforms=("pseudonymise",)),
    Case("pi-999999-people-with-contract-allowed", P24, "2024-06-15", TRIP_1, "cn.sig.trip", "transform",
         ("cn.out.2024.pi",), bases=(scc(),), balances=((2024, "pi", 999_998),), numbers={"total": 999_999}),
    Case("pi-1000000-people-contract-not-enough", P24, "2024-06-15", TRIP_1, "cn.sig.trip", "deny",
         ("cn.out.2024.pi",), bases=(scc(),), balances=((2024, "pi", 999_999),),
         numbers={"total": 1_000_000, "band_from": 1_000_000}),
    Case("pi-1000000-people-with-assessment-allowed", P24, "2024-06-15", TRIP_1, "cn.sig.trip", "transform",
         ("cn.out.2024.pi",), bases=(sa(),), balances=((2024, "pi", 999_999),), numbers={"total": 1_000_000}),
    # -- 2024 Provisions: sensitive PI (no volume exemption) ---------------------------------------------------
    Case("sensitive-9999-people-with-contract-allowed", P24, "2024-06-15", HEART_1, "cn.sig.driver-biometrics",
         "transform", ("cn.out.2024.sensitive",), bases=(scc(),), history=(History("sensitive", 9_998, "2024-01-10"),),
         numbers={"total": 9_999, "band_from": 0}),
    Case("sensitive-9999-people-without-basis-denied", P24, "2024-06-15", HEART_1, "cn.sig.driver-biometrics",
         "deny", ("cn.out.2024.sensitive",), history=(History("sensitive", 9_998, "2024-01-10"),),
         numbers={"total": 9_999}),
    Case("sensitive-10000-people-contract-not-enough", P24, "2024-06-15", HEART_1, "cn.sig.driver-biometrics",
         "deny", ("cn.out.2024.sensitive",), bases=(scc(),), history=(History("sensitive", 9_999, "2024-01-10"),),
         numbers={"total": 10_000, "band_from": 10_000}),
    Case("sensitive-10000-people-with-assessment-allowed", P24, "2024-06-15", HEART_1, "cn.sig.driver-biometrics",
         "transform", ("cn.out.2024.sensitive",), bases=(sa(),), history=(History("sensitive", 9_999, "2024-01-10"),),
         numbers={"total": 10_000}),
    # -- counting windows: 1 January, and the 2024-03-22 switch from the 2022 Measures --------------------------
    Case("window-resets-on-1-january", P24, "2025-01-05", TRIP_1, "cn.sig.trip", "transform", ("cn.out.2024.pi",),
         history=(History("pi", 99_999, "2024-12-20"),), numbers={"since": "2025-01-01", "already": 0, "total": 1}),
    Case("window-before-1-january-counts", P24, "2024-12-28", TRIP_1, "cn.sig.trip", "deny", ("cn.out.2024.pi",),
         history=(History("pi", 99_999, "2024-12-20"),), numbers={"since": "2024-01-01", "total": 100_000}),
    Case("2022-window-reaches-previous-year", M22, "2024-02-01", TRIP_1, "cn.sig.trip", "deny",
         ("cn.out.2022.pi-100k",), bases=(scc(approved_on="2023-07-01"),),
         history=(History("pi", 99_999, "2023-03-01"),), numbers={"since": "2023-01-01", "total": 100_000}),
    Case("switch-day-2024-03-21-still-2022-rules", M22, "2024-03-21", TRIP_1, "cn.sig.trip", "deny",
         ("cn.out.2022.pi-100k",), bases=(scc(approved_on="2023-07-01"),),
         history=(History("pi", 99_999, "2023-03-01"),), numbers={"total": 100_000}),
    Case("switch-day-2024-03-22-current-year-window", P24, "2024-03-22", TRIP_1, "cn.sig.trip", "transform",
         ("cn.out.2024.pi",), history=(History("pi", 99_999, "2023-03-01"),),
         numbers={"since": "2024-01-01", "total": 1}),
    Case("2022-no-volume-exemption-denied", M22, "2023-07-01", (Plant("MilesToArrival", 10),), "cn.sig.trip", "deny",
         ("cn.out.2022.pi-100k",), numbers={"total": 10}),
    Case("2022-below-threshold-contract-allowed", M22, "2023-07-01", (Plant("MilesToArrival", 10),), "cn.sig.trip",
         "transform", ("cn.out.2022.pi-100k",), bases=(scc(approved_on="2023-06-15"),)),
    Case("2022-sensitive-10000-since-previous-year", M22, "2023-08-01", HEART_1, "cn.sig.driver-biometrics", "deny",
         ("cn.out.2022.sensitive-10k",), bases=(scc(approved_on="2023-06-15"),),
         history=(History("sensitive", 9_999, "2022-10-01"),), numbers={"since": "2022-01-01", "total": 10_000}),
    Case("2022-processor-of-1000000-people", ("outbound-measures-2022", "Art. 4(2)"), "2023-08-01", TRIP_1,
         "cn.sig.trip", "deny", ("cn.out.2022.processor-1m",), bases=(scc(approved_on="2023-06-15"),),
         balances=((2023, "processor", 999_999),), numbers={"counter": "processor_pi", "total": 1_000_000}),
    Case("standard-contract-not-yet-available-2023-03", M22, "2023-03-01", TRIP_1, "cn.sig.trip", "deny",
         ("cn.out.2022.pi-100k",), bases=(scc(approved_on="2023-02-01"),), texts=("not met",)),
    # -- validity, expiry, revocation -----------------------------------------------------------------------
    Case("assessment-2022-valid-two-years", A11, "2024-09-30", CHARGING, "cn.sig.charging-network", "allow",
         ("cn.out.important",), bases=(sa(approved_on="2022-10-01"),)),
    Case("assessment-2022-expired-after-two-years", ("outbound-measures-2022", "Art. 14"), "2024-10-02", CHARGING,
         "cn.sig.charging-network", "deny", ("cn.out.validity-2022",), bases=(sa(approved_on="2022-10-01"),),
         texts=("expired on 2024-10-01",)),
    Case("assessment-2024-valid-three-years", A11, "2027-03-31", CHARGING, "cn.sig.charging-network", "allow",
         ("cn.out.important",), bases=(sa(approved_on="2024-04-01"),)),
    Case("assessment-2024-expired-after-three-years", ("cross-border-provisions-2024", "validity"), "2027-04-01",
         CHARGING, "cn.sig.charging-network", "deny", ("cn.out.validity-2024",), bases=(sa(approved_on="2024-04-01"),)),
    Case("revoked-assessment-denied", A12, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.basis-scope",), bases=(sa(revoke=True),), texts=("revoked",)),
    Case("draft-assessment-denied", A12, "2024-06-15", CHARGING, "cn.sig.charging-network", "deny",
         ("cn.out.basis-scope",), bases=(sa(approved_on=None),), texts=("draft",)),
    # -- external images (Art. 3(4)) and sensitive areas (Art. 3(1)) ------------------------------------------
    Case("external-image-without-assessment-denied", ("auto-provisions-2021", "Art. 3(4)"), "2024-06-15",
         (Plant("SentryMode", 3),), "cn.sig.external-camera", "deny", ("cn.out.external-image",)),
    Case("external-image-with-assessment-anonymised", ("auto-provisions-2021", "Art. 3(4)"), "2024-06-15",
         (Plant("SentryMode", 3),), "cn.sig.external-camera", "transform", ("cn.out.external-image",),
         bases=(sa(),), transforms=("anonymise_faces_plates", "pseudonymise")),
    Case("sensitive-zone-position-without-assessment-denied", ("auto-provisions-2021", "Art. 3(1)"), "2024-06-15",
         ZONE, "cn.sig.location+zone", "deny", ("cn.out.sensitive-area", "cn.out.important")),
    Case("sensitive-zone-position-suppressed-under-assessment", ("auto-provisions-2021", "Art. 3(1)"), "2024-06-15",
         ZONE, "cn.sig.location+zone", "transform", ("cn.out.sensitive-area",), bases=(sa(),),
         transforms=("suppress_sensitive_positions",)),
    # -- not outbound, not restricted, splitting, repeats ------------------------------------------------------
    Case("same-jurisdiction-is-not-outbound", ("outbound-measures-2022", "Art. 2"), "2024-06-15", CHARGING,
         "cn.sig.charging-network", "allow", ("cn.out.domestic",), req={"destination": "CN"}),
    Case("general-data-flows-freely", ("auto-provisions-2021", "Art. 3"), "2024-06-15",
         (Plant("VehicleSpeed", 4),), "cn.sig.vehicle-operational", "allow", ("cn.out.general",)),
    Case("split-request-counts-the-earlier-part", P24, "2024-06-15", (Plant("MilesToArrival", 40_000),),
         "cn.sig.trip", "deny", ("cn.out.2024.pi",), history=(History("pi", 60_000, "2024-05-01"),),
         numbers={"already": 60_000, "request": 40_000, "total": 100_000}),
    Case("same-people-again-are-not-counted-twice", P24, "2024-06-15", (Plant("MilesToArrival", 1_000),),
         "cn.sig.trip", "transform", ("cn.out.2024.pi",), history=(History("pi", 99_999, "2024-03-25", first=0),),
         numbers={"already": 99_999, "request": 0, "total": 99_999}),
    Case("recorded-exemption-covers-150000-people", ("cross-border-provisions-2024", "exemption (6)"), "2024-06-15",
         TRIP_1, "cn.sig.trip", "transform", ("cn.out.2024.pi",), bases=({"id": "cn-ex-1", "route": "exemption"},),
         balances=((2024, "pi", 149_999),), numbers={"total": 150_000}, texts=("basis cn-ex-1",)),
    Case("recorded-exemption-never-covers-important-data", A11, "2024-06-15", CHARGING, "cn.sig.charging-network",
         "deny", ("cn.out.important",), bases=({"id": "cn-ex-1", "route": "exemption"},)),
    Case("before-pipl-nothing-personal-leaves", ("cn-auto", "no rule"), "2021-06-01", TRIP_1, "cn.sig.trip", "deny",
         ("default-deny",)),
]  # fmt: skip

JP = {"destination": "JP"}
LOC = (Plant("Location", 4),)


def eu_scc(id: str = "eu-scc-1", **kw: Any) -> dict[str, Any]:
    return {"id": id, "route": "scc", **kw}


def derogation(key: str, id: str = "eu-der-1", **kw: Any) -> dict[str, Any]:
    return {"id": id, "route": "derogation", "derogation": key, **kw}


EU_CASES = [
    Case("eu-to-adequate-japan-passes", ("gdpr-2016", "Art. 44"), "2024-06-15", LOC, "eu.sig.location", "transform",
         ("eu.out.personal",), region="eu", req=JP, texts=("adequacy (Japan", "Art. 45")),
    Case("eu-to-adequate-switzerland-passes", G44, "2024-06-15", LOC, "eu.sig.location", "transform",
         ("eu.out.personal",), region="eu", req={"destination": "CH"}, texts=("Switzerland",)),
    Case("eu-to-adequate-uk-passes", G44, "2024-06-15", LOC, "eu.sig.location", "transform", ("eu.out.personal",),
         region="eu", req={"destination": "GB"}),
    Case("eu-sensitive-to-adequate-country-passes", G44, "2024-06-15", HEART_1, "eu.sig.biometric", "transform",
         ("eu.out.personal",), region="eu", req=JP),
    Case("eu-to-non-adequate-without-scc-denied", G44, "2024-06-15", LOC, "eu.sig.location", "deny",
         ("eu.out.personal",), region="eu", req={"destination": "CN"}, texts=("no basis of route",)),
    Case("eu-to-non-adequate-with-scc-passes", ("gdpr-2016", "Art. 44"), "2024-06-15", LOC, "eu.sig.location",
         "transform", ("eu.out.personal",), region="eu", req={"destination": "CN"}, bases=(eu_scc(),),
         texts=("basis eu-scc-1 (scc)",)),
    Case("eu-scc-outside-purpose-denied", ("gdpr-2016", "Art. 46(1)"), "2024-06-15", LOC, "eu.sig.location", "deny",
         ("eu.out.basis-scope",), region="eu", req={"destination": "CN"}, bases=(eu_scc(purposes=["navigation"]),)),
    Case("eu-scc-expired-denied", ("gdpr-2016", "Art. 46(1)"), "2024-06-15", LOC, "eu.sig.location", "deny",
         ("eu.out.basis-scope",), region="eu", req={"destination": "CN"},
         bases=(eu_scc(approved_on="2023-01-01", expires_on="2024-01-01"),), texts=("expired",)),
    Case("eu-to-us-without-dpf-basis-denied", G44, "2024-06-15", LOC, "eu.sig.location", "deny",
         ("eu.out.personal",), region="eu", req={"destination": "US"}),
    Case("eu-to-us-certified-recipient-passes", G44, "2024-06-15", LOC, "eu.sig.location", "transform",
         ("eu.out.personal",), region="eu", req={"destination": "US"},
         bases=({"id": "eu-dpf-1", "route": "adequacy"},), texts=("basis eu-dpf-1",)),
    Case("eu-member-state-is-not-a-third-country", G44, "2024-06-15", LOC, "eu.sig.location", "allow",
         ("eu.out.domestic",), region="eu", req={"destination": "DE"}),
    Case("eu-derogation-explicit-consent-passes", ("gdpr-2016", "Art. 44"), "2024-06-15", LOC, "eu.sig.location",
         "transform", ("eu.out.personal",), region="eu", req={"destination": "CN"},
         bases=(derogation("explicit_consent", attestations=["explicit_consent_recorded", "risks_informed"]),)),
    Case("eu-derogation-consent-not-recorded-denied", ("gdpr-2016", "Art. 49(1)(a)"), "2024-06-15", LOC,
         "eu.sig.location", "deny", ("eu.out.derogation.explicit-consent",), region="eu",
         req={"destination": "CN"}, bases=(derogation("explicit_consent", attestations=["risks_informed"]),)),
    Case("eu-derogation-compelling-interests-once-passes", ("gdpr-2016", "Art. 44"), "2024-06-15", LOC,
         "eu.sig.location", "transform", ("eu.out.personal",), region="eu", req={"destination": "CN"},
         bases=(derogation("compelling_legitimate_interests",
                           attestations=["supervisory_authority_informed", "subjects_informed"]),)),
    Case("eu-derogation-compelling-interests-not-repetitive", ("gdpr-2016", "Art. 49(1), second subparagraph"),
         "2024-06-15", LOC, "eu.sig.location", "deny", ("eu.out.derogation.compelling-interests",), region="eu",
         req={"destination": "CN"}, prior_transfers=("eu-der-1",),
         bases=(derogation("compelling_legitimate_interests",
                           attestations=["supervisory_authority_informed", "subjects_informed"]),),
         numbers={"transfers_before": 1, "max_transfers": 1}),
    Case("eu-derogation-compelling-interests-limited-people", ("gdpr-2016", "Art. 49(1), second subparagraph"),
         "2024-06-15", (Plant("Location", 101),), "eu.sig.location", "deny",
         ("eu.out.derogation.compelling-interests",), region="eu", req={"destination": "CN"},
         bases=(derogation("compelling_legitimate_interests",
                           attestations=["supervisory_authority_informed", "subjects_informed"]),),
         numbers={"people": 101, "max_people": 100}),
]  # fmt: skip

CASES = CN_CASES + EU_CASES


def _pick(decision: ExportDecision, cls: str) -> ClassDecision:
    rule, _, zone = cls.partition("+")
    for c in decision.classes:
        if c.data_class.rule_id == rule and ("sensitive_area" in c.data_class.tags) == bool(zone):
            return c
    raise AssertionError(f"no class {cls} in {[c.data_class.key for c in decision.classes]}")


def _seed(ws: Workspace, case: Case, at: dt.datetime) -> None:
    rt = ws.runtime
    plant(rt, case.region, case.plants, at - dt.timedelta(days=1))
    for spec in case.bases:
        basis(rt, case.region, **spec)
    for h in case.history:
        refs = [subject(h.first + i) if h.first is not None else f"h{i:07d}" for i in range(h.people)]
        rt.border.import_provided(case.region, refs, h.kind, utc(h.on))
    for year, kind, people in case.balances:
        rt.border.set_opening_balance(case.region, year, kind, people)
    if case.prior_transfers:
        with rt.regions[case.region].store.transaction("seed prior transfers") as conn:
            for n, basis_id in enumerate(case.prior_transfers):
                conn.execute(
                    border_transfer_bases.insert().values(transfer_id=f"xf-{n}", basis_id=basis_id, records=1, people=1)
                )


def test_at_least_forty_cases_over_both_packs() -> None:
    assert len(CASES) >= 40 and len(EU_CASES) >= 10
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_scenario(case: Case, workspace: Workspace) -> None:
    at = utc(case.at)
    _seed(workspace, case, at)
    decision = workspace.runtime.border.decide(request(case.region, at, **case.req), at=at)
    c = _pick(decision, case.cls)
    explain = [r.to_dict() for r in c.reasons]
    assert c.decision == case.expect, explain
    for other in decision.classes:  # every decision explains itself by rule and article
        assert other.reasons and all(r.rule and r.article for r in other.reasons)
    assert set(case.cites) <= {r.rule for r in c.reasons}, explain
    instrument, article = case.article
    assert any(instrument in r.article and article in r.article for r in c.reasons), explain
    if case.numbers:
        assert any(case.numbers.items() <= dict(r.numbers).items() for r in c.reasons), explain
    assert set(case.transforms) <= {t.name for t in c.transforms}
    text = " ".join(r.text + " " + r.article for r in c.reasons)
    for fragment in case.texts:
        assert fragment in text, explain
    if c.decision == "deny":
        assert c.basis_id is None and not c.transforms
