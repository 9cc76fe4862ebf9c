"""Dialogs: one module per command family. Plain commands in, plain replies out; no SDK objects."""
