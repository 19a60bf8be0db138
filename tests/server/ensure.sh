#!/usr/bin/env bash
# Make sure the test server's npm dependencies are installed.
#
# Idempotent and cheap when nothing changed: runs `npm ci` in tests/server
# only when node_modules is missing or older than package-lock.json /
# package.json. Safe to call from several test processes at once (serialised
# with flock when available). All output goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

exec 1>&2 # keep stdout clean for callers

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "ensure.sh: node and npm are required (Node.js >= 18) to run the test server" >&2
  exit 1
fi

stamp="node_modules/.ensure-stamp"

needs_install() {
  [ -d node_modules/@durable-streams/server ] || return 0
  [ -f "$stamp" ] || return 0
  [ package-lock.json -nt "$stamp" ] && return 0
  [ package.json -nt "$stamp" ] && return 0
  return 1
}

install() {
  if needs_install; then
    echo "ensure.sh: installing test-server dependencies (npm ci) in $here" >&2
    npm ci --no-audit --no-fund
    touch "$stamp"
  fi
}

if command -v flock >/dev/null 2>&1; then
  # Another process may be installing right now; wait for it, then re-check.
  exec 9>"$here/.ensure.lock"
  flock 9
  install
  flock -u 9
else
  install
fi
