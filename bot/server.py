"""The HTTP face of the bot: `POST /api/messages`, `GET /healthz`, `GET /readyz`, and the `serve` subcommand.

Cordon answers /api/messages itself around `CloudAdapter.process_activity` (the stock `process` answers 500 for
forged tokens and for invoke bodies). The order is by cost, so an unauthenticated request costs next to nothing:
headers first (415, 413 by Content-Length, the bearer token verified without the body → 401), then the body read
with a deadline (408, 413), a plain JSON parse (400, nesting too deep included), the checks that need the body
(channel, endorsement, `serviceurl` → 401), and only then msrest's `Activity` (400), the tenant gate (messages from
other tenants dropped, invokes 403), and the turn. Invoke and `expectReplies` bodies are serialised as JSON. One
INFO access line per request (method, path, status, activity type, tenant, duration); attacker-controlled values
in log lines are escaped (`adapters.safe_text.for_log`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from adapters.config import BotSettings, CordonConfig, allowed_tenants
from adapters.safe_text import for_log
from adapters.storage import storage_kind
from bot.http_guard import Limits

if TYPE_CHECKING:
    from adapters.storage import Storage
    from bot.posted_cards import PostedCards, RecordingMessenger
    from bot.references import ReferenceStore
    from dialogs.contract import Clock, Services
    from dialogs.router import Router
    from wiring import Wiring

log = logging.getLogger(__name__)
access = logging.getLogger("cordon.access")

MAX_BODY = 256 * 1024
READY_TIMEOUT = 5.0
USAGE_ERROR = 2

MESSENGER: web.AppKey[Any] = web.AppKey("cordon.messenger", object)
SERVICES: web.AppKey[Any] = web.AppKey("cordon.services", object)
INBOUND_AUTH: web.AppKey[Any] = web.AppKey("cordon.inbound_auth", object)
# request key: what the access line may say about the activity (its type, the tenant id)
ACCESS: Any = web.RequestKey("cordon.access", dict) if hasattr(web, "RequestKey") else "cordon.access"


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _jsonable(value: Any) -> Any:
    """Plain JSON for invoke / expectReplies bodies (msrest models serialised, dicts and lists walked)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "serialize"):
        return _jsonable(value.serialize())
    raise TypeError(f"cannot serialise {type(value).__name__} in a response body")


async def _read_body(request: web.Request) -> bytes | web.Response:
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body.extend(chunk)
        if len(body) > MAX_BODY:
            return _problem(413, f"body over {MAX_BODY} bytes")
    return bytes(body)


def _parse_json(body: bytes) -> dict[str, Any] | web.Response:
    """The cheap parse: plain JSON and the fields authentication needs, no msrest yet."""
    try:
        payload = json.loads(body)
    except RecursionError:
        log.warning("400 for /api/messages: JSON nested too deeply")
        return _problem(400, "body is not valid JSON (nested too deeply)")
    except (ValueError, UnicodeDecodeError):
        return _problem(400, "body is not valid JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str) or not payload["type"]:
        return _problem(400, "body is not a Bot Framework activity (no type)")
    conversation = payload.get("conversation")
    if (
        not isinstance(payload.get("serviceUrl"), str)
        or not payload["serviceUrl"]
        or not isinstance(payload.get("channelId"), str)
        or not payload["channelId"]
        or not isinstance(conversation, dict)
        or not isinstance(conversation.get("id"), str)
        or not conversation["id"]
    ):
        return _problem(400, "activity lacks serviceUrl, channelId or conversation.id")
    return payload


def _deserialise(payload: dict[str, Any]) -> Any:
    """msrest's `Activity`: the costly part, only for an authenticated request."""
    from botbuilder.schema import Activity

    try:
        return Activity().deserialize(payload)
    except RecursionError:
        log.warning("400 for /api/messages: activity nested too deeply")
        return _problem(400, "body is not a Bot Framework activity (nested too deeply)")
    except Exception:  # noqa: BLE001 - msrest raises assorted errors for wrongly typed fields
        return _problem(400, "body is not a Bot Framework activity")


def _unauthorized(request: web.Request, exc: Exception) -> web.Response:
    log.warning("401 for /api/messages from %s: %s", for_log(request.remote, 60), for_log(exc, 300))
    return _problem(401, "unauthorized")


@web.middleware
async def access_log(request: web.Request, handler: Any) -> web.StreamResponse:
    """One INFO line per request: method, path, status, activity type and tenant (ids only), duration."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        seen = request.get(ACCESS) or {}
        access.info(
            "%s %s %d type=%s tenant=%s %.1f ms",
            for_log(request.method, 16),
            for_log(request.path, 80),
            status,
            for_log(seen.get("type") or "-", 40),
            for_log(seen.get("tenant") or "-", 60),
            (time.perf_counter() - started) * 1000,
        )


@dataclass(frozen=True)
class BotConnection:
    """The Bot Framework side, made before `Services` (whose messenger it is) and before the web app."""

    authentication: Any  # bot.auth's BotFrameworkAuthentication
    adapter: Any  # botbuilder's CloudAdapter
    references: ReferenceStore
    messenger: RecordingMessenger  # the proactive messenger, recording every card with buttons it posts
    posted: PostedCards


def connect(
    settings: BotSettings,
    config: CordonConfig,
    storage: Storage,
    clock: Clock | None,
    *,
    dev: bool,
    token_provider: Any = None,
) -> BotConnection:
    """Authentication, the adapter, stored conversation references and the proactive messenger.
    `token_provider(app_id, scope) -> token` replaces MSAL for outbound calls (tests)."""
    from botbuilder.integration.aiohttp import CloudAdapter

    from bot.auth import build_authentication
    from bot.posted_cards import PostedCards, RecordingMessenger
    from bot.proactive import BotMessenger
    from bot.references import ReferenceStore
    from dialogs.contract import utc_now

    authentication = build_authentication(settings, dev=dev, token_provider=token_provider)
    adapter = CloudAdapter(authentication)
    references = ReferenceStore(storage, clock or utc_now)
    posted = PostedCards(
        storage, clock or utc_now, retention={"alerts": dt.timedelta(days=config.alerts.card_retention_days)}
    )
    messenger = RecordingMessenger(BotMessenger(adapter, settings.app_id, references), posted)
    return BotConnection(authentication, adapter, references, messenger, posted)


def create_app(
    settings: BotSettings,
    config: CordonConfig,
    services: Services,
    router: Router,
    connection: BotConnection,
    *,
    dev: bool,
) -> web.Application:
    """The aiohttp app for the bot (`services.messenger` is expected to be `connection.messenger`)."""
    from botbuilder.schema import ActivityTypes

    from bot.auth import AuthError, InboundAuth, is_loopback
    from bot.references import tenant_of
    from bot.turns import CordonBot, action_response
    from dialogs.cards import error_card
    from dialogs.contract import ActionResult

    authentication, adapter, messenger = connection.authentication, connection.adapter, connection.messenger
    bot = CordonBot(router, connection.references, messenger, dev=dev, posted=connection.posted)
    inbound = InboundAuth(authentication, settings, dev=dev)
    tenants = {t.lower() for t in allowed_tenants(config, settings)}
    if not tenants:
        log.warning(
            "no tenant configured (allowed_tenants / MicrosoftAppTenantId): %s",
            "--dev accepts any tenant" if dev else "every activity will be refused",
        )

    async def messages(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _problem(415, "Content-Type must be application/json")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _problem(413, f"body over {MAX_BODY} bytes")
        try:
            checked = await inbound.check_header(request.headers.get("Authorization"))
        except AuthError as exc:
            return _unauthorized(request, exc)
        limits = getattr(request.protocol, "limits", None) or Limits()
        try:
            body = await asyncio.wait_for(_read_body(request), limits.body_timeout)
        except TimeoutError:
            log.warning(
                "408 for /api/messages from %s: the body did not arrive within %g s",
                for_log(request.remote, 60),
                limits.body_timeout,
            )
            response = _problem(408, "the body did not arrive in time")
            response.force_close()
            return response
        if isinstance(body, web.Response):
            return body
        payload = _parse_json(body)
        if isinstance(payload, web.Response):
            return payload
        try:
            auth_result = await inbound.authenticate(checked, payload["channelId"], payload["serviceUrl"])
        except AuthError as exc:
            return _unauthorized(request, exc)
        activity = _deserialise(payload)
        if isinstance(activity, web.Response):
            return activity
        request[ACCESS] = {"type": activity.type, "tenant": tenant_of(activity)}
        if dev and not is_loopback(activity.service_url):
            log.warning(
                "--dev: refused an activity whose serviceUrl %s is not on loopback", for_log(activity.service_url)
            )
            return _problem(403, "--dev answers only loopback service URLs")
        invoke = activity.type == ActivityTypes.invoke
        tenant = tenant_of(activity)
        if (tenants or not dev) and tenant not in tenants:
            log.warning(
                "dropped %s %s from tenant %s: not in allowed_tenants",
                for_log(activity.type, 40),
                for_log(activity.name or "", 60),
                for_log(tenant or "(none)", 60),
            )
            return _problem(403, "tenant not allowed") if invoke else web.Response(status=202)
        try:
            result = await adapter.process_activity(auth_result, activity, bot.on_turn)
        except Exception:  # noqa: BLE001 - the log gets the details, the caller a correlation id
            correlation = uuid.uuid4().hex[:12]
            log.exception("turn failed for %s activity (correlation id %s)", for_log(activity.type, 40), correlation)
            if invoke:
                card = error_card("That did not work: Cordon hit an internal error.", correlation)
                return web.json_response(action_response(ActionResult(card=card)))
            return web.json_response({"error": "internal error", "correlation_id": correlation}, status=500)
        if result is None:
            return web.Response(status=201)
        status = int(result.status or 200)
        if result.body is None:
            return web.Response(status=status)
        return web.json_response(_jsonable(result.body), status=status)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        kind = storage_kind(services.storage)  # "sqlite" | "azure": which store, never where or with what key
        try:
            await asyncio.wait_for(services.storage.ping(), READY_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness: %s storage unreachable (%s)", kind, type(exc).__name__)
            return web.json_response({"status": "storage unreachable", "storage": kind}, status=503)
        return web.json_response({"status": "ready", "storage": kind})

    async def prewarm_keys(app: web.Application) -> None:
        if settings.app_id or settings.openid_metadata:
            try:
                await inbound.refresh_keys()
            except Exception:  # noqa: BLE001 - refresh_keys logged it; retried on the first request
                pass

    app = web.Application(client_max_size=MAX_BODY + 1, middlewares=[access_log])
    app[MESSENGER] = messenger
    app[SERVICES] = services
    app[INBOUND_AUTH] = inbound
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.on_startup.append(prewarm_keys)
    return app


# --- the `serve` subcommand ---------------------------------------------------------------------------------------

NO_APP_ID = (
    "cordon: MicrosoftAppId is not set, so nobody could authenticate to this bot and it will not start.\n"
    "  - For Teams: set MicrosoftAppId, MicrosoftAppPassword, MicrosoftAppType and MicrosoftAppTenantId (the Azure "
    "Bot's values) in the environment or in a .env file.\n"
    "  - To try Cordon locally with the Bot Framework Emulator: python app.py --dev (loopback only, no auth)."
)
NO_TENANT = (
    "cordon: no tenant is allowed: set allowed_tenants in cordon.toml or MicrosoftAppTenantId in the environment "
    "(or use --dev to accept any tenant locally)."
)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dev",
        action="store_true",
        help="local try-out: bind 127.0.0.1 only, accept unauthenticated requests, reply only to loopback service URLs",
    )
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: PORT or 3978)")


def run(name: str, args: argparse.Namespace, wiring: Wiring) -> int:
    settings, config = wiring.load_or_exit()
    if not settings.app_id and not args.dev:
        print(NO_APP_ID, file=sys.stderr)
        return USAGE_ERROR
    if not args.dev and not allowed_tenants(config, settings):
        print(NO_TENANT, file=sys.stderr)
        return USAGE_ERROR
    host = "127.0.0.1" if args.dev else settings.host
    if args.dev and settings.host not in ("127.0.0.1", "0.0.0.0", "localhost"):
        log.warning("--dev ignores HOST=%s and binds 127.0.0.1", settings.host)
    port = args.port if args.port is not None else settings.port

    web_app = wiring.build_app(settings, config, dev=args.dev)
    mode = "DEV mode (no authentication, loopback only)" if args.dev else "authenticated"
    log.info("Cordon listening on http://%s:%s/api/messages, %s", host, port, mode)
    from bot.http_guard import serve_forever

    serve_forever(web_app, host, port)
    return 0
