"""Adapters: every outside system (DNS, Microsoft Graph, credentials, storage, HTTP) behind a small interface."""
