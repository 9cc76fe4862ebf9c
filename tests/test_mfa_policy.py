"""Which Conditional Access policies enforce MFA for a user, and method strength ranking (pure logic)."""

from __future__ import annotations

import pytest

from adapters.graph.mfa_policy import (
    Principal,
    enforcement_for,
    evaluate_policy,
    strength_of,
    strongest,
    tenant_enforcement,
    weak_only,
)
from tests.support.graph_standin import payloads

USER = "aaaaaaaa-0000-4000-8000-000000000001"
GROUP = "bbbbbbbb-0000-4000-8000-000000000002"
ALICE = Principal(user_id=USER, groups=frozenset({GROUP}), roles=frozenset({payloads.GLOBAL_ADMIN}))
GUEST = Principal(user_id="cccccccc-0000-4000-8000-000000000003", guest=True)


@pytest.mark.parametrize(
    ("policy", "who", "enforces", "gaps"),
    [
        (payloads.ca_policy("all", include_users=["All"]), ALICE, True, []),
        (payloads.ca_policy("direct", include_users=[USER.upper()]), ALICE, True, []),
        (payloads.ca_policy("group", include_groups=[GROUP]), ALICE, True, []),
        (payloads.ca_policy("role", include_roles=[payloads.GLOBAL_ADMIN]), ALICE, True, []),
        (payloads.ca_policy("excluded", include_users=["All"], exclude_users=[USER]), ALICE, False, []),
        (payloads.ca_policy("excluded group", include_users=["All"], exclude_groups=[GROUP]), ALICE, False, []),
        (
            payloads.ca_policy(
                "excluded role", include_roles=[payloads.GLOBAL_ADMIN], exclude_roles=[payloads.GLOBAL_ADMIN]
            ),
            ALICE,
            False,
            [],
        ),
        (payloads.ca_policy("others", include_groups=["dddddddd-0000-4000-8000-000000000004"]), ALICE, False, []),
        (payloads.ca_policy("guests", include_users=["GuestsOrExternalUsers"]), GUEST, True, []),
        (payloads.ca_policy("guests", include_users=["GuestsOrExternalUsers"]), ALICE, False, []),
        (
            payloads.ca_policy("report only", state="enabledForReportingButNotEnforced", include_users=["All"]),
            ALICE,
            False,
            [],
        ),
        (payloads.ca_policy("disabled", state="disabled", include_users=["All"]), ALICE, False, []),
        (payloads.ca_policy("block", include_users=["All"], controls=["block"]), ALICE, False, []),
        (payloads.ca_policy("strength", include_users=["All"], controls=[], strength=True), ALICE, True, []),
        (
            payloads.ca_policy("or device", include_users=["All"], controls=["mfa", "compliantDevice"]),
            ALICE,
            False,
            ["or compliantDevice instead"],
        ),
        (
            payloads.ca_policy(
                "and device", include_users=["All"], controls=["mfa", "compliantDevice"], operator="AND"
            ),
            ALICE,
            True,
            [],
        ),
        (
            payloads.ca_policy("office apps", include_users=["All"], apps=["Office365"]),
            ALICE,
            False,
            ["only for some apps"],
        ),
        (
            payloads.ca_policy("legacy only", include_users=["All"], client_app_types=["exchangeActiveSync"]),
            ALICE,
            False,
            ["only some client apps"],
        ),
        (
            payloads.ca_policy(
                "trusted",
                include_users=["All"],
                locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
            ),
            ALICE,
            False,
            ["not from some locations"],
        ),
    ],
)
def test_policy_scope_and_gaps(policy: dict, who: Principal, enforces: bool, gaps: list[str]) -> None:
    verdict = evaluate_policy(policy, who)
    assert verdict.enforces is enforces
    assert verdict.gaps == gaps


def test_enforcement_is_unknown_rather_than_false_when_something_could_not_be_read() -> None:
    group_policy = payloads.ca_policy("group", include_groups=[GROUP])
    assert enforcement_for(ALICE, False, None).enforced is None
    assert enforcement_for(ALICE, None, []).enforced is None
    unknown = enforcement_for(Principal(USER), False, [group_policy], memberships_known=False)
    assert unknown.enforced is None and "groups and roles" in (unknown.unknown_reason or "")
    assert enforcement_for(Principal(USER), False, [group_policy]).enforced is False
    # security defaults: without readable roles, whether this user is asked at every sign-in is unknown
    assert enforcement_for(Principal(USER), True, None, memberships_known=False).enforced is None


def test_partial_policies_are_listed_but_do_not_count_as_enforced() -> None:
    result = enforcement_for(ALICE, False, [payloads.ca_policy("office", include_users=["All"], apps=["Office365"])])
    assert result.enforced is False and result.partially_by == ["CA 'office' (only for some apps)"]


def test_tenant_wide_enforcement_line() -> None:
    everyone = payloads.ca_policy("Everyone", include_users=["All"], exclude_users=[USER])
    assert tenant_enforcement(True, None) == (
        "partly enforced by security defaults: admins at every sign-in, other "
        "users only when Microsoft judges it necessary"
    )
    assert tenant_enforcement(False, [everyone]) == "enforced tenant-wide by CA 'Everyone' (1 exclusion(s))"
    assert tenant_enforcement(False, [payloads.ca_policy("Admins", include_roles=[payloads.GLOBAL_ADMIN])]).startswith(
        "only partly enforced: CA 'Admins'"
    )
    assert tenant_enforcement(False, []).startswith("NOT enforced")
    assert tenant_enforcement(None, None).startswith("unknown")


def test_strength_ranking() -> None:
    assert [
        strength_of(t)
        for t in (
            "#microsoft.graph.fido2AuthenticationMethod",
            "microsoftAuthenticatorPush",
            "softwareOneTimePasscode",
            "mobilePhone",
            "email",
            "somethingNew",
        )
    ] == ["phishing_resistant", "strong", "moderate", "weak", "none", "none"]
    assert strongest(["weak", "moderate", "none"]) == "moderate" and strongest([]) == "none"
    assert weak_only(["mobilePhone", "email"]) and not weak_only(["mobilePhone", "fido2"]) and not weak_only([])


B2B_GUEST = Principal(user_id="eeeeeeee-0000-4000-8000-000000000005", guest=True, external=True)
OTHER_TENANT = "ffffffff-0000-4000-8000-000000000006"


def _with_users(policy: dict, **users: object) -> dict:
    from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy

    from tests.support.graph_standin.parsing import assert_parses

    policy["conditions"]["users"].update(users)
    assert_parses(policy, ConditionalAccessPolicy)  # the shape is Graph's
    return policy


@pytest.mark.parametrize(
    ("users", "who", "enforces"),
    [
        # "All users" minus guests (the object form the Entra admin center writes): the guest is not covered
        ({"excludeGuestsOrExternalUsers": payloads.guests_or_external()}, B2B_GUEST, False),
        ({"excludeGuestsOrExternalUsers": payloads.guests_or_external()}, GUEST, False),
        ({"excludeGuestsOrExternalUsers": payloads.guests_or_external()}, ALICE, True),
        # excluded only for other kinds of external users: this guest is still covered
        ({"excludeGuestsOrExternalUsers": payloads.guests_or_external("serviceProvider")}, B2B_GUEST, True),
        # excluded only for guests from some tenants: which tenant this guest is from is unknown, so not "enforced"
        ({"excludeGuestsOrExternalUsers": payloads.guests_or_external(tenants=[OTHER_TENANT])}, B2B_GUEST, False),
    ],
)
def test_guest_exclusions_in_the_object_form(users: dict, who: Principal, enforces: bool) -> None:
    policy = _with_users(payloads.ca_policy("all", include_users=["All"]), **users)
    assert evaluate_policy(policy, who).enforces is enforces


@pytest.mark.parametrize(
    ("spec", "who", "enforces"),
    [
        (payloads.guests_or_external(), B2B_GUEST, True),
        (payloads.guests_or_external(), GUEST, True),
        (payloads.guests_or_external(), ALICE, False),
        (payloads.guests_or_external("b2bDirectConnectUser"), B2B_GUEST, False),
        (payloads.guests_or_external(tenants=[OTHER_TENANT]), B2B_GUEST, False),
    ],
)
def test_guest_inclusions_in_the_object_form(spec: dict, who: Principal, enforces: bool) -> None:
    policy = _with_users(payloads.ca_policy("guests"), includeGuestsOrExternalUsers=spec)
    assert evaluate_policy(policy, who).enforces is enforces


def test_guests_from_listed_tenants_are_partly_enforced_not_unenforced() -> None:
    policy = _with_users(
        payloads.ca_policy("partner guests"),
        includeGuestsOrExternalUsers=payloads.guests_or_external(tenants=[OTHER_TENANT]),
    )
    result = enforcement_for(B2B_GUEST, False, [policy])
    assert result.enforced is False and result.partially_by == ["CA 'partner guests' (only guests from some tenants)"]


def test_unreadable_memberships_never_claim_enforced_past_a_group_or_role_exclusion() -> None:
    for policy in (
        payloads.ca_policy("all but a group", include_users=["All"], exclude_groups=[GROUP]),
        payloads.ca_policy("all but a role", include_users=["All"], exclude_roles=[payloads.USER_ADMIN]),
    ):
        unknown = enforcement_for(Principal(USER), False, [policy], memberships_known=False)
        assert unknown.enforced is None and unknown.enforced_by == [], policy["displayName"]
        assert enforcement_for(Principal(USER), False, [policy]).enforced is True
    everyone = payloads.ca_policy("everyone", include_users=["All"])
    assert enforcement_for(Principal(USER), False, [everyone], memberships_known=False).enforced is True


@pytest.mark.parametrize(
    ("condition", "value", "gap"),
    [
        ("insiderRiskLevels", "elevated", "only for risky sign-ins"),
        ("authenticationFlows", {"transferMethods": "deviceCodeFlow"}, "only some sign-in flows"),
        ("platforms", {"includePlatforms": ["all"], "excludePlatforms": ["iOS"]}, "only some platforms"),
        ("platforms", {"includePlatforms": ["android", "windows"], "excludePlatforms": []}, "only some platforms"),
    ],
)
def test_conditions_that_narrow_a_policy_make_it_partial(condition: str, value: object, gap: str) -> None:
    from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy

    from tests.support.graph_standin.parsing import assert_parses

    policy = payloads.ca_policy("narrow", include_users=["All"])
    policy["conditions"][condition] = value
    assert_parses(policy, ConditionalAccessPolicy)
    verdict = evaluate_policy(policy, ALICE)
    assert not verdict.enforces and verdict.gaps == [gap]


def test_a_temporary_access_pass_is_not_a_registration() -> None:
    from adapters.graph.mfa_policy import best_second_factor

    assert strength_of("#microsoft.graph.temporaryAccessPassAuthenticationMethod") == "moderate"  # still shown
    assert best_second_factor(["temporaryAccessPass", "email"]) == "none"
    assert best_second_factor(["#microsoft.graph.temporaryAccessPassAuthenticationMethod"]) == "none"
    assert weak_only(["mobilePhone", "temporaryAccessPass"])
    assert best_second_factor(["temporaryAccessPass", "softwareOneTimePasscode"]) == "moderate"


def test_all_platforms_is_no_gap() -> None:
    policy = payloads.ca_policy("every platform", include_users=["All"])
    policy["conditions"]["platforms"] = {"includePlatforms": ["all"], "excludePlatforms": []}
    assert evaluate_policy(policy, ALICE).enforces


def test_security_defaults_enforce_only_for_their_admin_roles() -> None:
    admin = Principal(USER, roles=frozenset({payloads.GLOBAL_ADMIN}))
    assert enforcement_for(admin, True, None).enforced_by == ["security defaults"]
    assert enforcement_for(admin, True, None).enforced is True
    reader = Principal(USER, roles=frozenset({"88d8e3e3-8f55-4a1e-953a-9b9898b8876b"}))  # Directory Readers
    for who in (Principal(USER), reader):
        result = enforcement_for(who, True, None)
        assert result.enforced is False and result.enforced_by == []
        assert result.partially_by == ["security defaults (only when Microsoft judges it necessary)"]
        assert result.only_when_necessary


def test_privileged_roles_are_microsofts_not_every_directory_role() -> None:
    from adapters.graph.mfa_policy import is_privileged_role

    for template in (
        payloads.GLOBAL_ADMIN,
        payloads.USER_ADMIN,
        payloads.SECURITY_ADMIN,
        "7BE44C8A-ADAF-4E2A-84D6-AB2649E08A13",  # Privileged Authentication Administrator
        "29232cdf-9323-42fd-ade2-1d097af3e4de",  # Exchange Administrator
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
    ):  # Intune Administrator
        assert is_privileged_role(template), template
    for template in (
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",  # Directory Readers
        "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",  # Message Center Reader
        "4a5d8f65-41da-4de4-8968-e035b65339cf",
    ):  # Reports Reader
        assert not is_privileged_role(template), template
