"""msal client credentials against the stand-in's HTTPS authority: client secret, certificate (PEM and PFX), one
msal application and token per tenant, the token bound to its tenant, and secrets never in a log line."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from adapters.config import parse_config
from adapters.graph import GraphGateway, GraphProblem, permissions
from tests.support.graph_standin import GraphStandin
from tests.support.graph_standin.authority import AppRegistration
from tests.support.graph_standin.fixtures import CONTOSO, FABRIKAM, SleepRecorder
from tests.support.tls_ca import LocalCA

APP = "5f2f0c50-1111-4222-8333-944455556666"
SECRET = "Fq8~not-a-real-secret-but-secret-enough"


def certificate(common_name: str = "cordon-app") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pem(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
async def secure_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[GraphStandin, str]]:
    ca = LocalCA()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem, encoding="utf-8")
    async with GraphStandin(home_tenant=CONTOSO, tls=ca.server_context(["localhost"])) as standin:
        for key, value in standin.environ().items():
            monkeypatch.setenv(key, value)
        yield standin, str(ca_file)


def gateway(standin: GraphStandin, ca_file: str, fabrikam: dict[str, Any], environ: dict[str, str]) -> GraphGateway:
    from adapters.graph.transport import RetryPolicy

    config = parse_config(
        {
            "graph": {"endpoint": standin.url, "authority_host": standin.authority_url},
            "tenants": [
                {"name": "Contoso", "tenant_id": CONTOSO, "domains": ["contoso.com"]},
                {"name": "Fabrikam", "tenant_id": FABRIKAM, "domains": ["fabrikam.com"], "client_id": APP, **fabrikam},
            ],
        }
    )
    return GraphGateway(config, environ=environ, verify=ca_file, retry=RetryPolicy(sleep=SleepRecorder()))


async def read_user(gw: GraphGateway, tenant: str, upn: str) -> Any:
    return await gw.get_json(gw.tenant(tenant), permissions.USER, f"/users/{upn}")


async def test_client_secret_gets_a_token_for_its_own_tenant_only(secure_standin, caplog) -> None:
    standin, ca_file = secure_standin
    caplog.set_level(logging.DEBUG)
    standin.apps[(FABRIKAM, APP)] = AppRegistration(FABRIKAM, APP, secret=SECRET)
    bob = standin.tenant(FABRIKAM).add_user("bob@fabrikam.com")
    standin.state.add_user("alice@contoso.com")
    gw = gateway(
        standin,
        ca_file,
        {"credential": "client_secret", "client_secret_env": "FABRIKAM_SECRET"},
        {"FABRIKAM_SECRET": SECRET},
    )
    try:
        for _ in range(3):
            assert (await read_user(gw, "Fabrikam", "bob@fabrikam.com"))["id"] == bob["id"]
        with pytest.raises(GraphProblem) as caught:  # Fabrikam's token sees Fabrikam's directory only
            await read_user(gw, "Fabrikam", "alice@contoso.com")
        assert caught.value.user_message == "No such user in Fabrikam."
        assert (await read_user(gw, "Contoso", "alice@contoso.com"))["userPrincipalName"] == "alice@contoso.com"
    finally:
        await gw.close()
    assert standin.token_requests == [{"tenant": FABRIKAM, "client_id": APP, "kind": "secret"}]  # one, cached
    assert [r.tenant for r in standin.graph_requests()] == [FABRIKAM] * 4 + [CONTOSO]
    assert standin.tokens and SECRET not in caplog.text
    assert not any(token in caplog.text for token in standin.tokens)  # neither the secret nor a token is logged


async def test_wrong_client_secret_is_a_credentials_problem_without_the_secret(secure_standin) -> None:
    standin, ca_file = secure_standin
    standin.apps[(FABRIKAM, APP)] = AppRegistration(FABRIKAM, APP, secret=SECRET)
    gw = gateway(
        standin,
        ca_file,
        {"credential": "client_secret", "client_secret_env": "FABRIKAM_SECRET"},
        {"FABRIKAM_SECRET": "wrong-" + SECRET},
    )
    with pytest.raises(GraphProblem) as caught:
        await read_user(gw, "Fabrikam", "bob@fabrikam.com")
    await gw.close()
    problem = caught.value
    assert problem.kind == "credentials" and problem.refused
    assert "invalid_client (AADSTS7000215)" in problem.user_message and "FABRIKAM_SECRET" in problem.user_message
    assert SECRET not in problem.user_message
    assert standin.graph_requests() == []


@pytest.mark.parametrize("form", ["pem", "pfx"])
async def test_certificate_credential_signs_an_assertion_the_authority_verifies(
    secure_standin, tmp_path: Path, form: str
) -> None:
    standin, ca_file = secure_standin
    key, cert = certificate()
    standin.apps[(FABRIKAM, APP)] = AppRegistration(
        FABRIKAM, APP, certificate_pem=cert.public_bytes(serialization.Encoding.PEM)
    )
    standin.tenant(FABRIKAM).add_user("bob@fabrikam.com")
    environ: dict[str, str] = {}
    if form == "pem":
        path = tmp_path / "app.pem"
        path.write_bytes(pem(key, cert))
        extra: dict[str, Any] = {}
    else:
        path = tmp_path / "app.pfx"
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"cordon", key, cert, None, serialization.BestAvailableEncryption(b"pfx-password")
            )
        )
        environ["FABRIKAM_PFX_PASSWORD"] = "pfx-password"
        extra = {"certificate_password_env": "FABRIKAM_PFX_PASSWORD"}
    gw = gateway(standin, ca_file, {"credential": "certificate", "certificate_path": str(path), **extra}, environ)
    try:
        assert (await read_user(gw, "Fabrikam", "bob@fabrikam.com"))["userPrincipalName"] == "bob@fabrikam.com"
    finally:
        await gw.close()
    assert standin.token_requests == [{"tenant": FABRIKAM, "client_id": APP, "kind": "assertion"}]


async def test_an_unregistered_or_unreadable_certificate_is_refused(secure_standin, tmp_path: Path) -> None:
    standin, ca_file = secure_standin
    _, registered = certificate("registered")
    standin.apps[(FABRIKAM, APP)] = AppRegistration(
        FABRIKAM, APP, certificate_pem=registered.public_bytes(serialization.Encoding.PEM)
    )
    other_key, other_cert = certificate("someone-else")
    path = tmp_path / "other.pem"
    path.write_bytes(pem(other_key, other_cert))
    gw = gateway(standin, ca_file, {"credential": "certificate", "certificate_path": str(path)}, {})
    with pytest.raises(GraphProblem) as caught:
        await read_user(gw, "Fabrikam", "bob@fabrikam.com")
    await gw.close()
    assert caught.value.kind == "credentials" and "AADSTS700027" in caught.value.user_message
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate", encoding="utf-8")
    gw = gateway(standin, ca_file, {"credential": "certificate", "certificate_path": str(broken)}, {})
    with pytest.raises(GraphProblem) as caught:
        await read_user(gw, "Fabrikam", "bob@fabrikam.com")
    await gw.close()
    assert caught.value.kind == "credentials" and "cannot be used" in caught.value.user_message


async def test_a_managed_identity_configured_for_a_customer_tenant_is_refused(graph_standin, gateway_for) -> None:
    """A managed identity gets tokens for its own (home) tenant only: used for another configured tenant, the
    token would read and change the home directory under the customer's name. Cordon refuses it."""
    standin = graph_standin
    standin.tenant(FABRIKAM).add_user("bob@fabrikam.com")
    standin.state.add_user("bob@fabrikam.com")  # a namesake in the home tenant must never be answered instead
    gw, _ = gateway_for(
        tenants=[
            {"name": "Fabrikam", "tenant_id": FABRIKAM, "domains": ["fabrikam.com"], "credential": "managed_identity"}
        ]
    )
    with pytest.raises(GraphProblem) as caught:
        await read_user(gw, "Fabrikam", "bob@fabrikam.com")
    assert caught.value.kind == "credentials"
    assert "another tenant" in caught.value.user_message and "managed identity works only" in caught.value.user_message
    assert standin.graph_requests() == []  # nothing was read
