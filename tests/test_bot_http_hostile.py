"""/api/messages under hostile input: authentication before the body, deep JSON, malformed HTTP framing, slow
clients, the connection cap, escaped log lines and the access line. Real sockets, the real app, real JWTs."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

import bot.server as server
from bot.http_guard import Limits
from tests.support.botapp import BOT_ID, TECH, TENANT, BotApp

SHORT = Limits(head_timeout=0.5, body_timeout=0.5, keepalive_timeout=5.0, lingering_time=0.5, max_connections=8)


async def exchange(bot: BotApp, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes on a new connection; what came back before the server closed it (or `wait` passed)."""
    port = int(bot.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        try:
            async with asyncio.timeout(wait):
                while chunk := await reader.read(65536):
                    received += chunk
        except TimeoutError:
            received += b"<still open>"
        return received
    finally:
        writer.close()


def head(length: int, authorization: str | None = None, extra: str = "") -> bytes:
    lines = [
        "POST /api/messages HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def warnings_and_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- item 2: authenticate before parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer garbage", "Basic dXNlcjpwYXNzd29yZA=="])
async def test_a_missing_or_garbage_header_is_401_before_the_body_is_sent(authorization):
    """The server answers from the headers alone: the 250 KB body is never waited for (nor read, nor parsed)."""
    async with BotApp.started() as bot:
        answer = await exchange(bot, head(250_000, authorization), wait=3.0)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


async def test_a_forged_signature_is_401_before_the_body_is_sent():
    async with BotApp.started() as bot:
        forged = f"Bearer {bot.token(key='rogue', kid='cordon-test-teams')}"
        answer = await exchange(bot, head(250_000, forged), wait=3.0)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


@pytest.mark.parametrize(
    "claims", [{"aud": "00000000-0000-0000-0000-000000000bad"}, {"exp": 1, "nbf": 0}, {"iss": "https://evil.example"}]
)
async def test_a_bad_token_is_401_even_with_a_body_that_is_not_json(claims):
    """Before the fix the body was parsed first: 400 for a request that was not even authenticated."""
    async with BotApp.started() as bot:
        result = await bot.post(raw=b"{not json", token=f"Bearer {bot.token(**claims)}")
        assert result.status == 401 and result.body == {"error": "unauthorized"}


async def test_msrest_deserialises_only_authenticated_requests(monkeypatch, caplog):
    """A token for another service URL passes every header check; the serviceurl claim is compared after a plain
    JSON parse, and the 20,000-member activity never reaches msrest."""
    calls: list[int] = []
    real = server._deserialise

    def counting(payload):
        calls.append(1)
        return real(payload)

    monkeypatch.setattr(server, "_deserialise", counting)
    async with BotApp.started() as bot:
        activity = bot.activity("conversationUpdate", membersAdded=[{"id": str(n % 10)} for n in range(20_000)])
        body = json.dumps(activity, separators=(",", ":")).encode()
        assert len(body) < server.MAX_BODY
        with caplog.at_level(logging.INFO):
            result = await bot.post(raw=body, token=f"Bearer {bot.token(service_url='https://evil.example/')}")
        assert result.status == 401
        assert calls == []
        assert "serviceurl" in caplog.text
        result = await bot.post(raw=body)
        assert result.status == 201 and calls == [1]


# --- item 3: errors and logs under hostile input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"[" * 100_000, b'{"type": "message", "value": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001]
)
async def test_deeply_nested_json_is_400_with_one_warning_and_no_traceback(caplog, raw):
    async with BotApp.started() as bot:
        with caplog.at_level(logging.INFO):
            result = await bot.post(raw=raw)
        assert result.status == 400 and "nested too deeply" in result.body["error"]
        [warning] = warnings_and_errors(caplog)
        assert warning.levelno == logging.WARNING and not warning.exc_info


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    ],
)
async def test_malformed_http_framing_is_400_with_one_warning_line_and_no_traceback(caplog, request_bytes):
    async with BotApp.started() as bot:
        with caplog.at_level(logging.DEBUG, logger="aiohttp"), caplog.at_level(logging.INFO):
            answer = await exchange(bot, request_bytes, wait=3.0)
        assert answer[:9] in (b"HTTP/1.0 ", b"HTTP/1.1 ") and answer[9:12] == b"400", answer[:200]
        [warning] = warnings_and_errors(caplog)
        assert warning.levelno == logging.WARNING and not warning.exc_info
        assert "malformed HTTP request" in warning.getMessage()
        assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)


async def test_a_request_head_that_never_finishes_is_closed_after_the_head_timeout(caplog):
    async with BotApp.started(limits=SHORT) as bot:
        with caplog.at_level(logging.INFO):
            answer = await exchange(bot, b"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", wait=4.0)
        assert answer == b"", answer[:200]  # closed, nothing answered
        assert "no complete request head" in caplog.text


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout():
    async with BotApp.started(limits=SHORT) as bot:
        assert await exchange(bot, b"", wait=4.0) == b""


async def test_a_body_that_never_finishes_is_408_and_the_connection_closed():
    async with BotApp.started(limits=SHORT) as bot:
        answer = await exchange(bot, head(5000, f"Bearer {bot.token()}") + b'{"type": "mess', wait=4.0)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert not answer.endswith(b"<still open>")


async def test_keep_alive_requests_are_not_cut_by_the_head_timeout():
    """A connection that answers requests in turn is idle between them, not slow: it keeps working."""
    async with BotApp.started(limits=SHORT) as bot:
        for _ in range(3):
            assert (await bot.send_message("help")).status == 201
            await asyncio.sleep(0.7)  # longer than the head timeout, shorter than keep-alive
        assert (await bot.send_message("help")).status == 201


async def test_connections_beyond_the_cap_are_refused_with_503_and_service_resumes(caplog):
    limits = Limits(head_timeout=30, body_timeout=5, max_connections=3)
    async with BotApp.started(limits=limits) as bot:
        port = int(bot.base_url.rsplit(":", 1)[1])
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.2)
        with caplog.at_level(logging.WARNING):
            answer = await exchange(bot, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=3.0)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert "connection(s) refused" in caplog.text
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.3)
        assert (await bot.send_message("help")).status == 201


async def test_attacker_controlled_values_in_log_lines_are_escaped(caplog):
    """A tenant id, a serviceUrl or a name with CR/LF must not write a second (forged) log line."""
    async with BotApp.started(dev=True, app_id="") as bot:
        forged = "x\r\n2026-01-01 INFO cordon: approved lockdown\r\n"
        activity = bot.activity("message", text="help", tenant=forged * 50)
        activity["channelData"]["tenant"]["id"] = forged * 50
        far = bot.activity("message", text="help", serviceUrl="https://evil.example/" + forged)
        with caplog.at_level(logging.INFO):
            assert (await bot.post(activity, token=None)).status == 202
            assert (await bot.post(far, token=None)).status == 403
        lines = [r.getMessage() for r in caplog.records if r.name.startswith(("bot", "cordon"))]
        assert any("not in allowed_tenants" in line for line in lines)
        assert any("not on loopback" in line for line in lines)
        for line in lines:
            assert "\n" not in line and "\r" not in line, line
            assert len(line) < 1200, len(line)


async def test_one_access_line_per_request_with_ids_only(caplog):
    async with BotApp.started() as bot:
        with caplog.at_level(logging.INFO, logger="cordon.access"):
            assert (await bot.send_message("help me please")).status == 201
            assert (await bot.post(raw=b"{}", token="Bearer garbage")).status == 401
        lines = [r.getMessage() for r in caplog.records if r.name == "cordon.access"]
        assert len(lines) == 2, lines
        assert lines[0].startswith(f"POST /api/messages 201 type=message tenant={TENANT} ")
        assert lines[0].endswith(" ms")
        assert lines[1].startswith("POST /api/messages 401 type=- tenant=- ")
        for line in lines:
            for personal in (TECH.name, TECH.upn, "help me", BOT_ID):
                assert personal not in line
