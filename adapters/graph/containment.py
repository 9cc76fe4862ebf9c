"""The Graph calls that contain a compromised account: block or re-enable sign-in, revoke sessions, inbox rules,
confirm compromised, reset the password.

Each call is explained through its `Need` when Graph refuses (`GraphProblem`), so the lock-down card can say which
permission, role or licence is missing. Inbox rules come back as plain `InboxRule`s, with the folder a rule moves
mail to resolved, so the judgement (`dialogs.lockdown.rules`) stays pure. The password passed to
`reset_password` is never logged, stored or echoed here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from adapters.config import TenantConfig
from adapters.graph import permissions as needs
from adapters.graph.errors import GraphProblem, from_status
from adapters.graph.gateway import GraphGateway
from adapters.graph.permissions import Need

T = TypeVar("T")

ENABLE_USER = Need(
    "re-enable the user's sign-in",
    "User.EnableDisableAccount.All",
    missing="user",
    role="Privileged Authentication Administrator",
    role_when="the target holds an admin role",
    endpoint="PATCH /users/{id} accountEnabled",
)
READ_FOLDERS = Need(
    "read the user's mail folders",
    "MailboxSettings.ReadWrite",
    missing="mailbox",
    endpoint="GET /users/{id}/mailFolders/{id}",
)

UNNAMED_FOLDER = "a folder Cordon could not name"  # shown instead of an opaque id such as `AAMkAG…=`
# Well-known folders where mail is out of the user's sight (a display name check covers "RSS Feeds" too).
HIDDEN_WELL_KNOWN = ("deleteditems", "junkemail", "conversationhistory", "archive")
HIDDEN_NAMES = {"deleted items", "junk email", "rss feeds", "rss subscriptions", "conversation history", "archive"}
RSS = re.compile(r"\brss\b", re.IGNORECASE)  # RSS Feeds has no well-known name: "RSS-Feeds", "Flux RSS" too
EXCHANGE_ADMIN_MAILBOXES = "https://admin.exchange.microsoft.com/#/mailboxes"


@dataclass(frozen=True)
class InboxRule:
    """An inbox rule in plain terms (addresses as strings; the move target's display name resolved)."""

    id: str
    name: str
    enabled: bool
    forward_to: tuple[str, ...] = ()
    redirect_to: tuple[str, ...] = ()
    forward_as_attachment_to: tuple[str, ...] = ()
    delete: bool = False
    permanent_delete: bool = False
    move_to_folder: str | None = None  # display name (UNNAMED_FOLDER when it could not be read, never a raw id)
    move_to_hidden: bool = False
    mark_as_read: bool = False
    conditions: tuple[str, ...] = ()  # "subjectContains: invoice", ...; empty means every message


def _addresses(recipients: Any) -> tuple[str, ...]:
    out = []
    for r in recipients or ():
        email = getattr(r, "email_address", None)
        # a recipient with a name but no address still receives mail: keep the name, so it is looked at
        address = (getattr(email, "address", None) or getattr(email, "name", None) or "").strip()
        if address:
            out.append(address.lower())
    return tuple(out)


def _conditions(predicates: Any) -> tuple[str, ...]:
    """Every predicate that is set, as `name: value`; an empty tuple means the rule matches all mail."""
    if predicates is None:
        return ()
    from kiota_abstractions.serialization import Parsable

    found = []
    for name, value in sorted(vars(predicates).items()):
        if name in ("backing_store", "additional_data", "odata_type") or value in (None, [], False):
            continue
        if isinstance(value, list):
            shown = (
                ", ".join(_addresses(value))
                if value and isinstance(value[0], Parsable)
                else ", ".join(str(v) for v in value)
            )
        else:
            shown = str(getattr(value, "value", value))
        found.append(f"{name}: {shown}"[:200])
    return tuple(found)


def _redact(text: str | None, secret: str) -> str:
    return re.sub(re.escape(secret), "[password]", text or "", flags=re.IGNORECASE)


def _without_secret(problem: GraphProblem, secret: str, tenant: str) -> GraphProblem:
    """The same refusal with the password cut out: Graph may echo a rejected password in its error message, and
    the cause (kiota's error, holding that message) is dropped, so no log line or traceback carries it either.
    Redacting the full message before it is shortened means no fragment of the password survives either."""
    error = getattr(problem.__cause__, "error", None)
    if problem.status is None:
        return GraphProblem(
            problem.kind, _redact(problem.user_message, secret), retry_after=problem.retry_after, tenant=problem.tenant
        )
    return from_status(
        problem.status,
        need=needs.RESET_PASSWORD,
        tenant=tenant,
        code=_redact(getattr(error, "code", None) or problem.code, secret) or None,
        message=_redact(getattr(error, "message", None), secret) or None,
        retry_after=problem.retry_after,
    )


class Containment:
    """Containment steps for users of one tenant, through the `GraphGateway` (retries, errors explained)."""

    def __init__(self, gateway: GraphGateway, tenant: TenantConfig) -> None:
        self.gateway = gateway
        self.tenant = tenant

    def _call(self, need: Need, operation: Callable[[Any], Awaitable[T]]) -> Awaitable[T]:
        return self.gateway.call(self.tenant, need, operation)

    @staticmethod
    def _user(client: Any, user_id: str) -> Any:
        return client.users.by_user_id(user_id)

    async def set_sign_in(self, user_id: str, enabled: bool) -> None:
        from msgraph.generated.models.user import User

        need = ENABLE_USER if enabled else needs.DISABLE_USER
        await self._call(need, lambda c: self._user(c, user_id).patch(User(account_enabled=enabled)))

    async def revoke_sessions(self, user_id: str) -> None:
        await self._call(needs.REVOKE_SESSIONS, lambda c: self._user(c, user_id).revoke_sign_in_sessions.post())

    async def confirm_compromised(self, user_id: str) -> None:
        from msgraph.generated.identity_protection.risky_users.confirm_compromised.confirm_compromised_post_request_body import (  # noqa: E501
            ConfirmCompromisedPostRequestBody,
        )

        body = ConfirmCompromisedPostRequestBody(user_ids=[user_id])
        await self._call(needs.RISKY_USERS, lambda c: c.identity_protection.risky_users.confirm_compromised.post(body))

    async def reset_password(self, user_id: str, password: str) -> None:
        """Set a temporary password the user must change at next sign-in."""
        from msgraph.generated.models.password_profile import PasswordProfile
        from msgraph.generated.models.user import User

        body = User(password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=True))
        try:
            await self._call(needs.RESET_PASSWORD, lambda c: self._user(c, user_id).patch(body))
        except GraphProblem as problem:
            raise _without_secret(problem, password, self.tenant.name) from None
        except Exception as exc:  # noqa: BLE001 - re-raised without the original (its text may hold the password)
            raise RuntimeError(
                f"password reset failed: {type(exc).__name__}: {_redact(str(exc), password)[:200]}"
            ) from None

    async def disable_rule(self, user_id: str, rule_id: str) -> None:
        """Turn a rule off (never delete it: it is evidence)."""
        from msgraph.generated.models.message_rule import MessageRule

        await self._call(
            needs.INBOX_RULES,
            lambda c: self._rules(c, user_id).by_message_rule_id(rule_id).patch(MessageRule(is_enabled=False)),
        )

    def _rules(self, client: Any, user_id: str) -> Any:
        return self._user(client, user_id).mail_folders.by_mail_folder_id("inbox").message_rules

    async def inbox_rules(self, user_id: str) -> list[InboxRule]:
        """All inbox rules, with each move target's folder name and whether it hides mail."""
        raw: list[Any] = []
        page = await self._call(needs.INBOX_RULES, lambda c: self._rules(c, user_id).get())
        while page is not None:
            raw.extend(page.value or [])
            if not page.odata_next_link:
                break
            link = page.odata_next_link

            def next_page(c: Any, link: str = link) -> Any:
                return self._rules(c, user_id).with_url(link).get()

            page = await self._call(needs.INBOX_RULES, next_page)
        targets = {r.actions.move_to_folder for r in raw if r.actions and r.actions.move_to_folder}
        folders = await self._folders(user_id, targets) if targets else {}
        rules = []
        for r in raw:
            act = r.actions
            move = act.move_to_folder if act else None
            name, hidden = folders.get(move, (move, False)) if move else (None, False)
            rules.append(
                InboxRule(
                    id=r.id or "",
                    name=r.display_name or "(unnamed rule)",
                    enabled=bool(r.is_enabled),
                    forward_to=_addresses(act.forward_to) if act else (),
                    redirect_to=_addresses(act.redirect_to) if act else (),
                    forward_as_attachment_to=_addresses(act.forward_as_attachment_to) if act else (),
                    delete=bool(act and act.delete),
                    permanent_delete=bool(act and act.permanent_delete),
                    move_to_folder=name,
                    move_to_hidden=hidden,
                    mark_as_read=bool(act and act.mark_as_read),
                    conditions=_conditions(r.conditions),
                )
            )
        return rules

    async def _folders(self, user_id: str, folder_ids: set[str]) -> dict[str, tuple[str, bool]]:
        """folder id -> (display name, hides mail); unreadable folders keep their id and count as not hidden."""

        async def fetch(folder: str) -> Any:
            try:
                return await self._call(
                    READ_FOLDERS, lambda c: self._user(c, user_id).mail_folders.by_mail_folder_id(folder).get()
                )
            except Exception:  # noqa: BLE001 - a missing well-known folder (no archive) is normal
                return None

        wanted = sorted(folder_ids)
        found = await asyncio.gather(*(fetch(f) for f in (*HIDDEN_WELL_KNOWN, *wanted)))
        hidden_ids = {f.id for f in found[: len(HIDDEN_WELL_KNOWN)] if f is not None and f.id}
        result = {}
        for folder_id, folder in zip(wanted, found[len(HIDDEN_WELL_KNOWN) :], strict=True):
            name = (folder.display_name if folder is not None else None) or UNNAMED_FOLDER  # ids mean nothing
            hidden = (
                folder_id in hidden_ids
                or (folder is not None and folder.id in hidden_ids)
                or (name.lower() in HIDDEN_NAMES)
                or RSS.search(name) is not None
            )
            result[folder_id] = (name, hidden)
        return result
