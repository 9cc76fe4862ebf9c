"""The Identity Protection stand-in stays true to Graph: every payload parses into the msgraph-sdk model with
nothing left over, and it filters, pages and refuses (licence) the way Graph does."""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest

from tests.support.graph_standin import GraphStandin, assert_parses, payloads
from tests.support.graph_standin import identity_protection as ip

T0 = "10000000-0000-4000-8000-000000000000"
NOW = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)


def _alice() -> dict:
    return payloads.user("alice@t0.example", "Alice Example")


def test_risk_detection_payload_parses_into_the_model() -> None:
    from msgraph.generated.models.risk_detection import RiskDetection

    parsed = assert_parses(ip.risk_detection(_alice(), detected=NOW), RiskDetection)
    assert parsed.risk_event_type == "anonymizedIPAddress"
    assert parsed.location.country_or_region == "SE"
    assert parsed.detected_date_time == NOW


def test_risky_user_and_sign_in_payloads_parse_into_their_models() -> None:
    from msgraph.generated.models.risky_user import RiskyUser
    from msgraph.generated.models.sign_in import SignIn

    alice = _alice()
    detection = ip.risk_detection(alice, detected=NOW)
    assert assert_parses(ip.risky_user(alice, changed=NOW), RiskyUser).risk_state.value == "atRisk"
    signin = assert_parses(ip.sign_in(detection), SignIn)
    assert signin.id == detection["requestId"] and signin.app_display_name == "Office 365 Exchange Online"


async def _get(standin: GraphStandin, tenant: str, path: str) -> tuple[int, dict]:
    token = standin.issue_token(tenant)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{standin.url}/v1.0{path}", headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status, await response.json()


@pytest.fixture
async def standin() -> GraphStandin:
    async with GraphStandin(home_tenant=T0, extensions=[ip.register]) as graph:
        graph.tenant(T0).skus = payloads.premium_skus("P2")
        yield graph


async def test_pages_from_the_standin_parse_as_collection_responses(standin: GraphStandin) -> None:
    from msgraph.generated.models.risk_detection_collection_response import RiskDetectionCollectionResponse
    from msgraph.generated.models.risky_user_collection_response import RiskyUserCollectionResponse
    from msgraph.generated.models.sign_in_collection_response import SignInCollectionResponse

    risk = ip.data(standin, T0)
    alice = _alice()
    for minute in range(3):
        detection = risk.add_detection(ip.risk_detection(alice, detected=NOW + dt.timedelta(minutes=minute)))
        risk.add_sign_in(ip.sign_in(detection))
    risk.set_risky_user(ip.risky_user(alice, changed=NOW))
    status, page = await _get(standin, T0, "/identityProtection/riskDetections?$top=2")
    assert status == 200 and "@odata.nextLink" in page
    assert len(assert_parses(page, RiskDetectionCollectionResponse).value) == 2
    status, page = await _get(standin, T0, "/identityProtection/riskyUsers")
    assert len(assert_parses(page, RiskyUserCollectionResponse).value) == 1
    status, page = await _get(standin, T0, "/auditLogs/signIns")
    assert len(assert_parses(page, SignInCollectionResponse).value) == 3


async def test_detections_filter_by_time_and_arrive_late(standin: GraphStandin) -> None:
    clock = [NOW]
    risk = ip.data(standin, T0, now=lambda: clock[0])
    alice = _alice()
    risk.add_detection(ip.risk_detection(alice, detected=NOW - dt.timedelta(hours=2), id="old"))
    risk.add_detection(
        ip.risk_detection(alice, detected=NOW - dt.timedelta(minutes=5), id="late"),
        arrives=NOW + dt.timedelta(minutes=10),
    )
    since = "/identityProtection/riskDetections?$filter=detectedDateTime ge 2026-11-27T20:00:00Z"
    assert [d["id"] for d in (await _get(standin, T0, since))[1]["value"]] == []
    clock[0] = NOW + dt.timedelta(minutes=10)
    assert [d["id"] for d in (await _get(standin, T0, since))[1]["value"]] == ["late"]
    status, _ = await _get(standin, T0, "/identityProtection/riskDetections?$filter=riskLevel eq 'high'")
    assert status == 400
    status, _ = await _get(standin, T0, "/identityProtection/riskDetections?$top=501")
    assert status == 400


async def test_risk_apis_refuse_a_tenant_without_p2(standin: GraphStandin) -> None:
    standin.tenant(T0).skus = payloads.premium_skus("P1")
    status, body = await _get(standin, T0, "/identityProtection/riskDetections")
    assert status == 403 and body["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
