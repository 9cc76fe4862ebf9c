"""Proactive risky sign-in alerts: `alerts on|off|status`, the poller, the alert card and its buttons.

Importing the package declares the command and the card actions (the registry imports it on first use); the
poller starts from app.py's BACKGROUND hook `dialogs.alerts.runtime:start`.
"""

from dialogs.alerts import actions, commands  # noqa: F401 - declares the command and the card actions
