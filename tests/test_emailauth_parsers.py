"""The pure parsers and judgements of the e-mail checks: behaviour on real-world records, and fuzzing (no input
may raise)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.emailauth.bimi import dmarc_findings, judge_bimi_record
from adapters.emailauth.dkim_key import judge_selector_records, parse_dkim_key
from adapters.emailauth.dkim_selectors import (
    COMMON_SELECTORS,
    infer_providers,
    m365_initial_domain,
    microsoft_365_cnames,
    spf_includes,
    valid_selector,
)
from adapters.emailauth.dmarc import tree_walk_org_domain, walk_levels
from adapters.emailauth.dmarc_record import judge_policy, parse_dmarc, suggested_record
from adapters.emailauth.domain import NotADomain, normalise_domain
from adapters.emailauth.grade import grade
from adapters.emailauth.mta_sts_policy import judge_policy as judge_sts
from adapters.emailauth.mta_sts_policy import judge_sts_record, mx_matches, parse_policy
from adapters.emailauth.tags import parse_tags
from adapters.emailauth.tls_rpt import judge_tls_rpt_record


def codes(findings: list[dict]) -> set[str]:
    return {f["code"] for f in findings}


def rsa_p(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return base64.b64encode(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()


# ---------------------------------------------------------------- tags


def test_tag_list_keeps_first_value_and_reports_duplicates_and_bad_names() -> None:
    tags = parse_tags(" v = DKIM1 ; p=AB CD;p=x; 9x=1; noequals ;")
    assert tags.tags == {"v": "DKIM1", "p": "AB CD"}
    assert tags.duplicates == ["p"]
    assert any("9x" in e for e in tags.errors) and any("noequals" in e for e in tags.errors)


def test_tag_list_bounds_the_work_on_huge_records() -> None:
    tags = parse_tags("a=b;" * 5000)
    assert len(tags.errors) <= 6 and tags.duplicates == ["a"]


# ---------------------------------------------------------------- DMARC


def test_dmarc_reject_record_parses_every_tag() -> None:
    record = parse_dmarc(
        "v=DMARC1; p=reject; sp=quarantine; np=reject; pct=100; adkim=s; aspf=r; "
        "rua=mailto:a@example.com,mailto:b@example.net!10m; ruf=mailto:f@example.com; fo=1:d; "
        "t=n; psd=n; ri=86400; rf=afrf"
    )
    assert record.valid and record.findings == []
    assert (record.p, record.sp, record.np, record.pct, record.adkim, record.psd) == (
        "reject",
        "quarantine",
        "reject",
        100,
        "s",
        "n",
    )
    assert [u.domain for u in record.rua] == ["example.com", "example.net"]


def test_dmarc_weaknesses_are_flagged_with_a_record_to_publish() -> None:
    record = parse_dmarc("v=DMARC1; p=none; sp=none; np=none; pct=20; t=y; rua=mailto:rep@example.com")
    found = judge_policy(record, "example.com")
    assert {"dmarc.policy_none", "dmarc.pct_partial", "dmarc.testing"} <= codes(found)
    fix = next(f["fix"] for f in found if f["code"] == "dmarc.policy_none")
    assert "v=DMARC1; p=quarantine; rua=mailto:rep@example.com" in fix


def test_dmarc_subdomain_policies_weaker_than_p() -> None:
    record = parse_dmarc("v=DMARC1; p=reject; sp=quarantine; np=none; rua=mailto:x@example.com")
    assert {"dmarc.sp_weaker", "dmarc.np_weaker"} <= codes(judge_policy(record, "example.com"))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("v=DMARC1; p=block", "dmarc.p_invalid"),
        ("v=DMARC1; p=none; pct=101", "dmarc.pct_invalid"),
        ("v=DMARC1; p=none; adkim=x", "dmarc.adkim_invalid"),
        ("v=DMARC1; p=none; rua=https://x", "dmarc.rua_invalid"),
        ("v=DMARC1; p=none; fo=2", "dmarc.fo_invalid"),
        ("v=DMARC1; p=none; t=maybe", "dmarc.t_invalid"),
        ("v=DMARC1; p=none; psd=x", "dmarc.psd_invalid"),
        ("v=DMARC1; p=none; p=reject", "dmarc.duplicate_tag"),
        ("v=DMARC1; sp=reject", "dmarc.p_missing"),
        ("v=spf1 -all", "dmarc.no_version"),
    ],
)
def test_dmarc_tag_validation(text: str, code: str) -> None:
    assert code in codes(parse_dmarc(text).findings)


def test_dmarc_invalid_p_makes_the_record_unusable() -> None:
    assert not parse_dmarc("v=DMARC1; p=bogus").valid


def test_suggested_dmarc_record_without_a_record_uses_the_domain() -> None:
    assert suggested_record(None, "contoso.com") == "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@contoso.com"


def test_tree_walk_levels_are_capped_at_eight() -> None:
    assert walk_levels("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com", "com"]
    deep = ".".join(f"l{i}" for i in range(12)) + ".com"
    levels = walk_levels(deep)
    assert len(levels) == 8 and levels[1].count(".") == 6


def test_tree_walk_org_domain_rules() -> None:
    psd_n = parse_dmarc("v=DMARC1; p=reject; psd=n")
    psd_y = parse_dmarc("v=DMARC1; p=reject; psd=y")
    plain = parse_dmarc("v=DMARC1; p=none")
    assert tree_walk_org_domain("a.b.example.com", {"b.example.com": psd_n, "example.com": plain}) == "b.example.com"
    assert tree_walk_org_domain("a.b.example.com", {"example.com": psd_y}) == "b.example.com"
    assert tree_walk_org_domain("a.b.example.com", {"b.example.com": plain, "example.com": plain}) == "example.com"
    assert tree_walk_org_domain("a.b.example.com", {}) is None


# ---------------------------------------------------------------- DKIM


def test_dkim_rsa_sizes_are_judged_from_the_der_key() -> None:
    strong = parse_dkim_key(f"v=DKIM1; k=rsa; p={rsa_p(2048)}", "s1")
    short = parse_dkim_key(f"v=DKIM1; k=rsa; p={rsa_p(1024)}", "s2")
    assert (strong.status, strong.key_bits, strong.key_type) == ("pass", 2048, "rsa")
    assert (short.status, short.key_bits) == ("warn", 1024) and "dkim.short_key" in codes(short.findings)


def test_dkim_key_below_1024_bits_fails() -> None:
    n = (1 << 767) | 1
    key = rsa.RSAPublicNumbers(65537, n).public_key()
    p = base64.b64encode(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    weak = parse_dkim_key(f"p={p}", "old")
    assert (weak.status, weak.key_bits) == ("fail", 768) and "dkim.weak_key" in codes(weak.findings)


def test_dkim_ed25519_revoked_testing_and_sha1() -> None:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    ed = parse_dkim_key(f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}", "ed")
    assert (ed.status, ed.key_type, ed.key_bits) == ("pass", "ed25519", 256)
    revoked = parse_dkim_key("v=DKIM1; p=", "gone")
    assert revoked.revoked and revoked.status == "none"
    testing = parse_dkim_key(f"v=DKIM1; t=y; p={rsa_p(2048)}", "t")
    assert testing.testing and testing.status == "warn"
    sha1 = parse_dkim_key(f"v=DKIM1; h=sha1; p={rsa_p(2048)}", "h")
    assert sha1.status == "fail" and "dkim.sha1_only" in codes(sha1.findings)


def test_dkim_several_records_at_one_selector_warn() -> None:
    key = judge_selector_records([f"v=DKIM1; p={rsa_p(2048)}", f"v=DKIM1; p={rsa_p(2048)}"], "dup")
    assert key.status == "warn" and "dkim.multiple" in codes(key.findings)


def test_dkim_garbage_keys_fail_without_raising() -> None:
    for text in ("p=!!!", "p=AAAA", "k=ed25519; p=AAAA", "v=DKIM2; p=AAAA", "k=dsa; p=AAAA"):
        assert parse_dkim_key(text, "x").status == "fail"


def test_selector_list_covers_the_usual_providers() -> None:
    for selector in (
        "selector1",
        "selector2",
        "google",
        "k1",
        "k2",
        "k3",
        "s1",
        "s2",
        "default",
        "mail",
        "dkim",
        "fm1",
        "fm2",
        "fm3",
        "zoho",
        "mandrill",
        "amazonses",
        "proofpoint",
    ):
        assert selector in COMMON_SELECTORS
    assert valid_selector("s2048.eu") and not valid_selector("bad selector") and not valid_selector("")


def test_providers_are_inferred_from_mx_and_spf_includes() -> None:
    includes = spf_includes(["v=spf1 include:spf.protection.outlook.com include:servers.mcsv.net -all"])
    names = [p.name for p in infer_providers(["aspmx.l.google.com"], includes)]
    assert names == ["Microsoft 365", "Google Workspace", "Mailchimp"]


def test_microsoft_365_cnames_reuse_the_tenant_seen() -> None:
    seen = {"selector1": "selector1-contoso-com._domainkey.contoso.onmicrosoft.com"}
    cnames = microsoft_365_cnames("contoso.com", seen)
    assert cnames["selector2"] == (
        "selector2._domainkey.contoso.com CNAME selector2-contoso-com._domainkey.contoso.onmicrosoft.com"
    )
    # the May 2025 format keeps its tenant and partition; only the selector number differs
    seen = {"selector2": "selector2-contoso-com._domainkey.contosoltd.r-v1.dkim.mail.microsoft."}
    assert microsoft_365_cnames("contoso.com", seen, "other.onmicrosoft.com")["selector1"] == (
        "selector1._domainkey.contoso.com CNAME selector1-contoso-com._domainkey.contosoltd.r-v1.dkim.mail.microsoft"
    )


def test_microsoft_365_cnames_from_the_tenants_initial_domain() -> None:
    cnames = microsoft_365_cnames("mail.contoso.co.uk", {}, "contosoltd.onmicrosoft.com")
    assert cnames["selector1"] == (
        "selector1._domainkey.mail.contoso.co.uk CNAME "
        "selector1-mail-contoso-co-uk._domainkey.contosoltd.onmicrosoft.com"
    )
    assert "<tenant>.onmicrosoft.com" in microsoft_365_cnames("contoso.com", {})["selector2"]
    assert (
        m365_initial_domain(["contoso.com", "contoso.mail.onmicrosoft.com", "Contoso.onmicrosoft.com."])
        == "contoso.onmicrosoft.com"
    )
    assert m365_initial_domain(["contoso.com", "contoso.mail.onmicrosoft.com"]) is None


# ---------------------------------------------------------------- MTA-STS, TLS-RPT, BIMI


def test_mta_sts_policy_parse_and_mx_coverage() -> None:
    policy = parse_policy(
        "version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmx: mail.example.org\r\nmax_age: 604800\r\n"
    )
    assert (policy.mode, policy.max_age, policy.mx, policy.findings) == (
        "enforce",
        604800,
        ["*.example.com", "mail.example.org"],
        [],
    )
    found = judge_sts(policy, ["mx1.example.com", "mx.other.net"], "example.com")
    assert {"mta_sts.mx_not_covered", "mta_sts.pattern_unused"} <= codes(found)


def test_mta_sts_testing_and_small_max_age() -> None:
    policy = parse_policy("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 300\n")
    assert {"mta_sts.testing", "mta_sts.small_max_age"} <= codes(judge_sts(policy, ["mx.example.com"], "example.com"))


def test_mta_sts_wildcard_matches_exactly_one_label() -> None:
    assert mx_matches("*.example.com", "mx.example.com")
    assert not mx_matches("*.example.com", "a.b.example.com") and not mx_matches("*.example.com", "example.com")


def test_mta_sts_record_and_policy_errors() -> None:
    assert "mta_sts.record_id" in codes(judge_sts_record("v=STSv1; id=has-dash"))
    assert judge_sts_record("v=STSv1; id=" + "1" * 33) != [] and judge_sts_record("v=STSv1; id=20240101") == []
    broken = parse_policy("version: STSv2\nmode: sometimes\nmax_age: -1\nnonsense\n")
    assert {
        "mta_sts.policy_version",
        "mta_sts.policy_mode",
        "mta_sts.policy_max_age",
        "mta_sts.policy_syntax",
    } <= codes(broken.findings)


def test_tls_rpt_record() -> None:
    assert judge_tls_rpt_record("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/tls") == []
    assert "tls_rpt.no_rua" in codes(judge_tls_rpt_record("v=TLSRPTv1;"))
    assert "tls_rpt.bad_rua" in codes(judge_tls_rpt_record("v=TLSRPTv1; rua=ftp://x"))


def test_bimi_record_and_dmarc_requirement() -> None:
    findings, declined = judge_bimi_record("v=BIMI1; l=https://e.com/logo.svg; a=https://e.com/vmc.pem")
    assert findings == [] and not declined
    assert judge_bimi_record("v=BIMI1; l=; a=")[1]
    assert "bimi.dmarc_not_enforced" in codes(dmarc_findings({"status": "warn", "policy": "none"}))
    assert dmarc_findings({"status": "pass", "policy": "reject", "pct": None}) == []


# ---------------------------------------------------------------- domains and grades


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Contoso.COM.", "contoso.com"), ("bücher.example", "xn--bcher-kva.example"), ("a-b.co.uk", "a-b.co.uk")],
)
def test_domains_are_normalised_to_ascii(text: str, expected: str) -> None:
    assert normalise_domain(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "localhost",
        "192.0.2.1",
        "a..b",
        "-a.com",
        "user@contoso.com",
        "https://contoso.com",
        "x" * 64 + ".com",
        "exa mple.com",
    ],
)
def test_not_a_domain_says_why(text: str) -> None:
    with pytest.raises(NotADomain) as info:
        normalise_domain(text)
    assert str(info.value)


def _checks(**statuses: str) -> dict:
    base = {
        a: {"status": "pass", "findings": []}
        for a in ("spf", "dmarc", "dkim", "mx", "mta_sts", "tls_rpt", "bimi", "dnssec")
    }
    base["dmarc"]["policy"] = "reject"
    for area, status in statuses.items():
        base[area] = {**base[area], "status": status}
    return base


def test_grades_follow_what_protects_against_spoofing() -> None:
    assert grade(_checks()) == "A"
    assert grade(_checks(spf="none", dmarc="none")) == "F"
    assert grade(_checks(dmarc="error")) in ("D", "F")
    no_enforcement = _checks(dmarc="warn")
    no_enforcement["dmarc"]["policy"] = "none"
    assert grade(no_enforcement) in ("C", "D")
    assert grade(_checks(dkim="none")) == "B"


# ---------------------------------------------------------------- fuzzing: nothing raises

record_text = st.one_of(
    st.text(max_size=600),
    st.binary(max_size=600).map(lambda b: b.decode("utf-8", errors="replace")),
    st.lists(
        st.sampled_from(
            [
                "v=DMARC1",
                "v=DKIM1",
                "v=STSv1",
                "v=TLSRPTv1",
                "v=BIMI1",
                "p=",
                "p=reject",
                "k=rsa",
                "k=ed25519",
                "rua=mailto:a@b.c",
                "rua=",
                "t=y",
                "h=sha1",
                "pct=",
                "pct=99999999999",
                "l=https://x",
                "a=",
                "id=1",
                ";",
                "=",
                " ",
                "\x00",
                "\u202e",
                "p=MIIB",
                "fo=0:1",
            ]
        ),
        max_size=30,
    ).map("; ".join),
)


@settings(max_examples=300, deadline=None)
@given(record_text)
def test_fuzz_dmarc(text: str) -> None:
    record = parse_dmarc(text)
    judge_policy(record, "example.com")
    suggested_record(record, "example.com")


@settings(max_examples=300, deadline=None)
@given(record_text)
def test_fuzz_dkim(text: str) -> None:
    parse_dkim_key(text, "s")
    judge_selector_records([text, text], "s")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=800), record_text.map(lambda t: t.replace("; ", "\n").replace("=", ": "))))
def test_fuzz_mta_sts_policy(text: str) -> None:
    policy = parse_policy(text)
    judge_sts(policy, ["mx.example.com", "."], "example.com")
    judge_sts_record(text)


@settings(max_examples=300, deadline=None)
@given(record_text)
def test_fuzz_tls_rpt_and_bimi(text: str) -> None:
    judge_tls_rpt_record(text)
    judge_bimi_record(text)
    parse_tags(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_domain_normalisation_only_raises_not_a_domain(text: str) -> None:
    try:
        normalise_domain(text)
    except NotADomain:
        pass


def test_public_suffix_list_answers_as_the_package_default() -> None:
    from publicsuffixlist import PublicSuffixList

    from adapters.emailauth.orgdomain import org_domain

    default = PublicSuffixList()
    for name in ("mail.example.co.uk", "a.b.github.io", "x.city.kawasaki.jp", "shop.a.xn--fiqs8s", "co.uk"):
        assert org_domain(name) == default.privatesuffix(name)
    assert org_domain("mail.example.co.uk") == "example.co.uk"
    assert org_domain("shop.a.xn--fiqs8s") == "a.xn--fiqs8s"  # a non-ASCII TLD, as the check sees it (punycode)
    assert org_domain("shop.xn--fsqu00a.xn--55qx5d.cn") == "xn--fsqu00a.xn--55qx5d.cn"  # 公司.cn is a suffix
