"""Plain replies to Bot Framework activities, and connector failures to `DeliveryError`."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Attachment

from dialogs.contract import DeliveryError, Reply

log = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def reply_activity(reply: Reply, *, message_id: str | None = None) -> Activity:
    attachments = [Attachment(content_type=ADAPTIVE_CARD, content=reply.card)] if reply.card else None
    activity = Activity(
        type=ActivityTypes.message,
        text=reply.text,
        attachments=attachments,
        text_format="markdown" if reply.text else None,
    )
    if message_id:
        activity.id = message_id
    return activity


def _status_and_headers(exc: BaseException) -> tuple[int | None, Any]:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return (int(status) if status is not None else None), headers
    except (TypeError, ValueError):
        return None, headers


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After")
    except AttributeError:
        return None
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            import datetime as dt

            when = parsedate_to_datetime(value)
            return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


def delivery_error(exc: BaseException, what: str) -> DeliveryError:
    """403/404 → gone (the bot was removed); 429 → retry_after from Retry-After; other statuses kept."""
    if isinstance(exc, DeliveryError):
        return exc
    status, headers = _status_and_headers(exc)
    if status in (403, 404):
        return DeliveryError(
            f"{what}: the conversation is gone or the bot was removed (HTTP {status})", status=status, gone=True
        )
    if status == 429:
        return DeliveryError(f"{what}: throttled (HTTP 429)", status=429, retry_after=_retry_after(headers))
    if status is not None:
        return DeliveryError(f"{what}: the channel answered HTTP {status}", status=status)
    return DeliveryError(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")
