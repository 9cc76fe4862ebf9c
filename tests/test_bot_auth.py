"""Every forged or misdirected token gets a 401 (never a 500), one warning line, no traceback, and no reply."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
import pytest_asyncio

from tests.support.botapp import APP_ID, BotApp
from tests.support.openid import EMULATOR_ISSUER, KIDS

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bot():
    async with BotApp.started() as running:
        yield running


def _hs256_with_public_key(bot: BotApp) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the published RSA key."""
    from cryptography.hazmat.primitives import serialization

    public = (
        bot.openid.keys["teams"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KIDS["teams"]}).encode())
    body = b64(json.dumps(bot.openid.channel_claims(APP_ID, bot.connector.url)).encode())
    signature = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"Bearer {head}.{body}.{b64(signature)}"


def _forgeries(bot: BotApp) -> dict[str, str | None]:
    now = int(time.time())
    token = bot.token
    return {
        "missing header": None,
        "basic auth": "Basic dXNlcjpwYXNzd29yZA==",
        "garbage bearer": "Bearer garbage",
        "empty bearer": "Bearer ",
        "lowercase scheme with two tokens": f"bearer {token()} {token()}",
        "malformed jwt": "Bearer eyJhbGciOiJSUzI1NiJ9.bm90LWpzb24.c2ln",
        "expired": f"Bearer {token(exp=now - 3600, nbf=now - 7200)}",
        "expired just past the 5-minute skew": f"Bearer {token(exp=now - 330, nbf=now - 3600)}",
        "not yet valid": f"Bearer {token(nbf=now + 3600, exp=now + 7200)}",
        "no expiry": f"Bearer {token(drop=('exp',))}",
        "bad signature": f"Bearer {token(key='rogue', kid=KIDS['teams'])}",
        "unknown kid": f"Bearer {token(key='rogue')}",
        "no kid": f"Bearer {token(kid='')}",
        "key not endorsed for msteams": f"Bearer {token(key='webchat')}",
        "key with no endorsements": f"Bearer {token(key='bare')}",
        "alg none": f"Bearer {token(alg='none')}",
        "alg RS512 (not what the SDK decodes)": f"Bearer {token(alg='RS512')}",
        "hs256 keyed with the public key": _hs256_with_public_key(bot),
        "wrong issuer": f"Bearer {token(iss='https://api.botframework.com.evil.example')}",
        "wrong audience": f"Bearer {token(aud='00000000-0000-0000-0000-000000000bad')}",
        "serviceurl claim for another service": f"Bearer {token(service_url='https://smba.trafficmanager.net/amer/')}",
        "serviceurl claim missing": f"Bearer {token(drop=('serviceurl',))}",
        "emulator issuer outside --dev": f"Bearer {token(iss=EMULATOR_ISSUER, ver='1.0', appid=APP_ID)}",
        "skill token": f"Bearer {token(ver='1.0', appid='99999999-9999-4999-8999-999999999999')}",
    }


CASES = [
    "missing header",
    "basic auth",
    "garbage bearer",
    "empty bearer",
    "lowercase scheme with two tokens",
    "malformed jwt",
    "expired",
    "expired just past the 5-minute skew",
    "not yet valid",
    "no expiry",
    "bad signature",
    "unknown kid",
    "no kid",
    "key not endorsed for msteams",
    "key with no endorsements",
    "alg none",
    "alg RS512 (not what the SDK decodes)",
    "hs256 keyed with the public key",
    "wrong issuer",
    "wrong audience",
    "serviceurl claim for another service",
    "serviceurl claim missing",
    "emulator issuer outside --dev",
    "skill token",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["message", "invoke"])
async def test_forged_token_is_401_with_one_warning_and_no_reply(bot: BotApp, caplog, case: str, kind: str):
    header = _forgeries(bot)[case]
    before = len(bot.connector.calls)
    if kind == "message":
        activity = bot.activity("message", text="help")
    else:
        activity = bot.activity(
            "invoke",
            name="adaptiveCard/action",
            value={"action": {"type": "Action.Execute", "verb": "help", "data": {}}},
        )
    with caplog.at_level(logging.INFO):
        result = await bot.post(activity, token=header)
    assert result.status == 401, f"{case}: got {result.status} {result.body}"
    assert result.body == {"error": "unauthorized"}
    assert len(bot.connector.calls) == before, "a rejected request must not reach the connector"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].levelno == logging.WARNING and "401" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records), "no traceback for an authentication failure"
    if header and " " in header and len(header.split(" ", 1)[1]) > 40:
        assert header.split(" ", 1)[1] not in caplog.text, "the token itself must never be logged"


async def test_valid_token_is_accepted_and_keys_came_from_bot_openid_metadata(bot: BotApp):
    result = await bot.send_message("help")
    assert result.status == 201
    assert "/v1/.well-known/keys" in bot.openid.requests
    assert bot.replies(), "the reply reached the connector stand-in"


@pytest.mark.parametrize("times", [{"nbf": 120, "exp": 3600}, {"nbf": -3600, "exp": -120}])
async def test_token_within_clock_skew_is_accepted(bot: BotApp, times: dict[str, int]):
    """The Bot Framework protocol allows five minutes of clock skew on both ends (Microsoft's docs; the SDK)."""
    now = int(time.time())
    token = bot.token(nbf=now + times["nbf"], exp=now + times["exp"])
    result = await bot.send_message("help", token=f"Bearer {token}")
    assert result.status == 201


async def test_outbound_calls_carry_the_bot_token(bot: BotApp):
    await bot.send_message("help")
    last = bot.replies()[-1]
    assert last.authorization and last.authorization.startswith("Bearer ")
    assert bot.openid.verify_outbound(last.authorization.split(" ", 1)[1], APP_ID)


async def test_a_genuine_token_for_another_channel_cannot_claim_a_teams_identity(bot: BotApp, caplog):
    """Web Chat / Direct Line clients write `from` and `channelData` themselves: a properly signed token from a key
    endorsed for that channel must not let them pose as a technician of an allowed tenant."""
    activity = bot.activity("message", text="audit 5")  # from TECH, channelData.tenant = our tenant
    activity["channelId"] = "webchat"
    before = len(bot.connector.calls)
    with caplog.at_level(logging.INFO):
        result = await bot.post(activity, token=f"Bearer {bot.token(key='webchat')}")
    assert result.status == 401 and result.body == {"error": "unauthorized"}
    assert len(bot.connector.calls) == before
    assert "channel 'webchat'" in caplog.text and not any(r.exc_info for r in caplog.records)


async def test_due_key_refresh_that_fails_keeps_the_current_keys_and_backs_off(bot: BotApp, caplog):
    """login.botframework.com briefly unreachable when the keys are due: traffic goes on with the keys in hand (they
    are half a day old, Microsoft rotates with overlap), one failed fetch does not make every request wait, and keys
    past a day are not used."""
    import datetime as dt

    from bot.server import INBOUND_AUTH

    inbound = bot.web_app[INBOUND_AUTH]
    metadata = inbound._metadata
    saved = (metadata.url, metadata.last_updated)
    metadata.url = "http://127.0.0.1:9/unreachable"  # discard port: nothing listens
    metadata.last_updated = dt.datetime.now() - dt.timedelta(hours=13)
    try:
        with caplog.at_level(logging.INFO):
            first = await bot.send_message("help")
            second = await bot.send_message("help")
        assert (first.status, second.status) == (201, 201)
        fetch_warnings = [r for r in caplog.records if "signing keys" in r.getMessage()]
        assert len(fetch_warnings) == 1, [r.getMessage() for r in fetch_warnings]
        assert not any(r.exc_info for r in caplog.records)
        # a day old, the SDK would refetch them itself on the event loop (no timeout): fail closed instead
        metadata.last_updated = dt.datetime.now() - dt.timedelta(hours=25)
        assert (await bot.send_message("help")).status == 401
    finally:
        metadata.url, metadata.last_updated = saved
