"""Access tokens for Microsoft Graph through msal: client secret, certificate (PEM or PFX) or managed identity.

One msal application per tenant, built lazily; msal is synchronous (it uses `requests`), so every msal call runs in
a worker thread and the event loop never blocks. Tokens are cached by msal and, in front of it, here until five
minutes before they expire, so most Graph calls do not even hop to a thread. The secret itself is read from the
environment variable the config names, only when a token is needed, and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.config import GraphConfig, TenantConfig
from adapters.graph.errors import GraphProblem

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300.0


def load_certificate(path: str, password: str | None) -> dict[str, str]:
    """msal's client_credential for a certificate: the private key (PKCS#8 PEM) and its SHA-1 thumbprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    data = Path(path).read_bytes()
    secret = password.encode() if password else None
    if path.lower().endswith((".pfx", ".p12")):
        key, cert, _ = pkcs12.load_key_and_certificates(data, secret)
    else:
        key = serialization.load_pem_private_key(data, secret)
        cert = x509.load_pem_x509_certificate(data)
    if key is None or cert is None:
        raise ValueError(f"{path} must hold both the private key and the certificate")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"private_key": pem, "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}  # noqa: S303 - msal's x5t


class TokenSource:
    """Tokens for one tenant's Graph, from the credential its config names."""

    def __init__(
        self,
        tenant: TenantConfig,
        graph: GraphConfig,
        *,
        environ: Mapping[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        self.tenant = tenant
        self.graph = graph
        self._environ = environ
        self._verify = verify
        self._app: Any = None
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.acquired = 0  # tokens actually fetched through msal (tests and `tenants` status read it)

    @property
    def resource(self) -> str:
        return self.graph.endpoint

    def _env(self, name: str) -> str | None:
        env = os.environ if self._environ is None else self._environ
        return env.get(name) or None

    def _build_app(self) -> Any:
        import msal
        import requests

        session = requests.Session()
        session.verify = self._verify
        if not isinstance(self._verify, bool):  # an explicit CA bundle must win over REQUESTS_CA_BUNDLE
            session.trust_env = False
        tenant = self.tenant
        if tenant.credential == "managed_identity":
            identity = (
                msal.UserAssignedManagedIdentity(client_id=tenant.client_id)
                if tenant.client_id
                else msal.SystemAssignedManagedIdentity()
            )
            return msal.ManagedIdentityClient(identity, http_client=session, token_cache=msal.TokenCache())
        if tenant.credential == "client_secret":
            credential: Any = self._env(tenant.client_secret_env or "")
            if not credential:
                raise GraphProblem(
                    "credentials",
                    f"The client secret for {tenant.name} is missing: set the "
                    f"environment variable {tenant.client_secret_env}.",
                    tenant=tenant.name,
                )
        else:
            password = self._env(tenant.certificate_password_env) if tenant.certificate_password_env else None
            try:
                credential = load_certificate(tenant.certificate_path or "", password)
            except (OSError, ValueError, TypeError) as exc:
                raise GraphProblem(
                    "credentials",
                    f"The certificate for {tenant.name} cannot be used "
                    f"({tenant.certificate_path}): {type(exc).__name__}.",
                    tenant=tenant.name,
                ) from None
        return msal.ConfidentialClientApplication(
            tenant.client_id,
            client_credential=credential,
            authority=f"{self.graph.authority_host}/{tenant.tenant_id}",
            http_client=session,
            instance_discovery=False,
            token_cache=msal.SerializableTokenCache(),
        )

    def _acquire(self) -> dict[str, Any]:
        """Runs in a worker thread."""
        if self._app is None:
            self._app = self._build_app()
        token: dict[str, Any]
        if self.tenant.credential == "managed_identity":
            token = self._app.acquire_token_for_client(resource=self.resource)
        else:
            token = self._app.acquire_token_for_client(scopes=[f"{self.resource}/.default"])
        return token

    async def token(self) -> str:
        """A valid access token (cached until 5 minutes before expiry)."""
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            started = time.monotonic()
            try:
                result = await asyncio.to_thread(self._acquire)
            except GraphProblem:
                raise
            except Exception as exc:  # noqa: BLE001 - requests/msal errors: never leak details with secrets
                if hasattr(exc, "error") and hasattr(exc, "error_description"):  # msal raised a refusal
                    raise self._refusal({"error": exc.error, "error_description": exc.error_description}) from None
                log.warning("token request for %s failed: %s", self.tenant.name, type(exc).__name__)
                raise GraphProblem(
                    "unavailable",
                    f"Cordon could not get a token for {self.tenant.name} "
                    f"({self.tenant.credential.replace('_', ' ')}): {type(exc).__name__}; try again "
                    "later.",
                    tenant=self.tenant.name,
                ) from None
            if not isinstance(result, dict) or "access_token" not in result:
                raise self._refusal(result if isinstance(result, dict) else {})
            self._check_tenant(result["access_token"])
            self.acquired += 1 if result.get("token_source") != "cache" else 0
            lifetime = float(result.get("expires_in") or 3600)
            self._token = result["access_token"]
            self._expires_at = started + max(lifetime - REFRESH_MARGIN_SECONDS, lifetime / 2)
            return self._token

    def _check_tenant(self, token: str) -> None:
        """Refuse a token issued for another tenant: acting there under this tenant's name would read, and change,
        the wrong directory. A managed identity only ever gets tokens for its own tenant, so this is what stops one
        configured for a customer tenant. Its token must say which tenant it is for; a client secret or certificate
        token comes from this tenant's own authority, and is checked whenever it names a tenant."""
        import jwt

        try:
            tid = jwt.decode(token, options={"verify_signature": False}).get("tid")
        except jwt.PyJWTError:
            tid = None
        if tid is None and self.tenant.credential != "managed_identity":
            return
        if str(tid or "").lower() != self.tenant.tenant_id.lower():
            log.warning(
                "token for %s is for tenant %s, not %s: refused",
                self.tenant.name,
                tid or "(unknown)",
                self.tenant.tenant_id,
            )
            hint = (
                " A managed identity works only in its own tenant: use client_secret or certificate for a "
                "customer tenant."
                if self.tenant.credential == "managed_identity"
                else ""
            )
            raise GraphProblem(
                "credentials",
                f"Cordon's credential for {self.tenant.name} signs in to another "
                f"tenant ({tid or 'unknown'}), not {self.tenant.tenant_id}; nothing was read or "
                f"changed.{hint}",
                tenant=self.tenant.name,
            )

    def _refusal(self, result: dict[str, Any]) -> GraphProblem:
        error = str(result.get("error") or "no token")
        description = str(result.get("error_description") or "")
        codes = re.findall(r"AADSTS\d+", description)
        hint = {
            "managed_identity": "check that the managed identity is enabled and that this tenant is its own",
            "client_secret": f"check the app id and the secret in {self.tenant.client_secret_env}",
            "certificate": "check the app id and that the certificate is uploaded to the app registration",
        }[self.tenant.credential]
        code_text = f" ({', '.join(codes[:2])})" if codes else ""
        log.warning("token refused for %s: %s%s", self.tenant.name, error, code_text)
        return GraphProblem(
            "credentials",
            f"Cordon could not sign in to {self.tenant.name}: {error}{code_text}; {hint}.",
            tenant=self.tenant.name,
        )

    def forget(self) -> None:
        """Drop the cached token (after a 401 with a claims challenge, or in tests)."""
        self._token = None
        self._expires_at = 0.0
