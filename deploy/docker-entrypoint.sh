#!/bin/sh
# The container's entry point (also run by tests/test_deploy.py in the venv, since no image builder works there).
# App Service passes configuration only as environment variables: CORDON_TOML, when set, is the cordon.toml text
# (written to a private temporary file, never logged). PORT (default 8000) and HOST are read by Cordon itself.
set -eu
if [ -n "${CORDON_TOML:-}" ] && [ -z "${CORDON_CONFIG:-}" ]; then
  umask 077
  CORDON_CONFIG="$(mktemp "${TMPDIR:-/tmp}/cordon.XXXXXX.toml")"
  printf '%s\n' "$CORDON_TOML" > "$CORDON_CONFIG"
  export CORDON_CONFIG
  unset CORDON_TOML
fi
exec "${CORDON_PYTHON:-python}" -m app "$@"
