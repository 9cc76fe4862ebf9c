"""The plain contract between the Teams side (`bot/`) or the console and the dialogs.

Dialogs see only these types: no Bot Framework objects, so the SDK can be replaced by rewriting `bot/`
alone, and the console and tests can drive dialogs without HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast

from adapters.roles import Role

__all__ = [
    "ActionHandler",
    "ActionResult",
    "Actor",
    "CardAction",
    "Clock",
    "Command",
    "CommandHandler",
    "Conversation",
    "ConversationKind",
    "DeliveryError",
    "DialogContext",
    "Messenger",
    "Outbox",
    "Reply",
    "Role",
    "Runtimes",
    "Services",
    "utc_now",
]

if TYPE_CHECKING:  # imported for type hints only: no import-time work
    from adapters.config import CordonConfig
    from adapters.emailauth.report import CheckOptions
    from adapters.graph import GraphGateway
    from adapters.storage import Storage


ConversationKind = Literal["personal", "groupChat", "channel", "console"]


@dataclass(frozen=True)
class Actor:
    """The person who sent the message or pressed the button."""

    aad_id: str | None
    upn: str | None = None
    name: str | None = None
    roles: frozenset[Role] = frozenset()

    @property
    def label(self) -> str:
        return self.upn or self.name or self.aad_id or "unknown"

    @property
    def audit_name(self) -> str | None:
        """How the audit log shows this person ("Name <upn>"); None when only the object id is known."""
        if self.name and self.upn and self.name.lower() != self.upn.lower():
            return f"{self.name} <{self.upn}>"
        return self.upn or self.name or None

    def has(self, role: Role) -> bool:
        return role is Role.ANYONE or role in self.roles


@dataclass(frozen=True)
class Conversation:
    """Where a command was typed. `id` is the stable key used to reach it again (proactive sends)."""

    id: str
    kind: ConversationKind
    tenant_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True)
class Command:
    """A typed command, already stripped of the @mention and split into words."""

    name: str
    args: tuple[str, ...]
    text: str
    actor: Actor
    tenant_id: str | None
    conversation: Conversation
    message_id: str | None = None  # the message this command arrived in (replies thread under it)


@dataclass(frozen=True)
class CardAction:
    """An Adaptive Card button press (Action.Execute, or Action.Submit from older clients)."""

    verb: str
    data: dict[str, Any]
    actor: Actor
    tenant_id: str | None
    conversation: Conversation
    card_message_id: str | None  # the message that holds the card (to update it in place)


@dataclass(frozen=True)
class Reply:
    """A message to post: text, an Adaptive Card dict, or both.

    `replaces` names a message id (returned by `Outbox.send`) whose card this reply replaces in place.
    """

    text: str | None = None
    card: dict[str, Any] | None = None
    replaces: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """What a button press answers to the presser (the invoke response).

    `card` replaces the card the presser sees; `message` is a short note only the presser sees (used for refusals).
    Other effects (updating the card for everyone, posting elsewhere) go through the `Outbox`.
    """

    card: dict[str, Any] | None = None
    message: str | None = None


class Outbox(Protocol):
    """Sends messages from a dialog while it works (progress, updates in place, other conversations)."""

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        """Post `reply` (to this conversation when `conversation_id` is None); returns the new message id."""

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        """Replace the card/text of an earlier message in place."""

    async def typing(self) -> None:
        """Show the typing indicator in this conversation."""

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        """Post to a 1:1 chat with a user (used for secrets such as a temporary password)."""


class Messenger(Protocol):
    """Proactive sending for background work (alerts, long runs): reaches a stored conversation by id."""

    async def send(self, conversation_id: str, reply: Reply) -> str | None: ...

    async def update(self, conversation_id: str, message_id: str, reply: Reply) -> None: ...

    async def send_private(self, tenant_id: str, user_aad_id: str, reply: Reply) -> str | None: ...


Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


T = TypeVar("T")


class Runtimes:
    """Per-process state a dialog family owns (its background tasks, its risk source), one object per type,
    made on first use: `services.runtimes.of(AlertsRuntime)`."""

    def __init__(self) -> None:
        self._by_type: dict[type[Any], Any] = {}

    def of(self, kind: type[T]) -> T:
        found = self._by_type.get(kind)
        if found is None:
            found = self._by_type[kind] = kind()
        return cast(T, found)

    def put(self, value: T) -> T:
        """Use `value` as this process's object of its type (a test's own throttle, say)."""
        self._by_type[type(value)] = value
        return value


@dataclass
class Services:
    """What dialogs may use. Built once by `wiring.py` (or a test) and shared by every turn."""

    config: CordonConfig
    storage: Storage
    clock: Clock = utc_now
    messenger: Messenger | None = None  # proactive sends; None in the console without a server
    graph: GraphGateway | None = None  # Microsoft Graph per tenant; None in tests that need none
    check_options: CheckOptions | None = None  # `check`'s DNS settings instead of `[dns]` (tests' own resolver)
    runtimes: Runtimes = field(default_factory=Runtimes)


@dataclass
class DialogContext:
    """One turn: the shared services plus the outbox of the conversation the command came from."""

    services: Services
    outbox: Outbox


CommandHandler = Callable[[Command, DialogContext], Awaitable[list[Reply] | None]]
ActionHandler = Callable[[CardAction, DialogContext], Awaitable[ActionResult]]


class DeliveryError(Exception):
    """A message could not be delivered to a conversation.

    `gone` is True when the bot was removed (403/404: retrying will not help); `retry_after` is the seconds the
    channel asked us to wait (429), if any.
    """

    def __init__(
        self, message: str, *, status: int | None = None, gone: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.gone = gone
        self.retry_after = retry_after
