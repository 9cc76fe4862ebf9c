"""SPF parser and macros: positions of errors, RFC 7208 §7.4 macro examples, and fuzzing (nothing but the
documented error may come out of any text or bytes)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.emailauth.spf_lint import lint_tree, suggest_record
from adapters.emailauth.spf_macros import MacroContext, MacroSyntaxError, expand, tokenize
from adapters.emailauth.spf_parse import SpfSyntaxError, is_spf_record, parse_record
from adapters.emailauth.spf_tree import SpfNode, SpfTree, classify


def test_terms_keep_their_text_position_and_meaning():
    record = parse_record(
        "v=spf1 -a:mail.example.com/24//64 ~ip6:2001:db8::/32 include:_spf.example.com "
        "redirect=_r.example.com exp=why.%{d} x-custom=%{i}"
    )
    texts = [(t.text, t.position, t.kind, t.name, t.qualifier) for t in record.terms]
    assert texts[0] == ("-a:mail.example.com/24//64", 7, "mechanism", "a", "-")
    a_term = record.terms[0]
    assert (a_term.value, a_term.cidr4, a_term.cidr6, a_term.result) == ("mail.example.com", 24, 64, "fail")
    assert str(record.terms[1].network) == "2001:db8::/32" and record.terms[1].result == "softfail"
    assert record.redirect.value == "_r.example.com" and record.exp.value == "why.%{d}"
    assert [t.counts_lookup for t in record.terms] == [True, False, True, True, False, False]


@pytest.mark.parametrize(
    ("record", "position", "fragment"),
    [
        ("v=spf1 foo -all", 7, "unknown mechanism"),
        ("v=spf1 ip4:192.0.2.300 -all", 11, "not an IPv4"),
        ("v=spf1 ip4:192.0.2.0/33", 20, "CIDR"),
        ("v=spf1 a:example.com/ -all", 17, "top-level label"),
        ("v=spf1 a:com -all", 9, "top-level label"),
        ("v=spf1 include:example.123 -all", 23, "top-level label"),
        ("v=spf1 exists:%{q}.example.com", 16, "macro letter"),
        ("v=spf1 a:%{c}.example.com", 9, "only allowed in an explanation"),
        ("v=spf1 a:%{d0}.example.com", 12, "zero"),
        ("v=spf1 a:foo%.example.com", 12, '"%" must be followed'),
        ("v=spf1 redirect=a.example.com redirect=b.example.com", 30, "more than once"),
        ("v=spf1 -all:foo", 11, "no argument"),
        ("v=spf1 1x=y", 7, "modifier"),
        ("v=spf1 -all\t", 11, "control character"),
        ("v=spf1 a:exämple.com", 11, "non-ASCII"),
        ("v=spf1ip4:1.2.3.4", 0, 'starts with "v=spf1"'),
    ],
)
def test_syntax_errors_say_where(record, position, fragment):
    with pytest.raises(SpfSyntaxError) as error:
        parse_record(record)
    assert error.value.position == position and fragment in error.value.reason


def test_version_selection():
    assert is_spf_record(b"v=spf1") and is_spf_record("V=SPF1 -all") and is_spf_record(b"v=spf1 a")
    assert not is_spf_record(b"v=spf10 -all") and not is_spf_record("v=spf1-all") and not is_spf_record(b"")


def test_slash_inside_a_domain_spec_is_not_a_cidr():
    term = parse_record("v=spf1 a:foo:bar/baz.example.com/24").terms[0]
    assert (term.value, term.cidr4) == ("foo:bar/baz.example.com", 24)


RFC_CONTEXT = MacroContext(
    sender="strong-bad@email.example.com",
    domain="email.example.com",
    ip=ipaddress.ip_address("192.0.2.3"),
    helo="mx.example.org",
)


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{S}%%%_%-", "strong-bad%40email.example.com% %20"),
        ("%{h}", "mx.example.org"),
    ],
)
async def test_rfc_7208_macro_examples(macro, expected):
    assert await expand(macro, RFC_CONTEXT, explanation=True) == expected


async def test_ipv6_macro_and_long_names_are_truncated_from_the_left():
    context = MacroContext("a@example.com", "example.com", ipaddress.ip_address("2001:db8::cb01"))
    assert await expand("%{ir}.%{v}._spf.%{d2}", context) == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )
    long = await expand("%{i}." * 20 + "example.com", context)
    assert len(long) <= 253 and long.endswith(".example.com")


def test_explanation_only_letters_are_allowed_in_explanations():
    assert [kind for kind, _ in tokenize("%{c} at %{t} for %{r}", explanation=True)] == [
        "macro",
        "literal",
        "macro",
        "literal",
        "macro",
    ]
    with pytest.raises(MacroSyntaxError):
        tokenize("%{c}.example.com")


@given(st.text(max_size=600))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_parser_never_raises_anything_else_on_text(text):
    for candidate in (text, "v=spf1 " + text, "v=spf1 " + text.replace("\n", " ")):
        try:
            record = parse_record(candidate)
        except SpfSyntaxError as exc:
            assert 0 <= exc.position <= len(candidate)
        else:
            assert all(candidate[t.position : t.position + len(t.text)] == t.text for t in record.terms)
            parse_record(suggest_record(record))  # a derived fix is always a valid record


SPF_WORDS = st.sampled_from(
    [
        "a",
        "mx",
        "ptr",
        "all",
        "-all",
        "~all",
        "?all",
        "+all",
        "ip4:",
        "ip6:",
        "include:",
        "exists:",
        "redirect=",
        "exp=",
        "/",
        "//",
        "%{",
        "}",
        "%%",
        ":",
        ".",
        "=",
        "0",
        "24",
        "128",
        "example.com",
        "%{d}",
        "%{ir}",
        "::1",
        "192.0.2.1",
        " ",
        "  ",
    ]
)


@given(st.lists(SPF_WORDS, max_size=30))
@settings(max_examples=500)
def test_parser_never_raises_anything_else_on_spf_like_words(words):
    text = "v=spf1 " + "".join(words)
    try:
        parse_record(text)
    except SpfSyntaxError as exc:
        assert 0 <= exc.position <= len(text)


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_lint_of_any_bytes_never_raises(raw):
    for payload in (raw, b"v=spf1 " + raw):
        node = SpfNode("fuzz.example")
        classify(node, [payload])
        result = lint_tree(SpfTree(node, has_mx=True))
        assert result["status"] in ("pass", "warn", "fail", "none", "error")


@given(st.text(max_size=200), st.sampled_from(["192.0.2.1", "2001:db8::1"]))
@settings(max_examples=300)
def test_macro_expansion_never_raises_anything_else(text, ip):
    context = MacroContext("user@example.com", "example.com", ipaddress.ip_address(ip))
    try:
        result = asyncio.run(expand(text, context, explanation=True))
    except MacroSyntaxError:
        return
    assert isinstance(result, str)
