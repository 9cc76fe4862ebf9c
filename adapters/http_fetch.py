"""One strict HTTPS GET for policy files: certificate verified, no redirects, 200 only, a content type, a size cap.

Every way it can go wrong is a `FetchError` with a `kind` the caller turns into a finding; "could not check"
(`timeout`, `dns`) is kept apart from "the server is wrong" (everything else).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # aiohttp is imported when a fetch happens, not when `check` starts
    from aiohttp.abc import AbstractResolver

FetchErrorKind = Literal["dns", "private", "timeout", "connect", "tls", "redirect", "status", "content_type",
                         "too_large", "error"]


class FetchError(Exception):
    def __init__(self, kind: FetchErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes


def default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def fetch_https(url: str, *, resolver: AbstractResolver | None = None, ssl_context: ssl.SSLContext | None = None,
                      max_bytes: int = 65_536, timeout: float = 5.0,
                      content_types: tuple[str, ...] = ("text/plain",)) -> Fetched:
    import aiohttp

    if not url.startswith("https://"):
        raise FetchError("error", "only https:// URLs are fetched")
    context = ssl_context or default_ssl_context()
    connector = aiohttp.TCPConnector(resolver=resolver, ssl=context, use_dns_cache=False) if resolver else \
        aiohttp.TCPConnector(ssl=context, use_dns_cache=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout, trust_env=False) as session:
            async with session.get(url, allow_redirects=False, headers={"Accept": "text/plain"}) as response:
                if 300 <= response.status < 400:
                    where = response.headers.get("Location", "")[:200]
                    raise FetchError("redirect", f"HTTP {response.status} redirect to {where or '(no Location)'}; "
                                     "redirects are not followed")
                if response.status != 200:
                    raise FetchError("status", f"HTTP {response.status} instead of 200")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type not in content_types:
                    raise FetchError("content_type", f"Content-Type is {content_type or '(none)'!s} instead of "
                                     f"{' or '.join(content_types)}")
                body = await response.content.read(max_bytes + 1)
                if len(body) > max_bytes:
                    raise FetchError("too_large", f"the body is larger than {max_bytes} bytes")
                return Fetched(url, response.status, content_type, body)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError("timeout", f"no answer within {timeout:g} s") from None
    except aiohttp.ClientConnectorCertificateError as exc:
        raise FetchError("tls", f"certificate not valid: {_reason(exc.certificate_error)}") from None
    except aiohttp.ClientSSLError as exc:
        raise FetchError("tls", f"TLS failed: {_reason(exc)}") from None
    except aiohttp.ClientConnectorDNSError as exc:
        raise FetchError("dns", str(exc)[:200]) from None
    except aiohttp.ClientConnectorError as exc:
        raise FetchError("connect", f"could not connect: {_reason(exc.os_error)}") from None
    except (aiohttp.ClientError, ssl.SSLError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        raise FetchError("error", f"{type(exc).__name__}: {str(exc)[:160]}") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return str(text)[:200]
