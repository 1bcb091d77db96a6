"""Principals and roles without a transport: what every adapter (HTTP today, MQTT and NATS next) relies on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import onshore
from onshore.auth import Authenticator, Principal, Role, VehiclePrincipal
from onshore.config import Role as ConfigRole
from onshore.errors import AuthError, ForbiddenError, NotFoundError, RateLimitedError
from onshore.web.limits import VehicleLimits
from tests.conftest import CN_VIN, Workspace

PACKAGE = Path(onshore.__file__).parent


def _authenticator(ws: Workspace, limits: VehicleLimits | None = None) -> Authenticator:
    runtime = ws.runtime
    return Authenticator(ws.settings.tokens, runtime.vehicles, runtime.subjects, limits=limits, regions=runtime.regions)


def test_the_core_needs_no_web_framework() -> None:
    code = (
        "import sys, onshore.auth; "
        "sys.exit(1 if any(m.split('.')[0] in ('fastapi', 'starlette') for m in sys.modules) else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=os.environ, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr or "onshore.auth imported fastapi or starlette"


def test_every_configurable_role_is_a_role() -> None:
    assert set(typing.get_args(ConfigRole)) <= {r.value for r in Role}
    assert Role.GATEWAY.value == "gateway"  # reserved for fleet back-ends speaking for their vehicles


def test_api_tokens_resolve_to_their_role_and_region(workspace: Workspace) -> None:
    auth = _authenticator(workspace)
    officer = auth.authenticate(workspace.token("officer"))
    analyst = auth.authenticate_bearer(f"Bearer {workspace.token('analyst-eu')}")
    assert (officer.role, officer.region, officer.region_bound) == (Role.OFFICER, None, False)
    assert (analyst.role, analyst.region, analyst.region_bound) == (Role.ANALYST, "eu", True)
    assert auth.authenticate_bearer(f"bearer  {workspace.token('auditor')} ").role is Role.AUDITOR


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer    ", "Basic b2ZmaWNlcg==", "ons_unknown", "Bearer ons_unknown", "Bearer onv_cn_x"],
)
def test_no_unknown_or_malformed_token_authenticates(workspace: Workspace, header: str | None) -> None:
    with pytest.raises(AuthError):
        _authenticator(workspace).authenticate_bearer(header)


def test_a_token_one_character_off_is_unknown(workspace: Workspace) -> None:
    token = workspace.token("officer")
    with pytest.raises(AuthError, match="unknown token"):
        _authenticator(workspace).authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))


def test_vehicle_tokens_name_their_vehicle_and_count_against_its_rate(workspace: Workspace) -> None:
    token = workspace.runtime.vehicles.add(CN_VIN, "CN").token
    limits = VehicleLimits(
        workspace.settings.limits.model_copy(update={"vehicle_rate_per_s": 0.001, "vehicle_burst": 2})
    )
    auth = _authenticator(workspace, limits)
    principal = auth.authenticate(token)
    assert isinstance(principal, VehiclePrincipal) and principal.role is Role.VEHICLE
    assert principal.region == "cn" and principal.vehicle.region == "cn"
    auth.authenticate(token)
    with pytest.raises(RateLimitedError):
        auth.authenticate(token)
    workspace.runtime.vehicles.revoke(CN_VIN, "CN")
    with pytest.raises(AuthError, match="revoked"):
        _authenticator(workspace).authenticate(token)


def test_subject_tokens_name_their_subject_and_only_them(workspace: Workspace) -> None:
    workspace.runtime.vehicles.add(CN_VIN, "CN")
    ref, token = workspace.runtime.subjects.bind(CN_VIN, "CN", "owner")
    principal = _authenticator(workspace).authenticate(token or "")
    assert (principal.role, principal.subject_ref) == (Role.SUBJECT, ref)
    principal.require_subject(ref)
    with pytest.raises(ForbiddenError, match="themselves only"):
        principal.require_subject("sub_someone_else")
    Principal(role=Role.OFFICER, name="officer").require_subject("sub_someone_else")  # staff act for anyone


def test_roles_and_regions_are_checked(workspace: Workspace) -> None:
    auth = _authenticator(workspace)
    analyst = auth.authenticate(workspace.token("analyst-cn"))
    analyst.require(Role.ANALYST, Role.OFFICER)
    with pytest.raises(ForbiddenError, match="role 'analyst' may not do this; allowed: officer"):
        analyst.require(Role.OFFICER)
    auth.require_region(analyst, "cn")
    with pytest.raises(ForbiddenError, match="bound to region 'cn', not 'eu'"):
        auth.require_region(analyst, "eu")
    with pytest.raises(NotFoundError, match="region 'mars' is not configured"):
        auth.require_region(analyst, "mars")
    officer = auth.authenticate(workspace.token("officer"))
    auth.require_region(officer, "eu")
    assert officer.may_reach("eu") and not analyst.may_reach("eu")


def test_no_route_fetches_or_checks_a_principal_by_hand() -> None:
    """Routes declare their roles through ``onshore.web.auth.require``; only the two auth modules do the work."""
    by_hand = re.compile(r"state\.auth\.|\.principal\(|\.require\(\s*\"|require_region\(")
    allowed = {PACKAGE / "auth.py", PACKAGE / "web" / "auth.py"}
    found = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in allowed
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if by_hand.search(line)
    ]
    assert not found, "\n".join(found)


def test_an_api_token_is_accepted_through_its_last_day_and_refused_after(workspace: Workspace) -> None:
    import datetime as dt

    from onshore import clock

    officer = next(t for t in workspace.settings.tokens if t.name == "officer")
    expiring = officer.model_copy(update={"expires": dt.date(2027, 6, 30)})
    runtime = workspace.runtime
    auth = Authenticator([expiring], runtime.vehicles, runtime.subjects, regions=runtime.regions)
    last_day = int(dt.datetime(2027, 6, 30, 23, 59, tzinfo=dt.UTC).timestamp() * 1000)
    with clock.frozen(last_day):
        assert auth.authenticate(workspace.token("officer")).role is Role.OFFICER
    with clock.frozen(last_day + 60_000), pytest.raises(AuthError, match="expired on 2027-06-30"):
        auth.authenticate(workspace.token("officer"))
