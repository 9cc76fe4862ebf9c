"""Commands and card actions are declared once, here, with who may run them.

Help, routing, the role gate and the Teams manifest's command list all read these declarations, so nothing is
listed twice (errbot's decorator idea, with a frozen dataclass instead of attributes set on functions).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from dialogs.contract import ActionHandler, CommandHandler, Role

# Dialog modules that declare commands; imported on first use of the registry, not at import time.
DIALOG_MODULES = (
    "dialogs.general",
    "dialogs.emailauth",
    "dialogs.spf",
    "dialogs.mfa",
    "dialogs.tenants",
    "dialogs.lockdown",
    "dialogs.alerts",
    "dialogs.investigate",
)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    usage: str
    role: Role
    handler: CommandHandler
    aliases: tuple[str, ...] = ()
    slow: bool = False  # show the typing indicator before running
    hidden: bool = False  # not in help nor in the manifest's command list


@dataclass(frozen=True)
class ActionSpec:
    verb: str
    role: Role
    handler: ActionHandler


@dataclass
class Registry:
    commands: dict[str, CommandSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    actions: dict[str, ActionSpec] = field(default_factory=dict)

    def add_command(self, spec: CommandSpec) -> None:
        for word in (spec.name, *spec.aliases):
            if word in self.aliases:
                raise ValueError(f"command word {word!r} declared twice")
            self.aliases[word] = spec.name
        self.commands[spec.name] = spec

    def add_action(self, spec: ActionSpec) -> None:
        if spec.verb in self.actions:
            raise ValueError(f"card action verb {spec.verb!r} declared twice")
        self.actions[spec.verb] = spec

    def find(self, word: str) -> CommandSpec | None:
        name = self.aliases.get(word.lower())
        return self.commands.get(name) if name else None

    def words(self) -> list[str]:
        return sorted(self.aliases)

    def visible(self) -> list[CommandSpec]:
        return [spec for spec in self.commands.values() if not spec.hidden]


REGISTRY = Registry()
_loaded = False


def command(
    name: str,
    *,
    summary: str,
    usage: str,
    role: Role,
    aliases: tuple[str, ...] = (),
    slow: bool = False,
    hidden: bool = False,
) -> Callable[[CommandHandler], CommandHandler]:
    """Declare a chat command; its role is checked by the router's one gate before the handler runs."""

    def register(handler: CommandHandler) -> CommandHandler:
        REGISTRY.add_command(
            CommandSpec(
                name=name,
                summary=summary,
                usage=usage,
                role=role,
                handler=handler,
                aliases=aliases,
                slow=slow,
                hidden=hidden,
            )
        )
        return handler

    return register


def action(verb: str, *, role: Role) -> Callable[[ActionHandler], ActionHandler]:
    """Declare an Adaptive Card action verb (Action.Execute `verb`, or `verb` in Action.Submit data)."""

    def register(handler: ActionHandler) -> ActionHandler:
        REGISTRY.add_action(ActionSpec(verb=verb, role=role, handler=handler))
        return handler

    return register


def registry() -> Registry:
    """The registry with every dialog module loaded."""
    global _loaded
    if not _loaded:
        for module in DIALOG_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # a dialog module exists but its import failed: surface it
                    raise
        _loaded = True
    return REGISTRY
