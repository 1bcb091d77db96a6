"""The subject's access copy as a readable document: what is held about them by region and category, their
consents, transfers abroad, in plain dates; nobody else's data and no VIN; its ledger figure verifies."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from onshore import clock
from onshore.cli import app
from onshore.reports.service import ReportService
from onshore.reports.verify import report_text, stated_figures, verify_report
from tests.conftest import CN_VIN, CN_VIN_2, Workspace, auth, record
from tests.reports.known import CN_VIN_3, NOW, ms

CN_VIN_4 = "LSVM0TEST00000004"
VINS = (CN_VIN, CN_VIN_2, CN_VIN_3, CN_VIN_4)


def _copy(ws: Workspace, subject: str, lang: str = "en", fmt: str = "md") -> str:
    with clock.frozen(ms(NOW)):
        path = (
            ReportService(ws.runtime).generate("access", None, lang, fmt, ws.folder / "reports", subject=subject).path
        )
    return str(path)


def test_the_copy_holds_what_is_held_about_the_subject_in_plain_dates(
    workspace: Workspace, client: TestClient, activity: dict[str, int]
) -> None:
    rt = workspace.runtime
    owner_a = rt.vehicles.owner_of(CN_VIN, "CN")
    with clock.frozen(ms(NOW)):  # another person, D, with data of their own (B and C were erased)
        token = rt.vehicles.add(CN_VIN_4, "CN").token
        owner_d = rt.vehicles.owner_of(CN_VIN_4, "CN")
        rt.consents.grant(owner_d, "navigation", "separate", "7d", actor_role="officer")
        body = [record("d0", "Location", {"latitude": 26.58, "longitude": 106.71}, ms(NOW) - 60_000)]
        assert client.post("/v1/ingest", json=body, headers=auth(token)).json()["accepted"] == 1
    path = _copy(workspace, owner_a)
    text = report_text(Path(path))
    # what the test ingested for A: three trip records and one position (personal and sensitive)
    stated = dict(stated_figures(text))
    [(key, held)] = stated.items()
    assert re.fullmatch(r"access\.cn\.\d+\.records", key) and held == 4
    assert "| cn | personal | navigation | Location, MilesToArrival | 4 | 2026-06-10 | 2026-06-10 |" in text
    assert "| cn | sensitive_personal | navigation | Location | 1 | 2026-06-10 | 2026-06-10 |" in text
    assert "latitude 31.23, longitude 121.47" in text
    # the consent granted on 10 June for 90 days, separate; the two releases abroad of A's data
    assert re.search(r"\| cn \| navigation \| [^|]+ \| separate \| 2026-06-10 \| 2026-09-08 \| - \|", text), text
    assert text.count("| 2026-06-10 | DE | acme-gmbh | diagnostics |") == 2
    assert "cn-sa-1" in text
    # plain dates, no epoch milliseconds; no VIN; nobody else's refs, vehicles or values
    assert not re.search(r"\b1[5-9]\d{11}\b", text), "no epoch milliseconds"
    for vin in VINS:
        assert vin not in text
    assert CN_VIN_4 not in text and owner_d not in text
    [d_vehicle] = rt.regions["cn"].subjects.bindings_of_subject(owner_d)
    assert d_vehicle.vehicle_ref not in text, "D's vehicle is not in A's copy"
    assert "26.58" not in text and "106.71" not in text, "D's position is not in A's copy"
    assert "2026-06-17" not in text, "nor D's consent"
    assert verify_report(rt, Path(path)).ok


def test_an_edited_access_figure_fails_and_a_made_up_index_too(workspace: Workspace, activity: dict[str, int]) -> None:

    owner_a = workspace.runtime.vehicles.owner_of(CN_VIN, "CN")
    path = Path(_copy(workspace, owner_a))
    text = path.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| access.cn."))
    path.write_text(text.replace(row, row.replace("| 4 |", "| 3 |")), encoding="utf-8")
    verdict = verify_report(workspace.runtime, path)
    assert not verdict.ok and verdict.differences[0]["recomputed"] == 4
    index = row.split("|")[1].strip().split(".")[2]
    path.write_text(text.replace(f"access.cn.{index}.records", "access.cn.0.records"), encoding="utf-8")
    assert any("no access request at that index" in p for p in verify_report(workspace.runtime, path).problems)


def test_the_cli_writes_a_chinese_pdf_copy(workspace: Workspace, activity: dict[str, int]) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils missing: run `make system-deps`")
    owner_a = workspace.runtime.vehicles.owner_of(CN_VIN, "CN")
    out = workspace.folder / "copies"
    args = ["report", "access", "--subject", owner_a, "--lang", "zh", "--format", "pdf", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "-c", str(workspace.config), "--json"])
    assert result.exit_code == 0, result.output
    [pdf] = out.glob("access-*-zh.pdf")
    text = report_text(pdf)
    assert "个人信息副本" in text and "您的同意" in text, "Chinese glyphs are in the PDF"
    assert CN_VIN not in text
    assert verify_report(workspace.runtime, pdf).ok


def test_the_api_gives_a_subject_their_own_copy_only(
    workspace: Workspace, client: TestClient, activity: dict[str, int]
) -> None:
    rt = workspace.runtime
    me, token = rt.subjects.bind(CN_VIN_2, "CN", "driver", profile="driver-2")
    owner_a = rt.vehicles.owner_of(CN_VIN, "CN")
    mine = {"kind": "access", "subject": me, "lang": "en", "format": "html"}
    r = client.post("/v1/reports", json=mine, headers=auth(token))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
    assert me in r.text and "kind=access" in r.text and "checkpoint region=cn" in r.text
    assert client.post("/v1/reports", json={**mine, "subject": owner_a}, headers=auth(token)).status_code == 403
    annual = {"kind": "annual", "year": 2026, "format": "md"}
    assert client.post("/v1/reports", json=annual, headers=auth(token)).status_code == 403
    officer = auth(workspace.token("officer"))
    r = client.post("/v1/reports", json={**mine, "subject": owner_a}, headers=officer)
    assert r.status_code == 200 and owner_a in r.text
    assert client.post("/v1/reports", json={**mine, "year": 2026}, headers=officer).status_code == 422
    assert client.post("/v1/reports", json={"kind": "access", "lang": "en"}, headers=officer).status_code == 422
