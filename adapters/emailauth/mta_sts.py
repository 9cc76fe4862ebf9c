"""MTA-STS: the `_mta-sts` record and the policy from https://mta-sts.<domain>/.well-known/mta-sts.txt, fetched
(through the check's own resolver) once the record says there is one, and judged against the domain's MX hosts.

The fetch waits for the record so that domains without MTA-STS never load aiohttp or the system CA store, which
cost more than the one round trip saved by fetching blindly."""

from __future__ import annotations

import asyncio
import importlib
import ssl
from dataclasses import dataclass
from typing import Any, cast

from adapters.dns.resolver import CheckResolver, DnsFailure
from adapters.emailauth.findings import Finding, could_not_check, decode_record, finding, quote, status_from
from adapters.emailauth.mta_sts_policy import judge_policy, judge_sts_record, parse_policy, policy_text
from adapters.http_fetch import FetchError, default_ssl_context, fetch_https

MAX_POLICY_BYTES = 65_536


@dataclass(frozen=True)
class HttpsOptions:
    """How policy files are fetched; tests give their own CA and port."""

    ssl_context: ssl.SSLContext | None = None
    port: int = 443
    timeout: float = 5.0
    allow_private: bool = False  # fetch from loopback/private addresses (tests only)


async def _mx_hosts(resolver: CheckResolver, domain: str) -> list[str] | None:
    try:
        answer = await resolver.query(domain, "MX")
    except DnsFailure:
        return None
    return [r.exchange.to_text().rstrip(".").lower() for r in answer.rdatas if hasattr(r, "exchange")]


async def _given(context: ssl.SSLContext) -> ssl.SSLContext:
    return context


async def _address(resolver: CheckResolver, host: str, rdtype: str) -> None:
    try:
        await resolver.query(host, rdtype)
    except DnsFailure:
        pass  # the fetch asks again (from the cache) and reports it


async def _fetch(resolver: CheckResolver, domain: str, options: HttpsOptions) -> bytes | FetchError | DnsFailure:
    # aiohttp and the system CA store take a few hundred ms of CPU to load at a cold start (the CLI): load them in
    # a thread so the other areas' lookups keep moving meanwhile.
    host = f"mta-sts.{domain}"
    loaded, *_ = await asyncio.gather(
        _given(options.ssl_context) if options.ssl_context else asyncio.to_thread(default_ssl_context),
        asyncio.to_thread(importlib.import_module, "aiohttp"),
        *(_address(resolver, host, rdtype) for rdtype in ("A", "AAAA")),
    )  # cached for aiohttp's resolver
    from adapters.dns.http import CheckResolverForAiohttp

    context = cast(ssl.SSLContext, loaded)

    port = "" if options.port == 443 else f":{options.port}"
    aio_resolver = CheckResolverForAiohttp(resolver, allow_private=options.allow_private)
    timeout = options.timeout
    remaining = resolver.remaining()
    if remaining is not None:
        timeout = max(0.1, min(timeout, remaining))
    try:
        fetched = await fetch_https(
            f"https://{host}{port}/.well-known/mta-sts.txt",
            resolver=aio_resolver,
            ssl_context=context,
            max_bytes=MAX_POLICY_BYTES,
            timeout=timeout,
        )
    except FetchError as exc:
        if exc.kind == "dns":
            if aio_resolver.refused:
                return FetchError(
                    "private",
                    f"{host} resolves only to non-public addresses "
                    f"({', '.join(aio_resolver.refused[:4])}), which senders on the internet cannot "
                    "reach; Cordon does not connect there",
                )
            if aio_resolver.failures:
                return aio_resolver.failures[-1]
            return FetchError("dns", f"{host} has no address (A/AAAA record)")
        return exc
    return fetched.body


async def analyse_mta_sts(domain: str, resolver: CheckResolver, options: HttpsOptions | None = None) -> dict[str, Any]:
    options = options or HttpsOptions()
    empty = {"mode": None, "max_age": None}
    try:
        answer = await resolver.query(f"_mta-sts.{domain}", "TXT")
    except DnsFailure as exc:
        return could_not_check("mta_sts", exc, **empty)
    records = [t for t in (decode_record(r) for r in answer.texts) if t.lower().startswith("v=stsv1")]
    if not records:
        return {
            "status": "none",
            **empty,
            "findings": [
                finding(
                    "info",
                    "mta_sts.missing",
                    "No MTA-STS: senders deliver over TLS only opportunistically, so a network "
                    "attacker can downgrade to plain text.",
                    f"Serve a policy at https://mta-sts.{domain}/.well-known/mta-sts.txt, then publish TXT at "
                    f"_mta-sts.{domain}: `v=STSv1; id=1`.",
                )
            ],
        }
    findings: list[Finding] = []
    if len(records) > 1:
        findings.append(
            finding(
                "error",
                "mta_sts.multiple",
                f"_mta-sts.{domain} has {len(records)} STS records; senders then ignore MTA-STS.",
                "Keep one record.",
            )
        )
    findings.extend(judge_sts_record(records[0]))
    body, mx_hosts = await asyncio.gather(_fetch(resolver, domain, options), _mx_hosts(resolver, domain))
    if isinstance(body, DnsFailure):
        return {**could_not_check("mta_sts", body, **empty)}
    if isinstance(body, FetchError):
        if body.kind == "timeout":
            return {**could_not_check("mta_sts", body, **empty)}
        suggested = policy_text("testing", mx_hosts or [], 604_800)
        findings.append(
            finding(
                "error",
                f"mta_sts.policy_{body.kind}",
                f"The policy at https://mta-sts.{domain}/"
                f".well-known/mta-sts.txt could not be fetched: {quote(str(body), 200)}.",
                "Serve it over HTTPS with a valid certificate for mta-sts." + domain + ", HTTP 200, "
                f"Content-Type text/plain, no redirect; for example:\n{suggested}",
            )
        )
        return {"status": "fail", **empty, "findings": findings}
    policy = parse_policy(body.decode("utf-8", errors="replace"))
    findings.extend(policy.findings)
    if mx_hosts is None:
        findings.append(
            finding(
                "info",
                "mta_sts.mx_unchecked",
                "The MX hosts could not be looked up, so the policy's mx: lines were not compared with them.",
                None,
            )
        )
    findings.extend(judge_policy(policy, mx_hosts or [], domain))
    status = status_from(findings)
    return {"status": status, "mode": policy.mode, "max_age": policy.max_age, "findings": findings}
