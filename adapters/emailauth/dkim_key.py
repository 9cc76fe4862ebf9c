"""DKIM key records (RFC 6376 §3.6.1, RFC 8463 ed25519, RFC 8301 key sizes): parse and judge. Pure: no DNS."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from adapters.emailauth.findings import Finding, Status, finding, quote, status_from, worst
from adapters.emailauth.tags import parse_tags

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


@dataclass
class DkimKey:
    status: Status = "pass"
    key_type: str | None = None  # "rsa" | "ed25519"
    key_bits: int | None = None
    testing: bool = False
    revoked: bool = False
    findings: list[Finding] = field(default_factory=list)


def looks_like_dkim(text: str) -> bool:
    """A TXT at a selector is a key record if it has a p= tag or starts with v=DKIM1."""
    stripped = text.lstrip()
    return stripped.startswith("v=DKIM1") or bool(re.search(r"(^|;)\s*p\s*=", text))


def parse_dkim_key(text: str, selector: str) -> DkimKey:
    key = DkimKey()
    add = key.findings.append
    code = "dkim"
    tags = parse_tags(text)
    for error in tags.errors:
        add(finding("error", f"{code}.syntax", f"Selector {selector}: {error}.", None))
    if tags.duplicates:
        add(
            finding(
                "error",
                f"{code}.duplicate_tag",
                f"Selector {selector}: tag(s) appearing more than once: " + ", ".join(tags.duplicates[:8]) + ".",
                "Keep each tag once.",
            )
        )
    if "v" in tags.tags and (tags.order[0] != "v" or tags.tags["v"] != "DKIM1"):
        add(finding("error", f"{code}.version", f"Selector {selector}: v= must be first and exactly DKIM1.", None))
    k = (tags.get("k") or "rsa").lower()
    if k not in ("rsa", "ed25519"):
        add(finding("error", f"{code}.key_type", f"Selector {selector}: unknown key type k={quote(k, 20)}.", None))
    else:
        key.key_type = k
    flags = [f.strip().lower() for f in (tags.get("t") or "").split(":") if f.strip()]
    key.testing = "y" in flags
    if key.testing:
        add(
            finding(
                "warning",
                f"{code}.testing",
                f"Selector {selector} is in testing mode (t=y): receivers may treat its signatures as unsigned.",
                "Remove t=y from the key record once signing works.",
            )
        )
    hashes = [h.strip().lower() for h in (tags.get("h") or "").split(":") if h.strip()]
    if hashes and "sha256" not in hashes:
        add(
            finding(
                "error",
                f"{code}.sha1_only",
                f"Selector {selector} allows only {quote(':'.join(hashes), 40)}: "
                "SHA-1 signatures are not accepted (RFC 8301).",
                "Remove h= (or set h=sha256).",
            )
        )
    services = [s.strip().lower() for s in (tags.get("s") or "*").split(":")]
    if "*" not in services and "email" not in services:
        shown = quote(tags.get("s") or "", 30)
        add(finding("error", f"{code}.service", f"Selector {selector} is not for e-mail (s={shown}).", None))
    p = tags.get("p")
    if p is None:
        add(finding("error", f"{code}.no_key", f"Selector {selector} has no p= tag (no public key).", None))
        key.status = "fail"
        return key
    data = p.replace(" ", "")
    if data == "":
        key.revoked = True
        key.findings = [finding("info", f"{code}.revoked", f"Selector {selector} is revoked (empty p=).", None)]
        key.status = "none"
        return key
    raw = _b64(data)
    if raw is None:
        add(finding("error", f"{code}.bad_base64", f"Selector {selector}: the key in p= is not valid base64.", None))
    elif key.key_type == "ed25519":
        if len(raw) == 32:
            key.key_bits = 256
        else:
            add(
                finding(
                    "error",
                    f"{code}.bad_key",
                    f"Selector {selector}: an ed25519 key is 32 bytes, this one is {len(raw)}.",
                    None,
                )
            )
    elif key.key_type == "rsa":
        bits = rsa_bits(raw)
        if bits is None:
            add(finding("error", f"{code}.bad_key", f"Selector {selector}: p= is not an RSA public key.", None))
        else:
            key.key_bits = bits
            if bits < 1024:
                add(
                    finding(
                        "error",
                        f"{code}.weak_key",
                        f"Selector {selector} has a {bits}-bit RSA key: receivers reject it and it can be broken.",
                        "Generate a 2048-bit key and publish it under a new selector, then switch signing to it.",
                    )
                )
            elif bits < 2048:
                add(
                    finding(
                        "warning",
                        f"{code}.short_key",
                        f"Selector {selector} has a {bits}-bit RSA key; 2048 bits is the current recommendation.",
                        "Rotate to a 2048-bit key under a new selector.",
                    )
                )
    key.status = status_from(key.findings)
    return key


def judge_selector_records(texts: list[str], selector: str) -> DkimKey:
    """All TXT records at a selector: one key record expected; several make verification unpredictable."""
    keys = [t for t in texts if looks_like_dkim(t)]
    if not keys:
        return DkimKey(
            status="none",
            findings=[
                finding("info", "dkim.not_a_key", f"Selector {selector} has TXT records but none is a DKIM key.", None)
            ],
        )
    key = parse_dkim_key(keys[0], selector)
    if len(keys) > 1:
        key.findings.append(
            finding(
                "warning",
                "dkim.multiple",
                f"Selector {selector} has {len(keys)} key records; receivers may use either one.",
                "Keep one key record per selector.",
            )
        )
        key.status = worst(key.status, "warn") if key.status != "none" else "warn"
    return key


def _b64(data: str) -> bytes | None:
    if not _B64.match(data):
        return None
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def rsa_bits(der: bytes) -> int | None:
    """The modulus size of a DER RSA key (SubjectPublicKeyInfo, or the bare RSAPublicKey some publish)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        public = load_der_public_key(der)
    except Exception:  # noqa: BLE001 - any malformed key is "not an RSA key", never a crash
        return None
    return public.key_size if isinstance(public, rsa.RSAPublicKey) else None
