"""A local stand-in for the Bot Framework's OpenID metadata and signing keys, plus a token minter.

The Bot Framework SDK fetches the metadata with blocking `requests`, so the server runs in its own thread
(`http.server`), never on the test's event loop. Point the bot at it with `BotOpenIdMetadata=<metadata_url>`.

Keys served in the JWKS:
- `teams` (kid "cordon-test-teams", endorsements ["msteams"]): what the Bot Connector signs Teams traffic with;
- `webchat` (kid "cordon-test-webchat", endorsements ["webchat"]): a real key, but not endorsed for Teams;
- `bare` (kid "cordon-test-bare", no `endorsements`): the SDK skips its endorsement check for such a key.
Not served: `rogue` (signs with a key nobody published: bad signature / unknown kid cases).

`mint(...)` builds any token: `channel_token(app_id, service_url)` is a valid Connector → bot token; override any
claim (`iss=`, `aud=`, `exp=`...), drop one (`drop=("serviceurl",)`), or change the header (`header={...}`).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CHANNEL_ISSUER = "https://api.botframework.com"  # iss of Bot Connector → bot tokens
EMULATOR_ISSUER = "https://login.microsoftonline.com/d6d49420-f39b-4df7-a1dc-d59a935871db/v2.0"
OUTBOUND_ISSUER = "https://login.microsoftonline.com/botframework.com/v2.0"  # iss of bot → Connector tokens

KIDS = {
    "teams": "cordon-test-teams",
    "webchat": "cordon-test-webchat",
    "bare": "cordon-test-bare",
    "rogue": "cordon-test-rogue",
}
ENDORSEMENTS: dict[str, list[str] | None] = {"teams": ["msteams"], "webchat": ["webchat"], "bare": None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class OpenIdServer:
    """OpenID metadata + JWKS on 127.0.0.1 (free port) in a daemon thread. Use as a context manager or start/stop."""

    def __init__(self) -> None:
        self.keys = {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in KIDS}
        self.requests: list[str] = []  # paths fetched (to see that the bot really used this server)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- server -------------------------------------------------------------------------------------------------
    def start(self) -> OpenIdServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests.append(self.path)
                if self.path == "/v1/.well-known/openidconfiguration":
                    body = owner.metadata()
                elif self.path == "/v1/.well-known/keys":
                    body = owner.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="openid-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenIdServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "OpenIdServer not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/v1/.well-known/openidconfiguration"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": CHANNEL_ISSUER,
            "authorization_endpoint": "https://invalid.example/v1/.well-known/no-authorize",
            "jwks_uri": f"{self.base_url}/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        keys = []
        for name, endorsements in ENDORSEMENTS.items():
            numbers = self.keys[name].public_key().public_numbers()
            key = {
                "kty": "RSA",
                "use": "sig",
                "kid": KIDS[name],
                "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            }
            if endorsements is not None:
                key["endorsements"] = endorsements
            keys.append(key)
        return {"keys": keys}

    # --- tokens -------------------------------------------------------------------------------------------------
    def mint(
        self,
        claims: dict[str, Any],
        *,
        key: str = "teams",
        kid: str | None = None,
        alg: str = "RS256",
        header: dict[str, Any] | None = None,
    ) -> str:
        """Sign `claims` with one of the keys (`kid` defaults to that key's own id; `alg="none"` gives an unsigned
        token). `header` entries are merged into the JWT header."""
        head = {"kid": kid if kid is not None else KIDS[key], **(header or {})}
        if alg == "none":
            head = {"alg": "none", "typ": "JWT", **head}
            return f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(claims).encode())}."
        return jwt.encode(claims, self.keys[key], algorithm=alg, headers=head)

    def channel_claims(self, app_id: str, service_url: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "serviceurl": service_url,
            "nbf": now - 60,
            "exp": now + 3600,
            "iss": CHANNEL_ISSUER,
            "aud": app_id,
        }
        claims.update(overrides)
        return claims

    def channel_token(
        self,
        app_id: str,
        service_url: str,
        *,
        drop: tuple[str, ...] = (),
        key: str = "teams",
        kid: str | None = None,
        alg: str = "RS256",
        header: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A Bot Connector → bot token (valid unless you override something)."""
        claims = self.channel_claims(app_id, service_url, **overrides)
        for name in drop:
            claims.pop(name, None)
        return self.mint(claims, key=key, kid=kid, alg=alg, header=header)

    def outbound_token(self, app_id: str, scope: str = "https://api.botframework.com") -> str:
        """What AAD would hand the bot for calling the Connector (used as the bot's outbound credential in tests)."""
        now = int(time.time())
        return self.mint(
            {"aud": scope, "iss": OUTBOUND_ISSUER, "appid": app_id, "ver": "1.0", "nbf": now - 60, "exp": now + 3600},
            key="teams",
        )

    def verify_outbound(self, token: str, app_id: str) -> bool:
        """True when `token` is an outbound token minted for `app_id` by this server."""
        try:
            claims = jwt.decode(
                token,
                self.keys["teams"].public_key(),
                algorithms=["RS256"],
                audience="https://api.botframework.com",
                issuer=OUTBOUND_ISSUER,
            )
        except jwt.PyJWTError:
            return False
        return claims.get("appid") == app_id
