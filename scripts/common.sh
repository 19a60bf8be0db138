# Sourced by the scripts in this folder: paths, build cache, and the test-server helper.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Build output outside the clone, so fresh clones (and CI) reuse earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/durable-streams-client/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Which of the two Python wheels scripts/dist.sh builds pip installs for the interpreter `$1`:
# cp310-abi3 on 3.10 and later (pyo3 calls methods with vectorcall there), else cp39-abi3
# (bindings/python/Cargo.toml).
py_wheel_abi() {
  if "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo cp310-abi3
  else
    echo cp39-abi3
  fi
}

# The maturin arguments that build the extension of that wheel (feature abi3-py39 or abi3-py310).
py_abi_args() {
  local level
  level="$(py_wheel_abi "$1")"
  level="${level%-abi3}"
  echo "--no-default-features --features abi3-py${level#cp}"
}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required ($2)" >&2; exit 1; }
}

# Starts the reference server in the background; sets DS_SERVER_URL and DS_SERVER_PID and
# stops the server when the calling script exits.
start_server() {
  bash "$ROOT/tests/server/ensure.sh"
  local fifo; fifo="$(mktemp -u)"; mkfifo "$fifo"
  node "$ROOT/tests/server/start.mjs" --ignore-stdin "$@" </dev/null >"$fifo" 2>/dev/null &
  DS_SERVER_PID=$!
  trap stop_server EXIT
  read -r DS_SERVER_URL <"$fifo"
  rm -f "$fifo"
  export DS_SERVER_URL DS_SERVER_PID
}

stop_server() {
  if [ -n "${DS_SERVER_PID:-}" ]; then
    kill "$DS_SERVER_PID" 2>/dev/null || true
    wait "$DS_SERVER_PID" 2>/dev/null || true
    DS_SERVER_PID=
  fi
}
