"""DMARC records (RFC 7489, RFC 9989): parse, validate every tag, and judge the policy. Pure: no DNS here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from adapters.emailauth.findings import Finding, finding, quote
from adapters.emailauth.tags import parse_tags

POLICIES = ("none", "quarantine", "reject")
_STRENGTH = {"none": 0, "quarantine": 1, "reject": 2}
KNOWN_TAGS = {"v", "p", "sp", "np", "pct", "adkim", "aspf", "rua", "ruf", "fo", "t", "psd", "ri", "rf"}
# RFC 7489 §6.4: dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31 — "DMARC1" is case-sensitive
# (ABNF %x), the tag name "v" is not (an ABNF string), and nothing may precede it: receivers ignore anything else.
_VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|\Z)")
_NEAR_VERSION = re.compile(r"\s*v\s*=\s*dmarc1\s*(;|\Z)", re.IGNORECASE)  # what a person meant as DMARC
_MAILTO = re.compile(
    r"mailto:([A-Za-z0-9.#$%&'*+/=?^_`{|}~-]+)@([A-Za-z0-9.-]+\.[A-Za-z0-9-]+)"
    r"(?:!(\d+)([kmgtKMGT]?))?\Z",
    re.IGNORECASE,
)


@dataclass
class ReportUri:
    uri: str
    address: str | None = None  # the mailbox, for mailto: URIs
    domain: str | None = None  # the mailbox's domain, lower-cased


@dataclass
class DmarcRecord:
    raw: str
    p: str | None = None
    sp: str | None = None
    np: str | None = None
    pct: int | None = None
    adkim: str = "r"
    aspf: str = "r"
    rua: list[ReportUri] = field(default_factory=list)
    ruf: list[ReportUri] = field(default_factory=list)
    fo: str | None = None
    testing: bool = False  # t=y
    psd: str | None = None  # y, n or u
    findings: list[Finding] = field(default_factory=list)
    valid: bool = True  # False: the record cannot be used at all (it is as if none were published)
    acts_as_none: bool = False  # invalid p=/sp= with a valid rua=: receivers act as if it said p=none (§6.6.3)
    ignored_rua: list[ReportUri] = field(default_factory=list)  # valid addresses in a duplicate rua= tag


def is_dmarc(text: str) -> bool:
    """Records that do not start with v=DMARC1 are not DMARC records (RFC 7489 §6.6.3) and are ignored."""
    return bool(_VERSION.match(text))


def near_miss(text: str, name: str) -> Finding | None:
    """A TXT meant as DMARC that receivers ignore (`v=dmarc1`, whitespace before `v=`): say so, with the fix."""
    if is_dmarc(text) or not _NEAR_VERSION.match(text):
        return None
    fixed = _NEAR_VERSION.sub(lambda m: "v=DMARC1" + m.group(1), text.lstrip(), count=1)
    fix = f"Publish TXT at _dmarc.{name}: `{quote(fixed, 400)}`"
    if text[:1].isspace():
        return finding(
            "warning",
            "dmarc.leading_whitespace",
            f"The record at _dmarc.{name} starts with whitespace "
            "before `v=`: it is not a DMARC record (RFC 7489 §6.4), so receivers that follow the RFC "
            "ignore it and the domain has no DMARC policy.",
            fix,
        )
    written = quote(text.split(";", 1)[0].strip(), 30)
    return finding(
        "error",
        "dmarc.version_case",
        f"The record at _dmarc.{name} has `{written}` instead of "
        "`v=DMARC1` (the version is case-sensitive): it is not a DMARC record (RFC 7489 §6.4), so "
        "receivers ignore it and the domain has no DMARC policy.",
        fix,
    )


def parse_dmarc(text: str) -> DmarcRecord:
    record = DmarcRecord(raw=text)
    add = record.findings.append
    if not is_dmarc(text):
        record.valid = False
        add(
            near_miss(text, "<domain>")
            or finding(
                "error",
                "dmarc.no_version",
                "The record does not start with v=DMARC1.",
                "Start the record with `v=DMARC1;`.",
            )
        )
        return record
    tags = parse_tags(text)
    for error in tags.errors:
        add(finding("error", "dmarc.syntax", f"Syntax error: {error}.", "Rewrite the record as `tag=value;` pairs."))
    if tags.duplicates:
        add(
            finding(
                "error",
                "dmarc.duplicate_tag",
                "Tag(s) appearing more than once: "
                + ", ".join(tags.duplicates[:8])
                + "; receivers may reject the record.",
                "Keep each tag once.",
            )
        )
    unknown = [n for n in tags.order if n not in KNOWN_TAGS]
    if unknown:
        add(
            finding(
                "info",
                "dmarc.unknown_tag",
                "Unknown tags are ignored: " + ", ".join(quote(n, 20) for n in unknown[:8]) + ".",
                None,
            )
        )
    for name in ("rua", "ruf"):
        value = tags.get(name)
        if value is not None:
            uris, problems = parse_report_uris(value)
            setattr(record, name, uris)
            for problem in problems:
                add(
                    finding(
                        "error",
                        f"dmarc.{name}_invalid",
                        f"{name}: {problem}.",
                        "Use `mailto:` addresses separated by commas.",
                    )
                )
    _duplicate_rua(record, tags.all("rua"))
    _policies(record, tags.get("p"), tags.get("sp"), tags.get("np"))
    pct = tags.get("pct")
    if pct is not None:
        if pct.isdigit() and int(pct) <= 100:
            record.pct = int(pct)
        else:
            add(
                finding(
                    "error", "dmarc.pct_invalid", f"pct={quote(pct, 30)} is not a whole number from 0 to 100.", None
                )
            )
    for name in ("adkim", "aspf"):
        value = tags.get(name)
        if value is not None:
            if value.lower() in ("r", "s"):
                setattr(record, name, value.lower())
            else:
                add(finding("error", f"dmarc.{name}_invalid", f"{name}={quote(value, 30)} must be r or s.", None))
    fo = tags.get("fo")
    if fo is not None:
        options = [o.strip().lower() for o in fo.split(":")]  # tag values are case-insensitive: fo=D is fo=d
        if not options or any(o not in ("0", "1", "d", "s") for o in options):
            add(finding("error", "dmarc.fo_invalid", f"fo={quote(fo, 30)} must be 0, 1, d or s, joined by ':'.", None))
        else:
            record.fo = ":".join(options)
    t = tags.get("t")
    if t is not None:
        if t.lower() in ("y", "n"):
            record.testing = t.lower() == "y"
        else:
            add(finding("error", "dmarc.t_invalid", f"t={quote(t, 30)} must be y or n.", None))
    psd = tags.get("psd")
    if psd is not None:
        if psd.lower() in ("y", "n", "u"):
            record.psd = psd.lower()
        else:
            add(finding("error", "dmarc.psd_invalid", f"psd={quote(psd, 30)} must be y, n or u.", None))
    ri = tags.get("ri")
    if ri is not None and not ri.isdigit():
        add(finding("error", "dmarc.ri_invalid", f"ri={quote(ri, 30)} must be a number of seconds.", None))
    rf = tags.get("rf")
    if rf is not None and any(v.strip().lower() != "afrf" for v in rf.split(":")):
        add(finding("warning", "dmarc.rf_invalid", f"rf={quote(rf, 30)}: only afrf is defined.", None))
    return record


def _policies(record: DmarcRecord, p: str | None, sp: str | None, np: str | None) -> None:
    """p=, sp=, np= (values case-insensitive). RFC 7489 §6.6.3 step 6: an invalid p= or sp= makes receivers act as
    if the record were `v=DMARC1; p=none` when rua= holds a valid address (so reports keep coming), and ignore
    the record otherwise — so the policy in force is none (or nothing), never the invalid tag's neighbour."""
    add = record.findings.append
    if p is None:
        add(
            finding(
                "warning",
                "dmarc.p_missing",
                "The record has no p= tag: receivers treat it as p=none (monitoring only).",
                None,
            )
        )
    if np is not None:
        if np.lower() in POLICIES:
            record.np = np.lower()
        else:
            add(finding("error", "dmarc.np_invalid", f"np={quote(np, 30)} is not none, quarantine or reject.", None))
    bad = [
        f"{name}={quote(value, 30)}"
        for name, value in (("p", p), ("sp", sp))
        if value is not None and value.lower() not in POLICIES
    ]
    if not bad:
        record.p = p.lower() if p is not None else None
        record.sp = sp.lower() if sp is not None else None
        return
    what, verb = " and ".join(bad), "is" if len(bad) == 1 else "are"
    code = f"dmarc.{bad[0].split('=')[0]}_invalid"
    fix = "Set " + " and ".join(b.split("=")[0] + "=" for b in bad) + " to none, quarantine or reject."
    if any(u.address for u in record.rua):
        record.p, record.sp, record.np, record.acts_as_none = "none", None, None, True
        message = (
            f"{what} {verb} not none, quarantine or reject: because rua= has a valid address, receivers act "
            "as if the record said p=none for the domain and its sub-domains (RFC 7489 §6.6.3), so nothing "
            "is enforced."
        )
    else:
        record.p = record.sp = record.np = None
        record.valid = False
        message = (
            f"{what} {verb} not none, quarantine or reject and rua= has no valid address: receivers ignore "
            "the whole record (RFC 7489 §6.6.3)."
        )
    add(finding("error", code, message, fix))


def _duplicate_rua(record: DmarcRecord, values: list[str]) -> None:
    """A second rua= whose addresses are valid while the first's are not: receivers read one tag (the first, or
    they reject the record), so the valid address may never get reports. Say that, rather than "no rua"."""
    if len(values) < 2 or any(u.address for u in record.rua):
        return
    later = [u for value in values[1:] for u in parse_report_uris(value)[0] if u.address]
    if not later:
        return
    record.ignored_rua = later
    merged = ",".join(dict.fromkeys(u.uri for u in later))
    record.findings.append(
        finding(
            "error",
            "dmarc.rua_duplicate",
            f"rua= appears {len(values)} times: the first "
            f"has no valid address and the valid one ({quote(later[0].uri, 80)}) is in a "
            "duplicate tag, which receivers ignore (or they reject the whole record).",
            f"Keep one tag: `rua={quote(merged, 300)}`",
        )
    )


def parse_report_uris(value: str) -> tuple[list[ReportUri], list[str]]:
    uris: list[ReportUri] = []
    problems: list[str] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            problems.append("an empty address in the list")
            continue
        match = _MAILTO.match(item)
        if match:
            local, domain = match.group(1), match.group(2).lower().rstrip(".")
            uris.append(ReportUri(item, f"{local}@{domain}", domain))
        elif item.lower().startswith("mailto:"):
            problems.append(f"'{quote(item, 60)}' is not a valid mailto: address")
        else:
            uris.append(ReportUri(item))
            problems.append(f"'{quote(item, 60)}' is not a mailto: URI; receivers only send reports by e-mail")
    return uris, problems


def judge_policy(record: DmarcRecord, domain: str, *, inherited_from: str | None = None) -> list[Finding]:
    """Weaknesses of a usable record: monitoring only, weaker sub-domain policies, partial rollout, testing."""
    out: list[Finding] = []
    p = record.p or "none"
    fix_record = suggested_record(record, domain)
    if p == "none":
        out.append(
            finding(
                "warning",
                "dmarc.policy_none",
                "p=none only monitors: mail that fails DMARC is still delivered, so the domain can be spoofed.",
                f"When your reports show legitimate mail passes, publish `{fix_record}` "
                f"at _dmarc.{inherited_from or domain}.",
            )
        )
    for name, label in (("sp", "sub-domains"), ("np", "non-existent sub-domains")):
        value = getattr(record, name)
        if value is not None and _STRENGTH[value] < _STRENGTH[p]:
            out.append(
                finding(
                    "warning",
                    f"dmarc.{name}_weaker",
                    f"{name}={value} is weaker than p={p}: {label} can be spoofed more easily than the domain itself.",
                    f"Remove {name}= or set {name}={p}.",
                )
            )
    if record.pct is not None and record.pct < 100:
        out.append(
            finding(
                "warning",
                "dmarc.pct_partial",
                f"pct={record.pct}: the policy applies to only "
                f"{record.pct}% of failing mail (RFC 9989 drops pct; most receivers apply all or nothing).",
                "Remove pct= (or set pct=100).",
            )
        )
    if record.testing:
        out.append(
            finding(
                "warning",
                "dmarc.testing",
                "t=y: receivers are asked to apply one policy level lower (testing mode).",
                "Remove t=y when the rollout is finished.",
            )
        )
    if not record.rua and not record.ignored_rua:
        out.append(
            finding(
                "info",
                "dmarc.no_rua",
                "No rua= address: you receive no aggregate reports, so you cannot see who sends mail as this domain.",
                f"Add `rua=mailto:dmarc-reports@{domain}` (or your DMARC report service's address).",
            )
        )
    return out


def suggested_record(record: DmarcRecord | None, domain: str) -> str:
    """A record to publish: the user's own report addresses kept, enforcement at quarantine or better."""
    p = record.p if record and record.p in ("quarantine", "reject") else "quarantine"
    rua = ",".join(u.uri for u in record.rua if u.address) if record else ""
    parts = ["v=DMARC1", f"p={p}", f"rua={rua or f'mailto:dmarc-reports@{domain}'}"]
    if record and record.ruf and all(u.address for u in record.ruf):
        parts.append("ruf=" + ",".join(u.uri for u in record.ruf))
    if record and record.adkim == "s":
        parts.append("adkim=s")
    if record and record.aspf == "s":
        parts.append("aspf=s")
    return "; ".join(parts)
