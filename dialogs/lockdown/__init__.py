"""Account lock-down with a four-eyes approval on an Adaptive Card (issue 5).

Importing this package declares the `lockdown` / `unlock` commands and the Approve / Reject card actions.
Server background work: `dialogs.lockdown:start` (resumes interrupted runs, expires old requests).
Modules: `state` (the CAS state machine), `steps` (what each step does), `runner` (runs and resumes),
`cards` (the card at every stage), `rules` (which inbox rules are suspicious), `commands`, `actions`.
"""

from __future__ import annotations

from dialogs.lockdown import actions, commands  # noqa: F401 - registers the commands and card actions
from dialogs.lockdown.background import start

__all__ = ["start"]
