"""The Graph stand-in stays true to Microsoft's schema: every payload it serves parses into the msgraph-sdk model
with nothing left in `additional_data` (a misspelt or invented field fails here)."""

from __future__ import annotations

import pytest

from tests.support.graph_standin import GraphStandin, assert_parses, payloads
from tests.support.graph_standin.fixtures import CONTOSO
from tests.support.graph_standin.samples import assert_routes_parse, populate


async def test_every_get_route_of_the_standin_serves_payloads_that_parse() -> None:
    async with GraphStandin(home_tenant=CONTOSO) as standin:
        params = populate(standin.state)
        checked = await assert_routes_parse(standin, params)
    assert len(standin.models) >= 8
    assert len(checked) >= len(standin.models)


def test_assert_parses_catches_an_unknown_field() -> None:
    from msgraph.generated.models.user import User

    good = payloads.user("alice@contoso.com")
    assert assert_parses(good, User).user_principal_name == "alice@contoso.com"
    with pytest.raises(AssertionError, match="userPrincipalNme"):
        assert_parses({**good, "userPrincipalNme": "typo"}, User)
    from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy

    nested = payloads.ca_policy("x", include_users=["All"])
    nested["conditions"]["users"]["includeUser"] = ["All"]  # a typo two levels down
    with pytest.raises(AssertionError, match="conditions.users"):
        assert_parses(nested, ConditionalAccessPolicy)


def test_method_payloads_parse_into_their_derived_types() -> None:
    from msgraph.generated.models.authentication_method_collection_response import (
        AuthenticationMethodCollectionResponse,
    )

    methods = [
        payloads.password_method(),
        payloads.fido2_method(),
        payloads.authenticator_method("Pixel"),
        payloads.phone_method("+15555550100"),
        payloads.software_oath_method(),
        payloads.email_method("a@example.org"),
        payloads.windows_hello_method("PC"),
        payloads.temporary_access_pass_method(),
    ]
    parsed = assert_parses({"value": methods}, AuthenticationMethodCollectionResponse)
    assert [type(m).__name__ for m in parsed.value] == [
        "PasswordAuthenticationMethod",
        "Fido2AuthenticationMethod",
        "MicrosoftAuthenticatorAuthenticationMethod",
        "PhoneAuthenticationMethod",
        "SoftwareOathAuthenticationMethod",
        "EmailAuthenticationMethod",
        "WindowsHelloForBusinessAuthenticationMethod",
        "TemporaryAccessPassAuthenticationMethod",
    ]
