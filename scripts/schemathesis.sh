#!/usr/bin/env bash
# Schemathesis (property-based API testing, from PyPI) for the control API's
# OpenAPI description, in a Python venv of its own.
#
#   scripts/schemathesis.sh install          create the venv and install the pinned version (once)
#   scripts/schemathesis.sh run <args...>    schemathesis run <args...> (install first)
#   scripts/schemathesis.sh path             print the schemathesis executable
#
# The venv is ~/.cache/vigia/schemathesis (VIGIA_CACHE moves ~/.cache/vigia);
# it is rebuilt when the pinned version changes. Needs python3 with venv.
# internal/app/control_schema_test.go runs it against a control service when
# VIGIA_TEST_SCHEMATHESIS=1.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
VENV="${VIGIA_CACHE:-${HOME:-/tmp}/.cache/vigia}/schemathesis"
BIN="$VENV/bin/schemathesis"

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

installed() {
  [[ -x "$BIN" && -f "$VENV/.complete" && "$(cat "$VENV/.complete")" == "$SCHEMATHESIS_VERSION" ]]
}

cmd_install() {
  installed && return 0
  command -v python3 >/dev/null || die "python3 not found"
  mkdir -p "$(dirname "$VENV")"
  # serialise concurrent installs (parallel test packages, several scripts)
  exec 8>"$VENV.lock"
  flock 8
  if installed; then exec 8>&-; return 0; fi
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV ..."
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
  "$BIN" --version >&2
  echo "$SCHEMATHESIS_VERSION" >"$VENV/.complete"
  exec 8>&-
}

cmd_run() {
  installed || die "schemathesis $SCHEMATHESIS_VERSION is not installed: run scripts/schemathesis.sh install"
  exec "$BIN" run "$@"
}

case "${1:-}" in
  install) cmd_install ;;
  run) shift; cmd_run "$@" ;;
  path) installed || die "not installed: run scripts/schemathesis.sh install"; echo "$BIN" ;;
  *) usage ;;
esac
