"""The `$filter` of `GET /auditLogs/signIns`, parsed and applied as Graph documents it.

A real parser (not a set of regular expressions for the queries Cordon happens to send), so a test proves the
filter Cordon builds selects the right rows: `and`, `or`, `not`-free parentheses; `eq` on the properties the signIn
resource documents as filterable (`status/errorCode` takes an integer); `ge`, `le`, `gt`, `lt`, `eq` on
`createdDateTime` (an unquoted UTC time). Anything else — another property, operator or literal type, `ne`, a
function, a stray token — is refused with Graph's 400 `Invalid filter clause` (`FilterError`).

Risk levels are Entra ID P2 data: in a tenant without P2 Graph shows them as `hidden`, so a filter on them matches
nothing there (`p2=False`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

# property -> literal kind ("string" or "int"); createdDateTime is handled on its own
STRING_PROPERTIES = {
    "id",
    "userId",
    "userPrincipalName",
    "userDisplayName",
    "appId",
    "appDisplayName",
    "ipAddress",
    "clientAppUsed",
    "correlationId",
    "conditionalAccessStatus",
    "resourceId",
    "resourceDisplayName",
    "riskDetail",
    "riskState",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "location/city",
    "location/state",
    "location/countryOrRegion",
}
INT_PROPERTIES = {"status/errorCode"}
P2_ONLY = {"riskLevelAggregated", "riskLevelDuringSignIn", "riskDetail"}
TIME_OPERATORS = {
    "eq": lambda a, b: a == b,
    "ge": lambda a, b: a >= b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "lt": lambda a, b: a < b,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,7})?Z)"
    r"|(?P<int>-?\d+)(?![\w:-])|(?P<paren>[()])|(?P<word>[A-Za-z][A-Za-z0-9_/]*))"
)


class FilterError(ValueError):
    """Graph would answer 400 `Invalid filter clause`."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise FilterError(f"unexpected text at {at}: {text[at : at + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        at = match.end()
    return tokens


def _value(row: Row, path: str, p2: bool) -> Any:
    if path in P2_ONLY and not p2:
        return "hidden"
    value: Any = row
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Parser:
    def __init__(self, text: str, p2: bool) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.p2 = p2

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1] == word:
            self.at += 1
            return True
        return False

    def expression(self) -> Predicate:
        terms = [self.term()]
        while self.keyword("or"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else (lambda row: any(t(row) for t in terms))

    def term(self) -> Predicate:
        factors = [self.factor()]
        while self.keyword("and"):
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else (lambda row: all(f(row) for f in factors))

    def factor(self) -> Predicate:
        kind, text = self.take()
        if (kind, text) == ("paren", "("):
            inner = self.expression()
            if self.take() != ("paren", ")"):
                raise FilterError("a parenthesis is not closed")
            return inner
        if kind != "word":
            raise FilterError(f"expected a property, found {text!r}")
        return self.comparison(text)

    def comparison(self, name: str) -> Predicate:
        operator = self.take()
        kind, literal = self.take()
        p2 = self.p2
        if name == "createdDateTime":
            if operator[0] != "word" or operator[1] not in TIME_OPERATORS or kind != "time":
                raise FilterError("createdDateTime takes eq/ge/le/gt/lt and a UTC time")
            compare, bound = TIME_OPERATORS[operator[1]], _time(literal)
            return lambda row: (
                isinstance(row.get("createdDateTime"), str) and compare(_time(row["createdDateTime"]), bound)
            )
        if operator != ("word", "eq"):
            raise FilterError(f"{name} supports eq only")
        if name in INT_PROPERTIES:
            if kind != "int":
                raise FilterError(f"{name} is an Edm.Int32")
            number = int(literal)
            return lambda row: _value(row, name, p2) == number
        if name in STRING_PROPERTIES:
            if kind != "str":
                raise FilterError(f"{name} is an Edm.String")
            text = literal[1:-1].replace("''", "'")
            return lambda row: str(_value(row, name, p2)) == text
        raise FilterError(f"{name} is not a filterable property of signIn")


def compile_filter(text: str, *, p2: bool = True) -> Predicate:
    """A predicate over signIn payloads; FilterError for what Graph would refuse."""
    parser = _Parser(text, p2)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return predicate


def hidden_risk(row: Row) -> Row:
    """A sign-in as a tenant without Entra ID P2 sees it: the risk levels and detail are `hidden`."""
    return {k: ("hidden" if k in P2_ONLY and k in row else v) for k, v in row.items()}
