"""Adaptive Card dicts as readable terminal text, for the `chat` console.

Buttons get session-wide numbers (a number always means the same button, until its card is replaced); inputs are
shown with their current values; `Action.ShowCard` and elements hidden until `Action.ToggleVisibility` start
collapsed and open when their button is pressed, as in Teams.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

INPUT_TYPES = ("Input.Text", "Input.Toggle", "Input.ChoiceSet", "Input.Number", "Input.Date", "Input.Time")
SIDE_BY_SIDE_MAX = 110  # wider column sets are printed one column after another
_LINK = re.compile(r"\[([^\]]+)\]\((\S+?)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


@dataclass
class CardView:
    """A card as shown in the console: the card, its inputs' current values, what is open or shown."""

    message_id: str
    card: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)
    visibility: dict[str, bool] = field(default_factory=dict)  # element id -> shown, set by ToggleVisibility
    open_cards: set[int] = field(default_factory=set)  # id() of Action.ShowCard actions that are open
    numbers: dict[int, int] = field(default_factory=dict)  # id(action) -> its button number
    shown: set[int] = field(default_factory=set)  # button numbers visible in the latest rendering

    def __post_init__(self) -> None:
        for element in walk_inputs(self.card):
            self.inputs.setdefault(element["id"], initial_value(element))


def walk_inputs(node: Any) -> Iterator[dict[str, Any]]:
    """Every input element in a card, including those inside ShowCard cards."""
    if isinstance(node, dict):
        if node.get("type") in INPUT_TYPES and isinstance(node.get("id"), str):
            yield node
        for value in node.values():
            yield from walk_inputs(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_inputs(value)


def _own(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a card except what lies inside its Action.ShowCard cards."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if not (key == "card" and node.get("type") == "Action.ShowCard"):
                yield from _own(value)
    elif isinstance(node, list):
        for value in node:
            yield from _own(value)


def inputs_in_scope(card: dict[str, Any], action: dict[str, Any]) -> list[dict[str, Any]]:
    """The inputs a button submits, as in Adaptive Cards: its own card's and the enclosing cards', not those of
    other show-cards."""

    def search(current: dict[str, Any], outer: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        mine = [d for d in _own(current) if d.get("type") in INPUT_TYPES and isinstance(d.get("id"), str)]
        nodes = list(_own(current))
        if any(node is action for node in nodes):
            return outer + mine
        for node in nodes:
            if node.get("type") == "Action.ShowCard" and isinstance(node.get("card"), dict):
                found = search(node["card"], outer + mine)
                if found is not None:
                    return found
        return None

    return search(card, []) or []


def find_element(node: Any, element_id: str) -> dict[str, Any] | None:
    """The element of a card with this id (ToggleVisibility targets)."""
    if isinstance(node, dict):
        if node.get("id") == element_id and "type" in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for value in node:
            found = find_element(value, element_id)
            if found is not None:
                return found
    return None


def is_visible(view: CardView, element: dict[str, Any]) -> bool:
    element_id = element.get("id")
    if isinstance(element_id, str) and element_id in view.visibility:
        return view.visibility[element_id]
    return element.get("isVisible", True) is not False


def initial_value(element: dict[str, Any]) -> str:
    if element.get("type") == "Input.Toggle":
        off = str(element.get("valueOff", "false"))
        return str(element.get("value", off))
    value = element.get("value")
    return "" if value is None else str(value)


def display_width(text: str) -> int:
    """Terminal cells a string takes (wide characters such as most emoji take two)."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or char in "\ufe0f\u200d":
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 0)


def markdown(text: str) -> str:
    """Adaptive Card markdown, kept readable as plain text: bold markers dropped, links as `text (url)`."""
    text = _LINK.sub(lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text)
    return _BOLD.sub(r"\1", text)


class CardRenderer:
    """Renders one `CardView`; `assign` gives a button its session-wide number the first time it is shown."""

    def __init__(self, view: CardView, assign: Callable[[CardView, dict[str, Any]], int]) -> None:
        self.view = view
        self.assign = assign

    def render(self) -> list[str]:
        self.view.shown = set()
        return self._card(self.view.card)

    def _card(self, card: dict[str, Any]) -> list[str]:
        lines = self._items(card.get("body") or [])
        actions = card.get("actions") or []
        if actions:
            lines += self._actions(actions)
        return lines

    def _items(self, items: list[Any]) -> list[str]:
        lines: list[str] = []
        collapsed = 0
        for element in items:
            if not isinstance(element, dict):
                continue
            if not is_visible(self.view, element):
                collapsed += 1
                continue
            if collapsed:
                lines.append(f"▸ ({collapsed} hidden item(s); a button on this card shows them)")
                collapsed = 0
            rendered = self._element(element)
            if not rendered:
                continue
            spaced = element.get("separator") or element.get("spacing") in ("Large", "ExtraLarge", "Padding")
            if lines and (spaced or element.get("type") in ("Container", "Table", "ColumnSet")):
                lines.append("─" * 24 if element.get("separator") else "")
            lines += rendered
        if collapsed:
            lines.append(f"▸ ({collapsed} hidden item(s); a button on this card shows them)")
        return lines

    def _element(self, element: dict[str, Any]) -> list[str]:
        kind = element.get("type")
        lines: list[str]
        if kind == "TextBlock":
            lines = self._text_block(element)
        elif kind == "RichTextBlock":
            runs = [r if isinstance(r, str) else str(r.get("text", "")) for r in element.get("inlines") or []]
            lines = markdown("".join(runs)).splitlines() or [""]
        elif kind == "FactSet":
            lines = self._facts(element.get("facts") or [])
        elif kind == "Container":
            lines = self._items(element.get("items") or [])
            if element.get("style") in ("emphasis", "good", "attention", "warning", "accent"):
                lines = [f"│ {line}" for line in lines]
        elif kind == "ColumnSet":
            lines = self._columns(element.get("columns") or [])
        elif kind == "Table":
            lines = self._table(element)
        elif kind == "ActionSet":
            lines = self._actions(element.get("actions") or [])
        elif kind == "Image":
            lines = [f"[image: {element.get('altText') or 'picture'}]"]
        elif kind == "ImageSet":
            lines = [f"[{len(element.get('images') or [])} image(s)]"]
        elif kind == "Media":
            lines = [f"[media: {element.get('altText') or 'video'}]"]
        elif kind in INPUT_TYPES:
            lines = self._input(element)
        elif isinstance(element.get("fallback"), dict):
            lines = self._element(element["fallback"])
        else:
            lines = [f"[{kind or 'element'} not shown in the console]"]
        select = element.get("selectAction")
        if isinstance(select, dict) and kind in ("Container", "ColumnSet", "Column", "Image"):
            lines = lines + self._actions([{"title": "open", **select}])
        return lines

    def _text_block(self, element: dict[str, Any]) -> list[str]:
        lines = markdown(str(element.get("text", ""))).splitlines() or [""]
        if element.get("color") == "Attention":
            lines[0] = f"! {lines[0]}"
        if element.get("size") in ("Large", "ExtraLarge") or element.get("style") == "heading":
            width = max(display_width(line) for line in lines)
            lines.append("═" * min(width, 72))
        return lines

    def _facts(self, facts: list[Any]) -> list[str]:
        pairs = [
            (markdown(str(f.get("title", ""))), markdown(str(f.get("value", "")))) for f in facts if isinstance(f, dict)
        ]
        width = max((display_width(title) for title, _ in pairs), default=0)
        lines: list[str] = []
        for title, value in pairs:
            first, *rest = value.splitlines() or [""]
            lines.append(f"{pad(title, width)}  {first}".rstrip())
            lines += [" " * (width + 2) + more for more in rest]
        return lines

    def _columns(self, columns: list[Any]) -> list[str]:
        buttons_before = len(self.view.shown)
        blocks = [
            self._items(c.get("items") or []) for c in columns if isinstance(c, dict) and is_visible(self.view, c)
        ]
        blocks = [b for b in blocks if b]
        holds_buttons = len(self.view.shown) > buttons_before
        if len(blocks) <= 1:
            return blocks[0] if blocks else []
        widths = [max(display_width(line) for line in block) for block in blocks]
        if sum(widths) + 3 * len(widths) > SIDE_BY_SIDE_MAX or holds_buttons:
            return [line for block in blocks for line in block]  # too wide (or holds buttons): one after another
        height = max(len(block) for block in blocks)
        return [
            "   ".join(
                pad(block[row] if row < len(block) else "", width) for block, width in zip(blocks, widths, strict=True)
            ).rstrip()
            for row in range(height)
        ]

    def _table(self, table: dict[str, Any]) -> list[str]:
        grid = [
            [
                " ".join(self._items(cell.get("items") or []))
                for cell in row.get("cells") or []
                if isinstance(cell, dict)
            ]
            for row in table.get("rows") or []
            if isinstance(row, dict)
        ]
        if not grid:
            return []
        count = max(len(row) for row in grid)
        grid = [row + [""] * (count - len(row)) for row in grid]
        widths = [max(display_width(row[i]) for row in grid) for i in range(count)]
        lines = [" │ ".join(pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in grid]
        if table.get("firstRowAsHeader", True) and len(lines) > 1:
            lines.insert(1, "─┼─".join("─" * w for w in widths))
        return lines

    def _input(self, element: dict[str, Any]) -> list[str]:
        kind = element["type"]
        input_id = element.get("id", "?")
        value = self.view.inputs.get(input_id, initial_value(element))
        label = markdown(str(element.get("label") or element.get("title") or element.get("placeholder") or input_id))
        required = " (required)" if element.get("isRequired") else ""
        if kind == "Input.Toggle":
            ticked = "x" if value == str(element.get("valueOn", "true")) else " "
            return [f"[{ticked}] {label}{required}   ‹{input_id}: on/off›"]
        shown = value if value else "(empty)"
        line = f"{label}{required}: {shown}   ‹{input_id}›"
        if kind == "Input.ChoiceSet":
            choices = ", ".join(
                f"{c.get('value')} = {c.get('title')}" if c.get("title") != c.get("value") else str(c.get("value"))
                for c in element.get("choices") or []
                if isinstance(c, dict)
            )
            return [line, f"    choices: {choices}"]
        return [line]

    def _actions(self, actions: list[Any]) -> list[str]:
        labels: list[str] = []
        opened: list[dict[str, Any]] = []
        for action in actions:
            if not isinstance(action, dict):
                continue
            number = self.assign(self.view, action)
            self.view.shown.add(number)
            title = str(action.get("title") or action.get("verb") or "button")
            kind = action.get("type")
            if kind == "Action.ShowCard":
                is_open = id(action) in self.view.open_cards
                title += " ▾" if is_open else " ▸"
                if is_open:
                    opened.append(action)
            elif kind == "Action.OpenUrl":
                title += f" ↗ {action.get('url', '')}"
            if action.get("isEnabled") is False:
                title += " (disabled)"
            labels.append(f"[{number}] {title}")
        lines = ["   ".join(labels)] if labels else []
        for action in opened:
            inner = self._card(action.get("card") or {})
            lines += [f"  ┆ {line}" if line else "  ┆" for line in inner]
        return lines
