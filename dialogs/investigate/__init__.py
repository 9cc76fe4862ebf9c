"""Incident response (issue 12): `investigate <user> [days]` and `hunt <user | ip> [days]`.

Importing this package declares both commands and their cards' buttons. Modules: `analysis` (pure judgement),
`report` (reads one user, in parallel), `hunt` (streams the tenant's sign-ins), `cards`, `refs` (what buttons act
on, kept server-side), `commands`, `actions`. Graph reads are in `adapters/graph/incident.py`; the buttons that
change something open lock-down requests (`dialogs/lockdown/remediation.py` runs the new steps).
"""

from __future__ import annotations

from dialogs.investigate import actions, commands  # noqa: F401 - registers the commands and card actions
