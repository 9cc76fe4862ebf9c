"""Who may call /api/messages, and where replies may go.

The Bot Framework SDK does the JWT work (signature, expiry, issuer, audience, `serviceurl`, endorsements), but on its
own it answers some forged tokens with exceptions that are not `PermissionError` (unknown key id → IndexError),
fetches signing keys with blocking `requests` on the event loop, follows Emulator and skill tokens to Microsoft's
public metadata, and wants the deserialised `Activity` first. `InboundAuth` therefore works in two steps:
`check_header` before the body is read (scheme, JWT shape, algorithm, issuer, key id, and outside --dev the
signature, audience, expiry and not-before with PyJWT against the same keys), then `authenticate` after a cheap
JSON parse (outside --dev the Teams channel only, the key's endorsement for the channel, the `serviceurl` claim,
and the SDK's own validation), before msrest deserialises anything. Keys are refreshed in a worker thread, and
*every* failure is an `AuthError` (→ 401). In `--dev`, outbound traffic is confined to loopback service URLs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    AuthenticationConfiguration,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    BotFrameworkAuthenticationFactory,
    ClaimsIdentity,
    ConnectorFactory,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)
from botframework.connector.auth.emulator_validation import EmulatorValidation
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from botframework.connector.auth.skill_validation import SkillValidation
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from adapters.config import BotSettings
from adapters.safe_text import for_log
from bot.sdk_internals import reapply_session_config, refresh_openid_metadata, requests_driver

log = logging.getLogger(__name__)

CHANNEL_ISSUER = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
ALLOWED_ALGORITHMS = ("RS256",)  # the SDK decodes RS256 only
CLOCK_SKEW_SECONDS = 5 * 60  # what the Bot Framework protocol (and the SDK's channel validation) allows
TEAMS_CHANNEL = "msteams"  # the only channel whose `from.aadObjectId` and `channelData.tenant` the channel vouches for
KEY_REFRESH_SECONDS = 12 * 3600  # the SDK's own refresh is daily; refresh earlier, in a thread
UNKNOWN_KID_REFRESH_SECONDS = 300  # an unknown key id refreshes the keys at most this often
CONNECTOR_TIMEOUT_SECONDS = 30
KEY_FETCH_TIMEOUT_SECONDS = 15
KEY_RETRY_SECONDS = 60  # after a failed fetch, the keys in hand serve this long before the next try
KEY_MAX_AGE_SECONDS = 23 * 3600  # past a day the SDK refetches the keys itself, on the event loop, with no timeout

# (app_id, oauth_scope) -> access token; used instead of MSAL when given (tests, custom token sources)
TokenProvider = Callable[[str, str], str]


class AuthError(Exception):
    """The request is not authenticated; the message (never the token) goes to the log."""


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NonLoopbackServiceUrl(PermissionError):
    """--dev refuses to send anything to a service URL off this machine."""


class _TokenCredentials(AppCredentials):
    def __init__(self, app_id: str, scope: str, provider: TokenProvider) -> None:
        super().__init__(app_id=app_id, oauth_scope=scope)
        self._provider = provider

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._provider(self.microsoft_app_id, self.oauth_scope)


class TokenProviderCredentialFactory(ServiceClientCredentialsFactory):
    """Outbound credentials from a token provider instead of MSAL (the app id checks stay the same)."""

    def __init__(self, app_id: str, provider: TokenProvider) -> None:
        self.app_id = app_id
        self.provider = provider

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(self.app_id) and app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        if not self.app_id:
            return MicrosoftAppCredentials.empty()
        if app_id != self.app_id:
            raise PermissionError("credentials asked for another app id")
        return _TokenCredentials(app_id, oauth_scope, self.provider)


class _AppConfig:
    """The attribute names ConfigurationServiceClientCredentialFactory reads."""

    def __init__(self, settings: BotSettings) -> None:
        self.APP_ID = settings.app_id
        self.APP_PASSWORD = settings.app_password
        self.APP_TYPE = settings.app_type
        self.APP_TENANTID = settings.app_tenant_id


def _own_retries(client: Any) -> Any:
    """No HTTP-status retries inside the SDK (it would sleep out a 429's Retry-After and mask 5xx statuses):
    callers get a DeliveryError with the status and decide. Connection failures are still retried. No redirect
    is followed: a 307 would re-send the message elsewhere (off loopback, in --dev)."""
    from urllib3.util.retry import Retry

    policy = Retry(
        total=2,
        connect=2,
        read=0,
        redirect=0,
        status=0,
        other=0,
        status_forcelist=(),
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    policy.BACKOFF_MAX = 2  # type: ignore[attr-defined]  # msrest's ClientRetryPolicy reads this attribute
    client.config.retry_policy.policy = policy
    client.config.redirect_policy.allow = False
    driver = requests_driver(client)
    if driver is not None:  # its requests session was set up when the client was built: apply the policy now
        reapply_session_config(driver)
    client.config.connection.timeout = CONNECTOR_TIMEOUT_SECONDS
    return client


class _GuardedFactory(ConnectorFactory):
    def __init__(self, inner: ConnectorFactory, *, loopback_only: bool) -> None:
        self.inner = inner
        self.loopback_only = loopback_only

    async def create(self, service_url: str, audience: str) -> Any:
        if self.loopback_only and not is_loopback(service_url):
            log.warning("--dev: refused to send to non-loopback serviceUrl %s", for_log(service_url))
            raise NonLoopbackServiceUrl(f"--dev sends only to loopback service URLs, not {for_log(service_url)}")
        return _own_retries(await self.inner.create(service_url, audience))


class GuardedAuthentication(BotFrameworkAuthentication):
    """Wraps the SDK's authentication so every connector it makes has Cordon's retry policy and, in --dev,
    refuses non-loopback service URLs."""

    def __init__(self, inner: BotFrameworkAuthentication, *, loopback_only: bool) -> None:
        self.inner = inner
        self.loopback_only = loopback_only

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await self.inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _GuardedFactory(result.connector_factory, loopback_only=self.loopback_only)
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> Any:
        raise PermissionError("streaming is not supported")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _GuardedFactory(self.inner.create_connector_factory(claims_identity), loopback_only=self.loopback_only)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> Any:
        return await self.inner.create_user_token_client(claims_identity)

    def create_bot_framework_client(self) -> Any:
        return self.inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self.inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self.inner.authenticate_channel_request(auth_header)


def channel_metadata_url(settings: BotSettings) -> str:
    return settings.openid_metadata or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL


def build_authentication(
    settings: BotSettings, *, dev: bool, token_provider: TokenProvider | None = None
) -> BotFrameworkAuthentication:
    """The SDK's authentication for the public cloud, with `BotOpenIdMetadata` honoured for inbound tokens."""
    if token_provider is not None:
        credentials: ServiceClientCredentialsFactory = TokenProviderCredentialFactory(settings.app_id, token_provider)
    else:
        from botbuilder.integration.aiohttp import ConfigurationServiceClientCredentialFactory

        credentials = ConfigurationServiceClientCredentialFactory(_AppConfig(settings))
    auth = BotFrameworkAuthenticationFactory.create(
        validate_authority=True,
        to_channel_from_bot_login_url=AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX,
        to_channel_from_bot_oauth_scope=AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
        to_bot_from_channel_token_issuer=CHANNEL_ISSUER,
        oauth_url=AuthenticationConstants.OAUTH_URL,
        to_bot_from_channel_open_id_metadata_url=channel_metadata_url(settings),
        to_bot_from_emulator_open_id_metadata_url=AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        caller_id=CallerIdConstants.public_azure_channel,
        credential_factory=credentials,
        auth_configuration=AuthenticationConfiguration(),
    )
    return GuardedAuthentication(auth, loopback_only=dev)


class InboundAuth:
    """Authenticates one /api/messages request; raises AuthError for every kind of failure."""

    def __init__(self, auth: BotFrameworkAuthentication, settings: BotSettings, *, dev: bool) -> None:
        self.auth = auth
        self.settings = settings
        self.dev = dev
        self._metadata = JwtTokenExtractor.get_open_id_metadata(channel_metadata_url(settings))
        self._refresh_lock = asyncio.Lock()
        self._last_unknown_refresh = float("-inf")
        self._last_failed_fetch = float("-inf")
        self._public_keys: dict[str, tuple[dict[str, Any], Any]] = {}  # kid -> (its JWK, the RSA key made of it)

    async def refresh_keys(self, *, force: bool = False) -> None:
        """Fetch the signing keys in a worker thread (the SDK would block the event loop doing it). After a failed
        fetch, keys already in hand serve for KEY_RETRY_SECONDS, so an outage does not hold every request."""
        async with self._refresh_lock:
            if not force and self._key_age() <= KEY_REFRESH_SECONDS:
                return
            now = asyncio.get_running_loop().time()
            if not force and self._metadata.keys and now - self._last_failed_fetch < KEY_RETRY_SECONDS:
                return
            fetch = asyncio.to_thread(refresh_openid_metadata, self._metadata)
            try:
                await asyncio.wait_for(fetch, KEY_FETCH_TIMEOUT_SECONDS)  # the SDK's requests.get has no timeout
            except Exception as exc:
                self._last_failed_fetch = now
                log.warning(
                    "could not fetch the Bot Framework signing keys from %s (%s)%s",
                    self._metadata.url,
                    type(exc).__name__,
                    "; using the keys in hand" if self._metadata.keys else "",
                )
                raise

    def _key_age(self) -> float:
        return (dt.datetime.now() - self._metadata.last_updated).total_seconds()

    async def _key(self, kid: str) -> dict[str, Any] | None:
        try:
            await self.refresh_keys()
        except Exception:  # noqa: BLE001 - refresh_keys logged it; the keys in hand may still serve
            pass
        if not self._metadata.keys or self._key_age() > KEY_MAX_AGE_SECONDS:
            raise AuthError("no current signing keys: they could not be fetched")
        key = next((k for k in self._metadata.keys if k.get("kid") == kid), None)
        now = asyncio.get_running_loop().time()
        if key is None and now - self._last_unknown_refresh > UNKNOWN_KID_REFRESH_SECONDS:
            self._last_unknown_refresh = now
            try:
                await self.refresh_keys(force=True)
            except Exception:  # noqa: BLE001
                return None
            key = next((k for k in self._metadata.keys if k.get("kid") == kid), None)
        return key

    def _anonymous(self) -> AuthenticateRequestResult:
        app_id = self.settings.app_id
        claims = {"aud": app_id, "appid": app_id} if app_id else {}
        identity = ClaimsIdentity(claims, True, AuthenticationConstants.ANONYMOUS_AUTH_TYPE)
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        result.caller_id = None
        result.connector_factory = self.auth.create_connector_factory(identity)
        return result

    async def check_header(self, header: str | None) -> CheckedToken:
        """Everything that does not need the body, before Cordon reads it: the scheme, the JWT's shape, algorithm,
        key id, issuer and, outside --dev, its signature, audience, expiry and not-before (PyJWT, with the Bot
        Framework's five minutes of clock skew) against the channel's published keys. A flood of unauthenticated
        requests with large bodies therefore costs no parsing at all."""
        if not header:
            if self.dev:
                return CheckedToken(token=None, claims={}, key=None)
            raise AuthError("no Authorization header")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AuthError(f"Authorization ({scheme[:20]!r} scheme) is not one bearer token")
        try:
            head = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed JWT: {exc}") from None
        if head.get("alg") not in ALLOWED_ALGORITHMS:
            raise AuthError(f"signing algorithm {str(head.get('alg'))[:20]!r} is not allowed")
        kid = head.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token has no key id")
        if not isinstance(claims.get("exp"), int | float):
            raise AuthError("token has no expiry")
        if SkillValidation.is_skill_claim(claims):
            raise AuthError("skill (bot-to-bot) tokens are not accepted")
        issuer = claims.get("iss")
        emulator = issuer in EmulatorValidation.TO_BOT_FROM_EMULATOR_TOKEN_VALIDATION_PARAMETERS.issuer
        if emulator:
            if not self.dev:
                raise AuthError("Emulator tokens are accepted only with --dev")
            return CheckedToken(token=token, claims=claims, key=None)  # the SDK checks it once the body is read
        if issuer != CHANNEL_ISSUER:
            raise AuthError(f"issuer {str(issuer)[:80]!r} is not the Bot Framework channel")
        key = await self._key(kid)
        if key is None:
            raise AuthError(f"unknown key id {kid[:60]!r}")
        if not self.dev:
            claims = self._verify(token, key)
        return CheckedToken(token=token, claims=claims, key=key)

    def _verify(self, token: str, key: dict[str, Any]) -> dict[str, Any]:
        """Signature, issuer, audience (this bot's app id), expiry and not-before, with the SDK's clock skew."""
        try:
            public_key = self._public_keys.get(key["kid"])
            if public_key is None or public_key[0] is not key:
                loaded = RSAAlgorithm.from_jwk(json.dumps(key))
                if not isinstance(loaded, RSAPublicKey):  # a JWKS never publishes a private key; refuse one
                    raise jwt.InvalidKeyError("the signing key is not an RSA public key")
                public_key = (key, loaded)
                self._public_keys = {**self._public_keys, key["kid"]: public_key}
            return jwt.decode(
                token,
                public_key[1],
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=self.settings.app_id,
                issuer=CHANNEL_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise AuthError(f"{type(exc).__name__}: {exc}"[:200]) from None

    async def authenticate(
        self, checked: CheckedToken, channel_id: str | None, service_url: str | None
    ) -> AuthenticateRequestResult:
        """The checks that need the body, from a cheap parse of it (before msrest builds the `Activity`): the
        channel, the key's endorsement for it, the `serviceurl` claim; then the SDK's own validation, which yields
        the connector factory for replies."""
        if not self.dev and channel_id != TEAMS_CHANNEL:
            # Web Chat / Direct Line clients write `from` and `channelData` themselves: a genuine token for such a
            # channel would let them claim a Teams user's object id and an allowed tenant.
            raise AuthError(f"channel {for_log(channel_id, 40)!r} is not served (only {TEAMS_CHANNEL!r})")
        if checked.token is None:
            return self._anonymous()
        if checked.key is not None:
            if channel_id not in (checked.key.get("endorsements") or []):
                raise AuthError(
                    f"key {checked.key.get('kid', '')[:60]!r} is not endorsed for channel {for_log(channel_id, 40)!r}"
                )
            if checked.claims.get("serviceurl") != service_url:
                raise AuthError("the token's serviceurl claim is not the activity's serviceUrl")
        activity = Activity(channel_id=channel_id, service_url=service_url)  # all the SDK reads from it here
        try:
            return await self.auth.authenticate_request(activity, f"Bearer {checked.token}")
        except Exception as exc:  # noqa: BLE001 - every SDK failure here is an authentication failure
            raise AuthError(f"{type(exc).__name__}: {exc}"[:200]) from None


@dataclass(frozen=True)
class CheckedToken:
    """A bearer token that passed every check the body is not needed for (`token=None`: anonymous, --dev)."""

    token: str | None
    claims: dict[str, Any]
    key: dict[str, Any] | None  # the channel's signing key (JWK) it was verified with; None for Emulator / anonymous
