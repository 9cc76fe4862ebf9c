"""`python app.py chat`: talk to Cordon in a terminal, through the same router, role gate and dialogs as Teams.

The console actor gets its roles from the same `RoleResolver` as a Teams user (no bypass): to try technician or
approver commands, add its Entra object id to `[roles]` in cordon.toml. Cards print as text with numbered
buttons; typing a number presses one. Works with piped stdin, so tests drive dialogs without HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import re
import shlex
import sqlite3
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from cli.console_render import (
    CardRenderer,
    CardView,
    find_element,
    inputs_in_scope,
    is_visible,
    walk_inputs,
)
from dialogs.contract import ActionResult, Actor, Conversation, Reply, Role

if TYPE_CHECKING:
    from adapters.config import BotSettings, CordonConfig
    from adapters.storage import Storage
    from wiring import Wiring

log = logging.getLogger(__name__)

CONSOLE_CONVERSATION = "console"
QUIT_WORDS = ("quit", "exit", ":q")
_PRESS = re.compile(r"^(\d+)(?:\s+(.*))?$")
_TRUE = ("on", "true", "yes", "y", "1", "x")
_FALSE = ("off", "false", "no", "n", "0", "")


@dataclass
class Button:
    view: CardView
    action: dict[str, Any]


class Screen:
    """Prints messages and remembers the cards on screen, so a typed number can press one of their buttons."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.views: dict[str, CardView] = {}
        self.buttons: dict[int, Button] = {}
        self.replaced: dict[int, str] = {}  # button number -> message id of the card that replaced it
        self._next_button = 0
        self._next_message = 0

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def new_message_id(self, prefix: str = "m") -> str:
        self._next_message += 1
        return f"{prefix}{self._next_message}"

    def _assign(self, view: CardView, action: dict[str, Any]) -> int:
        number = view.numbers.get(id(action))
        if number is None:
            self._next_button += 1
            number = view.numbers[id(action)] = self._next_button
            self.buttons[number] = Button(view, action)
        return number

    def show(self, reply: Reply, header: str, message_id: str | None = None) -> str:
        """Print a message under `header`; with `message_id`, it replaces that message's card."""
        message_id = message_id or self.new_message_id()
        self.print(f"── {header} [{message_id}] " + "─" * max(8, 40 - len(header)))
        if reply.text:
            self.print(reply.text)
        if reply.text and reply.card is not None:
            self.print()
        if reply.card is not None:
            self._forget(message_id)
            view = CardView(message_id, reply.card)
            self.views[message_id] = view
            self.render(view)
        self.print()
        return message_id

    def render(self, view: CardView) -> None:
        for line in CardRenderer(view, self._assign).render():
            self.print(line.rstrip())

    def _forget(self, message_id: str) -> None:
        old = self.views.pop(message_id, None)
        if old is None:
            return
        for number in old.numbers.values():
            self.buttons.pop(number, None)
            self.replaced[number] = message_id


class ConsoleOutbox:
    """`dialogs.contract.Outbox` for the console: everything is printed, in order, as it happens."""

    def __init__(self, screen: Screen, conversation_id: str = CONSOLE_CONVERSATION) -> None:
        self.screen = screen
        self.conversation_id = conversation_id

    def _where(self, conversation_id: str | None) -> str:
        if conversation_id in (None, self.conversation_id):
            return "Cordon"
        return f"Cordon → conversation {conversation_id}"

    async def send(self, reply: Reply, conversation_id: str | None = None) -> str | None:
        if reply.replaces:
            await self.update(reply.replaces, reply, conversation_id)
            return reply.replaces
        return self.screen.show(reply, self._where(conversation_id))

    async def update(self, message_id: str, reply: Reply, conversation_id: str | None = None) -> None:
        self.screen.show(reply, f"{self._where(conversation_id)} (updated)", message_id=message_id)

    async def typing(self) -> None:
        self.screen.print("… working")

    async def send_private(self, user_aad_id: str, reply: Reply) -> str | None:
        return self.screen.show(reply, f"Cordon → private chat with {user_aad_id} (only they see this)")


class ConsoleMessenger:
    """`dialogs.contract.Messenger` for the console: proactive sends (alerts, approvals) are printed too."""

    def __init__(self, screen: Screen) -> None:
        self.outbox = ConsoleOutbox(screen)

    async def send(self, conversation_id: str, reply: Reply) -> str | None:
        return await self.outbox.send(reply, conversation_id)

    async def update(self, conversation_id: str, message_id: str, reply: Reply) -> None:
        await self.outbox.update(message_id, reply, conversation_id)

    async def send_private(self, tenant_id: str, user_aad_id: str, reply: Reply) -> str | None:
        return await self.outbox.send_private(user_aad_id, reply)


class ConsoleSession:
    """One console user talking to the router: typed lines become commands, numbers press buttons."""

    def __init__(self, router: Any, actor: Actor, tenant_id: str | None, screen: Screen) -> None:
        self.router = router
        self.actor = actor
        self.tenant_id = tenant_id
        self.screen = screen
        self.outbox = ConsoleOutbox(screen)
        self.conversation = Conversation(id=CONSOLE_CONVERSATION, kind="console", tenant_id=tenant_id)

    async def handle_line(self, line: str) -> None:
        try:
            match = _PRESS.match(line)
            if match:
                await self.press(int(match.group(1)), match.group(2) or "")
            else:
                await self.typed(line)
        except Exception:  # noqa: BLE001 - the console keeps running; details go to the log
            correlation = uuid.uuid4().hex[:12]
            log.exception("console turn failed (correlation id %s)", correlation)
            self.screen.print(f"Something went wrong (correlation id {correlation}); details are in the log.")

    async def typed(self, text: str) -> None:
        """A message typed (or sent by an imBack button): through the router, replies printed in order."""
        message_id = self.screen.new_message_id("you-")
        replies = await self.router.handle_text(
            text, self.actor, self.tenant_id, self.conversation, self.outbox, message_id=message_id
        )
        for reply in replies or []:
            await self.outbox.send(reply)

    async def press(self, number: int, assignments: str) -> None:
        button = self.screen.buttons.get(number)
        if button is None:
            if number in self.screen.replaced:
                self.screen.print(
                    f"Button {number} belonged to a card that has since been updated "
                    f"([{self.screen.replaced[number]}]); use the buttons shown on the new card."
                )
            else:
                self.screen.print(f"There is no button {number} on screen. Buttons are the [numbers] on cards.")
            return
        if number not in button.view.shown:
            self.screen.print(f"Button {number} is not visible on its card right now; open its section first.")
            return
        problem = self._assign_inputs(button.view, assignments)
        if problem:
            self.screen.print(problem)
            return
        action, view = button.action, button.view
        kind = action.get("type")
        if action.get("isEnabled") is False:
            self.screen.print(f"Button {number} is disabled.")
        elif kind == "Action.ShowCard":
            view.open_cards ^= {id(action)}
            self._reprint(view, "opened" if id(action) in view.open_cards else "closed")
        elif kind == "Action.ToggleVisibility":
            self._toggle(view, action)
            self._reprint(view, "toggled")
        elif kind == "Action.OpenUrl":
            self.screen.print(f"Open this address in a browser: {action.get('url', '')}")
        elif kind in ("Action.Execute", "Action.Submit"):
            await self._submit(view, action)
        else:
            self.screen.print(f"Button {number} ({kind}) does nothing in the console.")

    def _assign_inputs(self, view: CardView, assignments: str) -> str | None:
        """Apply `id=value` pairs typed after a button number to the card's inputs."""
        if not assignments.strip():
            return None
        try:
            words = shlex.split(assignments)
        except ValueError as exc:
            return f"Could not read the input values ({exc}). Write them as id=value, quoting values with spaces."
        inputs = {element["id"]: element for element in walk_inputs(view.card)}
        pending: dict[str, str] = {}  # applied only when every pair is good
        for word in words:
            key, sep, value = word.partition("=")
            if not sep or key not in inputs:
                known = ", ".join(sorted(inputs)) or "none"
                return f"{word!r} is not id=value for an input of this card (its inputs: {known})."
            element = inputs[key]
            if element.get("type") == "Input.Toggle":
                if value.lower() not in _TRUE + _FALSE:
                    return f"{key} is a switch: give on or off."
                value = str(
                    element.get("valueOn", "true") if value.lower() in _TRUE else element.get("valueOff", "false")
                )
            elif element.get("type") == "Input.ChoiceSet":
                allowed = {str(c.get("value")) for c in element.get("choices") or [] if isinstance(c, dict)}
                chosen = value.split(",") if element.get("isMultiSelect") else [value]
                if not set(chosen) <= allowed:
                    return f"{key} must be one of: {', '.join(sorted(allowed))}."
            elif element.get("type") == "Input.Number" and value:
                try:
                    float(value)
                except ValueError:
                    return f"{key} must be a number."
            pending[key] = value
        view.inputs.update(pending)
        return None

    def _toggle(self, view: CardView, action: dict[str, Any]) -> None:
        for target in action.get("targetElements") or []:
            element_id = target if isinstance(target, str) else target.get("elementId")
            wanted = None if isinstance(target, str) else target.get("isVisible")
            if not isinstance(element_id, str):
                continue
            found = find_element(view.card, element_id)
            shown = is_visible(view, found) if found else view.visibility.get(element_id, True)
            view.visibility[element_id] = (not shown) if wanted is None else bool(wanted)

    def _reprint(self, view: CardView, how: str) -> None:
        self.screen.print(f"── Cordon ({how}) [{view.message_id}] " + "─" * 24)
        self.screen.render(view)
        self.screen.print()

    async def _submit(self, view: CardView, action: dict[str, Any]) -> None:
        data = action.get("data")
        data = dict(data) if isinstance(data, dict) else {}
        teams = data.pop("msteams", None)
        if (
            action["type"] == "Action.Submit"
            and isinstance(teams, dict)
            and teams.get("type") in ("imBack", "messageBack")
        ):
            text = teams.get("value") if teams.get("type") == "imBack" else teams.get("text")
            if isinstance(text, str) and text.strip():
                self.screen.print(f"> {text}")
                await self.typed(text)  # as typed text, never as a button number
                return
        verb = action.get("verb") if action["type"] == "Action.Execute" else data.pop("verb", None)
        if not isinstance(verb, str) or not verb:
            self.screen.print("This button carries no action verb, so it does nothing.")
            return
        if action.get("associatedInputs") != "none":
            scope = inputs_in_scope(view.card, action)
            missing = [e for e in scope if e.get("isRequired") and not view.inputs.get(e["id"])]
            if missing:
                names = ", ".join(str(e.get("label") or e["id"]) for e in missing)
                self.screen.print(
                    f"Fill in {names} first: type the button number followed by id=value, e.g. "
                    f'`{view.numbers.get(id(action), 0)} {missing[0]["id"]}="..."`.'
                )
                return
            data.update({element["id"]: view.inputs.get(element["id"], "") for element in scope})
        result: ActionResult = await self.router.handle_action(
            verb, data, self.actor, self.tenant_id, self.conversation, self.outbox, card_message_id=view.message_id
        )
        if result.card is not None:
            self.screen.show(Reply(card=result.card), "Cordon (updated)", message_id=view.message_id)
        if result.message:
            self.screen.show(Reply(text=result.message), "Cordon (only you see this)")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file (default: cordon.toml or $CORDON_CONFIG)")
    parser.add_argument("--memory", action="store_true", help="keep state in memory only (nothing is saved)")
    parser.add_argument("--as-id", metavar="GUID", help="Entra object id to act as (default: [console] aad_id)")
    parser.add_argument("--upn", help="user principal name to act as")
    parser.add_argument("--name", help="display name to act as")
    parser.add_argument("--tenant", metavar="GUID", help="tenant id the commands run in (default: [console])")


def run(name: str, args: argparse.Namespace, wiring: Wiring) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    logging.getLogger().setLevel(logging.WARNING)  # the terminal is for the conversation; warnings still show
    # settings: the default tenant, as the server uses it
    settings, config = wiring.load_or_exit(args.config, prog="app.py chat")
    try:
        actor, tenant_id = _actor(config, args)
    except ValueError as exc:
        wiring.exit_usage("app.py chat", str(exc))
    screen = Screen(sys.stdout)
    # One event loop for the whole session, but input is read outside it, so Ctrl-C at the prompt just quits.
    with asyncio.Runner() as runner:
        try:
            # only this may mean "cannot open the state file"
            storage = wiring.open_storage(config, memory=args.memory, prog="app.py chat")
        except (OSError, sqlite3.Error) as exc:
            print(
                f"app.py chat: cannot open the state file {config.storage.path}: {exc} "
                "(fix [storage] path in cordon.toml, or use --memory)",
                file=sys.stderr,
            )
            return 1
        session: ConsoleSession | None = None
        try:
            session = runner.run(_start(wiring, screen, config, settings, args, actor, tenant_id, storage))
            interactive = sys.stdin.isatty()
            while (line := _read(interactive)) is not None:
                line = line.strip()
                if not line:
                    continue
                if not interactive:
                    screen.print(f"> {line}")
                if line.lower() in QUIT_WORDS:
                    break
                runner.run(session.handle_line(line))
        except KeyboardInterrupt:
            screen.print()
        except BrokenPipeError:  # the reader went away (`app.py chat | head`): stop quietly, like other CLI tools
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter flushes and closes it at exit
        finally:
            runner.run(wiring.close_services(session.router.services) if session is not None else storage.close())
    return 0


def _actor(config: Any, args: argparse.Namespace) -> tuple[Actor, str | None]:
    """The console user: flags override `[console]`; a different --as-id drops the configured name and UPN."""
    console = config.console
    aad_id = _guid(args.as_id, "--as-id") if args.as_id else console.aad_id
    same = aad_id.lower() == console.aad_id.lower()
    upn = args.upn or (console.upn if same else None)
    display = args.name or (console.name if same else None)
    tenant = _guid(args.tenant, "--tenant") if args.tenant else console.tenant_id
    return Actor(aad_id=aad_id, upn=upn, name=display), tenant


def _guid(value: str, flag: str) -> str:
    from adapters.config import parse_guid

    return parse_guid(value, flag)


async def _start(
    wiring: Wiring,
    screen: Screen,
    config: CordonConfig,
    settings: BotSettings,
    args: argparse.Namespace,
    actor: Actor,
    tenant_id: str | None,
    storage: Storage,
) -> ConsoleSession:
    """Services, roles and router built as for Teams (no server, no background work)."""
    services = wiring.build_services(settings, config, storage, messenger=ConsoleMessenger(screen))
    # the same resolver as Teams (groups through Graph when tenants are configured): no roles for free
    resolver = wiring.role_resolver(config, services.graph)
    session = ConsoleSession(wiring.build_router(services, resolver), actor, tenant_id, screen)
    _banner(screen, config, args, actor, tenant_id, await resolver.roles(actor.aad_id, tenant_id))
    return session


def _read(interactive: bool) -> str | None:
    try:
        return input("you> ") if interactive else (sys.stdin.readline() or None)
    except EOFError:
        return None


def _banner(
    screen: Screen, config: Any, args: argparse.Namespace, actor: Actor, tenant_id: str | None, roles: frozenset[Role]
) -> None:
    who = actor.name or actor.upn or actor.aad_id
    upn = f" <{actor.upn}>" if actor.upn and actor.upn != who else ""
    held = ", ".join(sorted(role.value for role in roles)) or "none (only the commands open to anyone)"
    state = (
        "in memory only (--memory): nothing is kept"
        if args.memory
        else (
            f"SQLite file {config.storage.path}"
            if config.storage.backend == "sqlite"
            else f"Azure Table storage (tables {config.storage.prefix}docs, {config.storage.prefix}audit)"
        )
    )
    screen.print("Cordon console: the same router, role gate and dialogs as in Teams.")
    screen.print(f"You are acting as {who}{upn}, Entra object id {actor.aad_id}.")
    screen.print(f"Tenant: {tenant_id or 'none (set [console] tenant_id or --tenant)'}. State: {state}.")
    screen.print(f"Your roles: {held}.")
    if len(roles) < 2:
        screen.print("To try technician or approver commands, add this id to cordon.toml, then start again:")
        screen.print(f'    [roles]\n    technicians = ["{actor.aad_id}"]\n    approvers   = ["{actor.aad_id}"]')
    screen.print(
        "Type `help` for the commands you may run, a button's [number] to press it "
        "(`3 id=value` fills the card's inputs first), `quit` to leave."
    )
    screen.print()
