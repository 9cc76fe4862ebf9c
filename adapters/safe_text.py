"""Text someone else wrote, made safe for where Cordon puts it: a chat answer or card, the audit log, a log line.

Pure functions with no outside system behind them; `adapters/` holds them because storage (audit targets) and the
`bot/` and `dialogs/` packages all need them.
"""

from __future__ import annotations

import re

LOG_LIMIT = 200

_URL_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30}):(/{1,2}|\\\\)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def inert(value: str) -> str:
    """Text someone typed, unable to form a link or code span in Cordon's answer: in a channel, a disguised link
    inside Cordon's answer or card would look like Cordon's own. Markdown links and code spans, raw URLs
    (`https://…` → `https[:]//…`, which Teams does not link), `<https://…>` autolinks and HTML tags such as
    anchors (`<` and `>` become `‹` `›`) are all broken; the text stays readable."""
    text = str(value).replace("](", "] (").replace("`", "'")
    text = text.replace("<", "‹").replace(">", "›")
    return _URL_SCHEME.sub(lambda m: f"{m.group(1)}[:]{m.group(2)}", text)


def one_line(value: str, limit: int) -> str:
    """Whitespace (CR/LF, tabs, Unicode line separators) folded to single spaces, clipped to `limit` characters."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inert_line(value: str, limit: int) -> str:
    """One line, clipped, and inert: typed text shown back, or stored in the audit log."""
    return one_line(inert(value), limit)


def for_log(value: object, limit: int = LOG_LIMIT) -> str:
    """An attacker-controlled value in a log line: control characters (CR/LF above all, which would forge log
    lines) escaped as `\\xNN`, length bounded, so a request cannot write more than its one line."""
    text = "" if value is None else str(value)
    clipped = len(text) > limit
    text = _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text[:limit]
    )
    return text + ("…" if clipped else "")
