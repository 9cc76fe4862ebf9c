"""The `chat` console: cards as readable text, numbered buttons, inputs; and the real CLI driven through a pipe."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.config import CordonConfig, RolesConfig
from adapters.roles import RoleResolver
from adapters.storage import MemoryStorage
from cli.console import ConsoleMessenger, ConsoleOutbox, ConsoleSession, Screen
from cli.console_render import display_width, markdown
from dialogs import cards
from dialogs.contract import ActionResult, Actor, CardAction, Command, DialogContext, Reply, Role, Services
from dialogs.registry import ActionSpec, CommandSpec, Registry
from dialogs.router import Router
from tests.support.cards import assert_valid_card

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_ID = "00000000-0000-0000-0000-00000000c0de"
TECH = "11111111-1111-1111-1111-111111111111"

# A card using what dialogs use: facts, a table, columns, inputs, show-card, toggle-visibility, submit and execute.
DEMO_CARD: dict[str, Any] = cards.card(
    cards.title("Lock down **alice@contoso.com**?", "Requested by [Bob](https://contoso.example/bob)")
    + [
        cards.facts([("User", "alice@contoso.com"), ("Risk level", "high"), ("Requested", "2026-11-27 21:50 UTC")]),
        {
            "type": "Table",
            "columns": [{"width": 1}, {"width": 1}],
            "rows": [
                {
                    "type": "TableRow",
                    "cells": [
                        {"type": "TableCell", "items": [cards.text("Check")]},
                        {"type": "TableCell", "items": [cards.text("Result")]},
                    ],
                },
                {
                    "type": "TableRow",
                    "cells": [
                        {"type": "TableCell", "items": [cards.text("SPF")]},
                        {"type": "TableCell", "items": [cards.text("✅ pass")]},
                    ],
                },
                {
                    "type": "TableRow",
                    "cells": [
                        {"type": "TableCell", "items": [cards.text("DMARC policy")]},
                        {"type": "TableCell", "items": [cards.text("❌ none")]},
                    ],
                },
            ],
        },
        {
            "type": "ColumnSet",
            "columns": [
                {"type": "Column", "items": [cards.text("Left side")]},
                {"type": "Column", "items": [cards.text("Right side")]},
            ],
        },
        {"type": "Container", "id": "details", "isVisible": False, "items": [cards.text("Sign-in from 203.0.113.9")]},
        {"type": "Input.Toggle", "id": "revoke", "title": "Revoke sessions", "value": "true"},
        {"type": "Input.Text", "id": "comment", "label": "Comment", "placeholder": "optional"},
        {
            "type": "Input.ChoiceSet",
            "id": "level",
            "label": "Level",
            "value": "high",
            "choices": [{"title": "High", "value": "high"}, {"title": "Low", "value": "low"}],
        },
    ],
    [
        cards.execute("Approve", "demo.press", {"request_id": "r-1"}),
        {
            "type": "Action.ShowCard",
            "title": "Reject",
            "card": {
                "type": "AdaptiveCard",
                "body": [
                    {
                        "type": "Input.Text",
                        "id": "reason",
                        "label": "Reason",
                        "isRequired": True,
                        "errorMessage": "Say why",
                    }
                ],
                "actions": [
                    {
                        "type": "Action.Submit",
                        "title": "Send rejection",
                        "data": {"verb": "demo.press", "request_id": "r-1", "decision": "reject"},
                    }
                ],
            },
        },
        {"type": "Action.ToggleVisibility", "title": "Details", "targetElements": ["details"]},
        {"type": "Action.OpenUrl", "title": "Runbook", "url": "https://contoso.example/runbook"},
        {"type": "Action.Submit", "title": "Help", "data": {"msteams": {"type": "imBack", "value": "help"}}},
    ],
)


class Harness:
    """A console session over the real router, with test dialogs, printing into a string."""

    def __init__(self, aad_id: str = CONSOLE_ID) -> None:
        self.out = io.StringIO()
        self.screen = Screen(self.out)
        self.pressed: list[CardAction] = []
        registry = Registry()

        async def demo(cmd: Command, ctx: DialogContext) -> list[Reply]:
            return [Reply(card=DEMO_CARD)]

        async def help_(cmd: Command, ctx: DialogContext) -> list[Reply]:
            return [Reply(text="HELP-TEXT")]

        async def progress(cmd: Command, ctx: DialogContext) -> list[Reply]:
            first = await ctx.outbox.send(
                Reply(card=cards.card([cards.text("Step 1 of 2")], [cards.execute("Stop", "demo.press")]))
            )
            await ctx.outbox.update(first, Reply(card=cards.card([cards.text("Step 2 of 2")])))
            await ctx.outbox.send_private(TECH, Reply(text="temporary password goes here"))
            return [Reply(text="done")]

        async def press(act: CardAction, ctx: DialogContext) -> ActionResult:
            self.pressed.append(act)
            return ActionResult(card=cards.card([cards.text(f"Pressed: {json.dumps(act.data, sort_keys=True)}")]))

        registry.add_command(CommandSpec("demo", "Show a demo card.", "demo", Role.ANYONE, demo))
        registry.add_command(CommandSpec("help", "Help.", "help", Role.ANYONE, help_))
        registry.add_command(CommandSpec("progress", "Progress.", "progress", Role.ANYONE, progress, slow=True))
        registry.add_action(ActionSpec("demo.press", Role.TECHNICIAN, press))
        roles = RolesConfig(technicians=[TECH])
        services = Services(
            config=CordonConfig(roles=roles), storage=MemoryStorage(), messenger=ConsoleMessenger(self.screen)
        )
        self.session = ConsoleSession(
            Router(services, RoleResolver(roles), registry), Actor(aad_id=aad_id), None, self.screen
        )

    async def say(self, line: str) -> str:
        start = self.out.tell()
        await self.session.handle_line(line)
        return self.out.getvalue()[start:]


def button(text: str, title: str) -> int:
    """The number printed before a button's title."""
    for chunk in text.split("["):
        number, _, rest = chunk.partition("] ")
        if number.isdigit() and rest.startswith(title):
            return int(number)
    raise AssertionError(f"no button {title!r} in:\n{text}")


def test_demo_card_is_a_valid_card() -> None:
    assert_valid_card(DEMO_CARD)


async def test_card_renders_as_readable_text() -> None:
    text = await Harness().say("demo")
    lines = text.splitlines()
    assert "Lock down alice@contoso.com?" in lines  # bold markers dropped
    assert "Requested by Bob (https://contoso.example/bob)" in lines  # link kept readable
    facts = [line for line in lines if line.startswith(("User ", "Risk level", "Requested  "))]
    assert (
        len(facts) == 3
        and len({line.index(value) for line, value in zip(facts, ["alice", "high", "2026"], strict=True)}) == 1
    )  # aligned values
    table = [line for line in lines if "│" in line and ("SPF" in line or "Check" in line or "DMARC" in line)]
    assert len(table) == 3 and len({line.index("│") for line in table}) == 1
    assert any(set(line) <= {"─", "┼"} and "┼" in line for line in lines)  # header rule
    assert any("Left side" in line and "Right side" in line for line in lines)  # columns side by side
    assert "Sign-in from 203.0.113.9" not in text and "hidden item(s)" in text
    assert "[x] Revoke sessions" in text and "Comment: (empty)" in text and "Level: high" in text
    assert "choices: high = High, low = Low" in text
    for title in ("Approve", "Reject ▸", "Details", "Runbook ↗ https://contoso.example/runbook", "Help"):
        button(text, title)
    assert "Send rejection" not in text  # inside the closed show-card


async def test_pressing_execute_sends_verb_and_data_merged_with_inputs_through_the_gate() -> None:
    h = Harness(aad_id=TECH)
    shown = await h.say("demo")
    result = await h.say(f'{button(shown, "Approve")} comment="lost laptop" revoke=off level=low')
    [act] = h.pressed
    assert act.verb == "demo.press" and act.card_message_id is not None
    assert act.data == {"request_id": "r-1", "revoke": "false", "comment": "lost laptop", "level": "low"}
    assert act.actor.has(Role.TECHNICIAN)
    assert "(updated)" in result and "Pressed:" in result


async def test_a_plain_user_pressing_a_technician_button_is_refused_privately() -> None:
    h = Harness()
    shown = await h.say("demo")
    result = await h.say(str(button(shown, "Approve")))
    assert h.pressed == []
    assert "only you see this" in result and "only Cordon technicians may press this button" in result


async def test_show_card_opens_and_its_submit_needs_the_required_input() -> None:
    h = Harness(aad_id=TECH)
    shown = await h.say("demo")
    opened = await h.say(str(button(shown, "Reject")))
    assert "(opened)" in opened and "Reject ▾" in opened and "┆ Reason (required): (empty)" in opened
    send = button(opened, "Send rejection")
    refused = await h.say(str(send))
    assert "Fill in Reason first" in refused and h.pressed == []
    await h.say(f'{send} reason="phished"')
    [act] = h.pressed
    assert act.data["decision"] == "reject" and act.data["reason"] == "phished" and "verb" not in act.data


async def test_toggle_visibility_shows_the_hidden_element() -> None:
    h = Harness()
    shown = await h.say("demo")
    details = button(shown, "Details")
    toggled = await h.say(str(details))
    assert "(toggled)" in toggled and "Sign-in from 203.0.113.9" in toggled
    assert button(toggled, "Details") == details  # the same card keeps its numbers
    hidden = await h.say(str(details))
    assert "Sign-in from 203.0.113.9" not in hidden


async def test_open_url_and_imback_buttons() -> None:
    h = Harness()
    shown = await h.say("demo")
    assert "https://contoso.example/runbook" in await h.say(str(button(shown, "Runbook")))
    assert "HELP-TEXT" in await h.say(str(button(shown, "Help")))  # imBack sends its text as a message


@pytest.mark.parametrize(
    ("assignment", "complaint"),
    [
        ("comment=dropped colour=red", "not id=value for an input of this card"),
        ("level=medium", "level must be one of: high, low"),
        ("revoke=maybe", "revoke is a switch"),
        ('comment="unclosed', "Could not read the input values"),
    ],
)
async def test_bad_input_values_are_explained_and_nothing_is_pressed(assignment: str, complaint: str) -> None:
    h = Harness(aad_id=TECH)
    shown = await h.say("demo")
    result = await h.say(f"{button(shown, 'Approve')} {assignment}")
    assert complaint in result and h.pressed == []
    assert [view.inputs["comment"] for view in h.screen.views.values()] == [""]  # no pair applied half-way


async def test_unknown_and_replaced_buttons_are_explained() -> None:
    h = Harness(aad_id=TECH)
    assert "There is no button 99" in await h.say("99")
    shown = await h.say("demo")
    approve = button(shown, "Approve")
    await h.say(str(approve))  # the result replaces the card
    again = await h.say(str(approve))
    assert "belonged to a card that has since been updated" in again and len(h.pressed) == 1


async def test_outbox_prints_typing_updates_and_private_messages_in_order() -> None:
    h = Harness()
    text = await h.say("progress")
    order = [
        text.index(part)
        for part in (
            "… working",
            "Step 1 of 2",
            "(updated)",
            "Step 2 of 2",
            "private chat with " + TECH,
            "temporary password goes here",
            "done",
        )
    ]
    assert order == sorted(order)
    stop = button(text, "Stop")
    assert "belonged to a card that has since been updated" in await h.say(str(stop))


async def test_outbox_to_another_conversation_and_messenger_say_where() -> None:
    out = io.StringIO()
    screen = Screen(out)
    message_id = await ConsoleOutbox(screen).send(Reply(text="approval needed"), "19:approvals@thread.tacv2")
    await ConsoleMessenger(screen).update("19:approvals@thread.tacv2", message_id, Reply(text="approved"))
    text = out.getvalue()
    assert "→ conversation 19:approvals@thread.tacv2" in text and "(updated)" in text and message_id in text


def test_markdown_and_width_helpers() -> None:
    assert (
        markdown("**bold** and [docs](https://x.example) and [https://y.example](https://y.example)")
        == "bold and docs (https://x.example) and https://y.example"
    )
    assert display_width("✅ ok") == 5 and display_width("ab") == 2


# ---- the real CLI, driven through a pipe -------------------------------------------------------------------------


def chat(
    stdin: str, *args: str, cwd: Path, script: Path | None = None, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(script)] if script else [sys.executable, str(ROOT / "app.py")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "CORDON_"))}
    env.update({"PYTHONIOENCODING": "utf-8", **(environ or {})})
    return subprocess.run(
        [*command, "chat", *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def test_cli_newcomer_banner_help_and_eof(tmp_path: Path) -> None:
    result = chat("help\n", "--memory", cwd=tmp_path)  # no cordon.toml here: all defaults
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"You are acting as Console user <console@localhost>, Entra object id {CONSOLE_ID}" in out
    assert "Your roles: none" in out and f'technicians = ["{CONSOLE_ID}"]' in out and "[roles]" in out
    assert "in memory only" in out
    assert "Cordon — what I can do" in out and "List the commands you may run." in out
    assert "Show the latest audit log entries." not in out  # a technician's command is not offered
    assert "need the technician or approver role" in out
    assert not list(tmp_path.iterdir())  # --memory wrote no state file


def test_cli_unknown_command_suggests_and_quit_stops_reading(tmp_path: Path) -> None:
    result = chat("HELPP me\nquit\nhelp\n", "--memory", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "I don't know the command `helpp`. Did you mean `help`?" in result.stdout
    assert result.stdout.count("Cordon — what I can do") == 1  # the help card shown with the unknown answer only


def test_cli_technician_command_refused_then_allowed_once_configured(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    plain = tmp_path / "plain.toml"
    plain.write_text(f'[storage]\npath = "{db}"\n', encoding="utf-8")
    refused = chat("audit 5\n", "--config", str(plain), cwd=tmp_path)
    assert refused.returncode == 0, refused.stderr
    assert "Sorry, only Cordon technicians may run `audit`" in refused.stdout

    tech = tmp_path / "tech.toml"
    tech.write_text(f'[storage]\npath = "{db}"\n[roles]\ntechnicians = ["{CONSOLE_ID}"]\n', encoding="utf-8")
    allowed = chat("audit 5\n", "--config", str(tech), cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert "Your roles: technician." in allowed.stdout
    assert "Audit log" in allowed.stdout
    assert "audit by Console user ‹console@localhost› → refused — 5 (needs technician)" in allowed.stdout  # audited


def test_cli_as_id_flag_gets_roles_only_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "cordon.toml"
    config.write_text(f'[roles]\napprovers = ["{TECH}"]\n', encoding="utf-8")
    result = chat("audit\n", "--memory", "--as-id", TECH.upper(), "--upn", "ann@contoso.example", cwd=tmp_path)
    assert "You are acting as ann@contoso.example" in result.stdout
    assert "Your roles: approver." in result.stdout  # cordon.toml in the working directory is read by default
    assert "only Cordon technicians may run `audit`" in result.stdout  # an approver is not a technician


def test_cli_presses_a_numbered_button(tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    card.write_text(json.dumps(DEMO_CARD), encoding="utf-8")
    script = tmp_path / "driver.py"
    script.write_text(
        f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from dialogs import cards
from dialogs.contract import ActionResult, Reply, Role
from dialogs.registry import action, command, registry

registry()  # the real dialogs, plus one test dialog that shows a card with buttons

@command("demo", summary="Show the demo card.", usage="demo", role=Role.ANYONE)
async def demo(cmd, ctx):
    return [Reply(card=json.load(open({str(card)!r})))]

@action("demo.press", role=Role.TECHNICIAN)
async def press(act, ctx):
    return ActionResult(card=cards.card([cards.text("PRESSED " + json.dumps(act.data, sort_keys=True))]))

import app
sys.exit(app.main(sys.argv[1:]))
""",
        encoding="utf-8",
    )
    config = tmp_path / "cordon.toml"
    config.write_text(f'[roles]\ntechnicians = ["{CONSOLE_ID}"]\n', encoding="utf-8")
    result = chat("demo\n1 comment=ok\n", "--memory", cwd=tmp_path, script=script)
    assert result.returncode == 0, result.stderr
    assert "[1] Approve" in result.stdout
    pressed = result.stdout.split("> 1 comment=ok", 1)[1]
    assert "(updated)" in pressed
    assert 'PRESSED {"comment": "ok", "level": "high", "request_id": "r-1", "revoke": "true"}' in pressed


@pytest.mark.parametrize(
    ("args", "toml", "message"),
    [
        (["--as-id", "console"], "", "--as-id must be a GUID"),
        (["--tenant", "contoso.com"], "", "--tenant must be a GUID"),
        ([], '[roles]\napprovers = ["x"]\n', "roles.approvers.0: an Entra object id must be a GUID"),
        (["--config", "missing.toml"], None, "missing.toml does not exist"),
    ],
)
def test_cli_bad_identity_or_config_exits_2_with_the_reason(
    tmp_path: Path, args: list[str], toml: str | None, message: str
) -> None:
    if toml is not None:
        (tmp_path / "cordon.toml").write_text(toml, encoding="utf-8")
    result = chat("help\n", "--memory", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_bad_bot_setting_in_the_environment_exits_2(tmp_path: Path) -> None:
    result = chat("help\n", "--memory", cwd=tmp_path, environ={"MicrosoftAppType": "Bogus"})
    assert result.returncode == 2 and "MicrosoftAppType must be" in result.stderr


def test_cli_piped_into_a_reader_that_stops_early_exits_quietly(tmp_path: Path) -> None:
    """`app.py chat < script | head`: when the reader goes away the console stops with 0 and no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "CORDON_"))}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "chat", "--memory"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().startswith("Cordon console")
    process.stdout.close()  # the reader is gone before the answers come
    _, errors = process.communicate("help\n" * 50 + "quit\n", timeout=120)
    assert process.returncode == 0, errors
    assert "Traceback" not in errors


def test_cli_reader_gone_before_the_banner_is_not_a_state_file_error(tmp_path: Path) -> None:
    """A reader that goes away before the banner is printed (a BrokenPipeError there) ends the session quietly;
    it was once reported as "cannot open the state file", even with --memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "CORDON_"))}
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write of the banner breaks the pipe
    try:
        result = subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "chat", "--memory"],
            cwd=tmp_path,
            env=env,
            input="help\nquit\n",
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert "cannot open the state file" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
