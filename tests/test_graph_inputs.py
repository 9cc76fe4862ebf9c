"""User input naming a Graph user, OData escaping, and which tenant a command acts in."""

from __future__ import annotations

import pytest

from adapters.config import BotSettings, CordonConfig, parse_config
from adapters.graph.inputs import BadUserInput, odata_eq, odata_string, parse_user
from adapters.graph.tenants import HOME_TENANT_NAME, TenantDirectory, UnknownTenant, default_tenants
from tests.support.graph_standin.fixtures import CONTOSO, FABRIKAM
from tests.support.graph_standin.server import parse_filter

INJECTIONS = [
    "x' or 1 eq 1",
    "alice@contoso.com' or userPrincipalName ne '",
    "') or (1 eq 1",
    "alice@contoso.com)&$select=*",
    "alice@contoso.com/../../groups",
    "alice@contoso.com?$top=999",
    "alice @contoso.com",
    '"alice"@contoso.com',
    "alice@contoso..com",
    "alice@-contoso.com",
    "alice@localhost",
    "",
    "   ",
    "not-a-guid",
    "a" * 400 + "@contoso.com",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_malformed_or_injected_user_text_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        parse_user(text)
    assert len(str(caught.value)) > 20  # a sentence that says why, not just "invalid"


@pytest.mark.parametrize(
    ("text", "key", "domain"),
    [
        ("Alice@Contoso.COM", "alice@contoso.com", "contoso.com"),
        ("mailto:bob@contoso.com", "bob@contoso.com", "contoso.com"),
        ("<o'brien@contoso.com>", "o'brien@contoso.com", "contoso.com"),
        (
            "bob_gmail.com#EXT#@contoso.onmicrosoft.com",
            "bob_gmail.com#ext#@contoso.onmicrosoft.com",
            "contoso.onmicrosoft.com",
        ),
        ("7D5B1A2C-3E4F-4A5B-8C6D-7E8F9A0B1C2D", "7d5b1a2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d", None),
    ],
)
def test_valid_user_references(text: str, key: str, domain: str | None) -> None:
    ref = parse_user(text)
    assert (ref.key, ref.domain) == (key, domain)
    assert ref.is_object_id is (domain is None)


@pytest.mark.parametrize("value", ["x' or 1 eq 1", "o'brien@contoso.com", "''", "'", "a'' or ''b", "plain"])
def test_odata_string_round_trips_through_a_strict_filter_parser_as_one_literal(value: str) -> None:
    clauses = parse_filter(odata_eq("mail", value))
    assert clauses == [("mail", value)]
    assert odata_string(value).count("'") == 2 + 2 * value.count("'")


def test_odata_eq_refuses_a_field_that_is_not_a_property_path() -> None:
    with pytest.raises(ValueError):
        odata_eq("mail eq 'x' or id", "y")


def directory() -> TenantDirectory:
    config = parse_config(
        {
            "tenants": [
                {"name": "Contoso", "tenant_id": CONTOSO, "domains": ["contoso.com", "contoso.onmicrosoft.com"]},
                {
                    "name": "Fabrikam",
                    "tenant_id": FABRIKAM,
                    "domains": ["fabrikam.com"],
                    "credential": "client_secret",
                    "client_id": "5f2f0c50-1111-4222-8333-944455556666",
                    "client_secret_env": "FABRIKAM_SECRET",
                },
            ]
        }
    )
    return TenantDirectory(config.tenants)


def test_user_domain_picks_the_owning_tenant() -> None:
    tenants = directory()
    assert tenants.resolve_user("alice@contoso.com")[0].name == "Contoso"
    assert tenants.resolve_user("bob@Fabrikam.com")[0].name == "Fabrikam"
    assert tenants.resolve_user("carol@eu.fabrikam.com")[0].name == "Fabrikam"  # a subdomain of an owned domain


def test_user_in_an_unconfigured_tenant_gets_the_list_of_configured_tenants() -> None:
    with pytest.raises(UnknownTenant) as caught:
        directory().resolve_user("mallory@northwind.example")
    message = str(caught.value)
    assert "northwind.example" in message and "Contoso" in message and "Fabrikam" in message


def test_explicit_tenant_must_match_the_users_domain() -> None:
    tenants = directory()
    with pytest.raises(UnknownTenant) as caught:
        tenants.resolve_user("alice@contoso.com", tenant_name="Fabrikam")
    assert "belongs to Contoso" in str(caught.value)
    assert tenants.resolve_user("guest@gmail.com", tenant_name="fabrikam")[0].name == "Fabrikam"
    with pytest.raises(UnknownTenant):
        tenants.resolve_user("alice@contoso.com", tenant_name="Northwind")


def test_object_id_needs_a_tenant_when_several_are_configured() -> None:
    tenants = directory()
    guid = "7d5b1a2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
    with pytest.raises(UnknownTenant) as caught:
        tenants.resolve_user(guid)
    assert "--tenant" in str(caught.value)
    assert tenants.resolve_user(guid, conversation_tenant_id=FABRIKAM)[0].name == "Fabrikam"
    assert tenants.resolve_user(guid, tenant_name=CONTOSO)[0].name == "Contoso"


def settings(tenant: str = CONTOSO, app_type: str = "SingleTenant") -> BotSettings:
    return BotSettings(
        app_id="5f2f0c50-1111-4222-8333-944455556666",
        app_password="",
        app_type=app_type,
        app_tenant_id=tenant,
        host="127.0.0.1",
        port=0,
        openid_metadata=None,
    )


def test_default_is_only_the_bots_own_tenant_with_managed_identity() -> None:
    tenants = default_tenants(CordonConfig(), settings())
    assert [(t.name, t.tenant_id, t.credential, t.client_id) for t in tenants] == [
        (HOME_TENANT_NAME, CONTOSO, "managed_identity", None)
    ]
    msi = default_tenants(CordonConfig(), settings(app_type="UserAssignedMSI"))
    assert msi[0].client_id == "5f2f0c50-1111-4222-8333-944455556666"  # the user-assigned identity's client id
    only = TenantDirectory(tenants)
    assert only.resolve_user("anyone@whatever.example")[0].tenant_id == CONTOSO
    assert default_tenants(CordonConfig(), None) == []
    with pytest.raises(UnknownTenant):
        TenantDirectory([]).resolve_user("alice@contoso.com")
