"""Which inbox rules look like a mailbox takeover: pure judgement over plain rules, no Graph here.

Attackers forward or redirect mail to themselves and hide the replies their fraud provokes. Cordon disables
(never deletes: the rule is evidence) rules that send mail outside the tenant's own domains, and rules that delete
or hide incoming mail wholesale. Everything else is listed for a human to read, with anything odd marked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adapters.graph.containment import InboxRule


@dataclass(frozen=True)
class Verdict:
    rule: InboxRule
    disable: tuple[str, ...]  # reasons to disable it (empty: leave it alone)
    review: tuple[str, ...]  # odd but not clearly hostile: listed for a human


def is_internal(address: str, domains: Iterable[str]) -> bool:
    """True when the address belongs to one of the tenant's domains (or a subdomain of one)."""
    if "@" not in address:
        return False
    domain = address.rsplit("@", 1)[1].strip().lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in domains)


def assess(rule: InboxRule, domains: Iterable[str]) -> Verdict:
    domains = [d.lower() for d in domains]
    disable: list[str] = []
    review: list[str] = []
    for verb, addresses in (
        ("forwards", rule.forward_to),
        ("redirects", rule.redirect_to),
        ("forwards as attachment", rule.forward_as_attachment_to),
    ):
        outside = [a for a in addresses if "@" in a and not is_internal(a, domains)]
        odd = [a for a in addresses if "@" not in a]
        if outside:
            disable.append(f"{verb} mail to {', '.join(outside)} (outside the tenant)")
        if odd:
            review.append(f"{verb} mail to {', '.join(odd)} (not an e-mail address: check it)")
    wholesale = not rule.conditions
    hides = rule.delete or rule.permanent_delete or rule.move_to_hidden
    where = (
        "permanently deletes"
        if rule.permanent_delete
        else "deletes"
        if rule.delete
        else f"moves to {rule.move_to_folder or 'a hidden folder'}"
    )
    if hides and wholesale:
        disable.append(f"{where} all incoming mail")
    elif hides:  # the classic fraud rule hides only replies about it ("invoice", "hacked"): a human must look
        marks = " and marks as read" if rule.mark_as_read else ""
        review.append(f"{where}{marks} mail matching {'; '.join(rule.conditions)}")
    return Verdict(rule, tuple(disable), tuple(review))


def describe(rule: InboxRule) -> str:
    """One line: what the rule does, for the card."""
    actions = []
    for verb, addresses in (
        ("forward to", rule.forward_to),
        ("redirect to", rule.redirect_to),
        ("forward as attachment to", rule.forward_as_attachment_to),
    ):
        if addresses:
            actions.append(f"{verb} {', '.join(addresses)}")
    if rule.permanent_delete:
        actions.append("permanently delete")
    elif rule.delete:
        actions.append("delete")
    if rule.move_to_folder:
        actions.append(f"move to {rule.move_to_folder}")
    if rule.mark_as_read:
        actions.append("mark as read")
    when = "; ".join(rule.conditions) if rule.conditions else "all mail"
    state = "" if rule.enabled else " (disabled)"
    return f"{when} → {', '.join(actions) or 'other actions'}{state}"
