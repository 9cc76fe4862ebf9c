"""A stand-in Microsoft identity platform (v2.0) for client credentials: OIDC discovery and a token endpoint.

msal only talks to an https authority, so these routes are meant to be reached through the stand-in's TLS site
(`GraphStandin(tls=...)`, `standin.authority_url`). Client secrets and certificate assertions (a JWT signed with
the app's private key, checked here against the registered certificate) are verified for real; the token issued
is bound to the tenant in the path, so the Graph routes answer from that tenant's state.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from tests.support.graph_standin.server import json_response

if TYPE_CHECKING:
    from tests.support.graph_standin.server import GraphStandin

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class AppRegistration:
    """An app registration in one tenant: its secret and/or its certificate (PEM)."""

    tenant_id: str
    client_id: str
    secret: str | None = None
    certificate_pem: bytes | None = None


def _refuse(code: str, description: str, status: int = 401) -> web.Response:
    return json_response(
        {
            "error": code,
            "error_description": f"{description}\r\nTrace ID: 0\r\nTimestamp: now",
            "error_codes": [int(c) for c in re.findall(r"AADSTS(\d+)", description)[:1]],
        },
        status,
    )


def register(router: web.UrlDispatcher, standin: GraphStandin) -> None:
    apps: dict[tuple[str, str], AppRegistration] = standin.apps

    async def discovery(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{request.scheme}://{request.host}/{tenant}"
        return json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{request.scheme}://{request.host}/{tenant}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    async def token(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = await request.post()
        standin.token_requests.append(
            dict(
                tenant=tenant,
                client_id=str(form.get("client_id")),
                kind="assertion" if form.get("client_assertion") else "secret",
            )
        )
        if form.get("grant_type") != "client_credentials":
            return _refuse("unsupported_grant_type", "AADSTS70003: unsupported grant type", 400)
        app = apps.get((tenant, str(form.get("client_id"))))
        if app is None:
            return _refuse("unauthorized_client", "AADSTS700016: Application not found in the directory", 400)
        scope = str(form.get("scope") or "")
        if scope.split()[:1] != [f"{standin.url}/.default"]:
            return _refuse("invalid_scope", "AADSTS1002012: The provided value for scope is not valid.", 400)
        if form.get("client_assertion"):
            problem = _check_assertion(
                app,
                str(form.get("client_assertion_type")),
                str(form["client_assertion"]),
                f"{request.scheme}://{request.host}{request.path}",
            )
            if problem:
                return _refuse("invalid_client", problem)
        elif not app.secret or form.get("client_secret") != app.secret:
            return _refuse("invalid_client", "AADSTS7000215: Invalid client secret provided.")
        return json_response(
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": standin.issue_token(tenant),
            }
        )

    router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", discovery)
    router.add_post("/{tenant}/oauth2/v2.0/token", token)


def _check_assertion(app: AppRegistration, kind: str, assertion: str, audience: str) -> str | None:
    """None if the JWT is signed by the registered certificate's key and names this app and endpoint."""
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    if kind != ASSERTION_TYPE or app.certificate_pem is None:
        return "AADSTS700027: Client assertion failed signature validation (no certificate registered)."
    cert = x509.load_pem_x509_certificate(app.certificate_pem)
    header = jwt.get_unverified_header(assertion)
    thumbprint = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()  # noqa: S303
    if str(header.get("x5t", "")).rstrip("=") != thumbprint:  # msal keeps the base64 padding
        return "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered."
    try:
        claims = jwt.decode(
            assertion,
            cert.public_key(),
            algorithms=["RS256", "PS256"],
            audience=audience,
            options={"require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.PyJWTError as exc:
        return f"AADSTS700027: Client assertion failed signature validation ({type(exc).__name__})."
    if claims["iss"] != app.client_id or claims["sub"] != app.client_id or claims["exp"] < time.time():
        return "AADSTS700023: Client assertion audience or issuer claim does not match."
    return None
