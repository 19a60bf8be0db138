#!/usr/bin/env bash
# Runs the benchmark of issue 9: installs what it needs (cached), builds the Rust contenders,
# then hands over to bench/driver.py.
#
#   bash bench/run.sh                              # everything: 8 scenarios x 2 servers x 5 reps
#   bash bench/run.sh --scenario producer-json     # one scenario (repeatable; also the groups
#                                                  #   append-latency and live-tail)
#   bash bench/run.sh --smoke                      # CI: every scenario, tiny counts, 1 rep
#   bash bench/run.sh --list                       # the scenario x contender matrix
#   bash bench/run.sh --write-benchmarks ...       # also fill in BENCHMARKS.md's results
#
# Other flags: --contender ID, --server rust|node, --reps N, --scale F (counts x F), --out DIR,
# --no-pin, --note TEXT.
# Cache (server binary, Python venv): $DSC_BENCH_CACHE, default ~/.cache/dsc-bench.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
BENCH="$ROOT/bench"
CACHE="${DSC_BENCH_CACHE:-$HOME/.cache/dsc-bench}"
RUST_SERVER_VERSION=0.1.5

need cargo "install Rust from https://rustup.rs"
need node "install Node.js 20 or newer"
need npm "install Node.js 20 or newer"
need python3 "install Python 3.10 or newer"
need taskset "apt-get install util-linux"

smoke=0
for a in "$@"; do
  [ "$a" = "--smoke" ] && smoke=1
  # The matrix needs nothing installed.
  [ "$a" = "--list" ] && exec python3 "$BENCH/driver.py" --list
done

mkdir -p "$CACHE"
exec 9>"$CACHE/.setup.lock"
flock 9

# The Rust server, from crates.io.
SERVER_BIN="$CACHE/server-$RUST_SERVER_VERSION/bin/durable-streams-server"
if [ ! -x "$SERVER_BIN" ]; then
  echo "run.sh: installing durable-streams $RUST_SERVER_VERSION (Rust server)" >&2
  cargo install durable-streams --version "$RUST_SERVER_VERSION" --locked \
    --root "$CACHE/server-$RUST_SERVER_VERSION" >&2
fi

# The Node reference server (tests/server) and the TypeScript client.
bash "$ROOT/tests/server/ensure.sh"
if [ ! -f "$BENCH/node/node_modules/.bench-stamp" ] \
  || [ "$BENCH/node/package-lock.json" -nt "$BENCH/node/node_modules/.bench-stamp" ]; then
  echo "run.sh: npm ci in bench/node" >&2
  (cd "$BENCH/node" && npm ci --no-audit --no-fund >&2)
  touch "$BENCH/node/node_modules/.bench-stamp"
fi

# The Python client from PyPI, in its own venv.
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$BENCH/python/requirements.txt" "$VENV/.requirements"; then
  echo "run.sh: creating the Python venv $VENV" >&2
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >&2; then
    # Debian's own python3 keeps venv in a separate package.
    command -v apt-get >/dev/null || { echo "run.sh: python3 -m venv failed" >&2; exit 1; }
    apt-get install -y -qq python3-venv >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$BENCH/python/requirements.txt" >&2
  cp "$BENCH/python/requirements.txt" "$VENV/.requirements"
fi
# Our Python binding (contender py-binding), built from ../python into the same venv: a debug
# build for the smoke run, release otherwise. Rebuilt when its sources, the profile or the
# checkout it comes from changed (the stamp records the last two). It is the build of the wheel
# pip installs for the venv's Python (py_abi_args in scripts/common.sh).
if [ "$smoke" = 1 ]; then py_profile=dev; else py_profile=release; fi
py_abi="$(py_abi_args "$VENV/bin/python")"
PY_STAMP="$VENV/.binding"
if [ ! -f "$PY_STAMP" ] || [ "$(cat "$PY_STAMP")" != "$ROOT $py_profile $py_abi" ] \
  || [ -n "$(find "$ROOT/core/src" "$ROOT/core/Cargo.toml" "$ROOT/bindings/python" "$ROOT/python/src" \
    "$ROOT/python/pyproject.toml" -newer "$PY_STAMP" -print -quit)" ]; then
  echo "run.sh: installing the Python binding ($py_profile) into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check maturin >&2
  PATH="$VENV/bin:$PATH" MATURIN_PEP517_ARGS="--profile $py_profile $py_abi" "$VENV/bin/pip" install \
    --quiet --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps \
    "$ROOT/python" >&2
  echo "$ROOT $py_profile $py_abi" >"$PY_STAMP"
fi
flock -u 9

# Our Node package (contender node-binding): bench/node links ../node (package.json), so the
# contender imports it as an installed package. dist/ and native/index.js are committed; the
# addon itself is built here by the package's own napi script (scripts/test.sh uses the same
# one): debug for the smoke run, release otherwise. Rebuilt when the sources or the profile
# changed, or the addon is missing (the stamp, in node/node_modules, records the profile).
NODE_PKG="$ROOT/node"
if [ ! -x "$NODE_PKG/node_modules/.bin/napi" ] \
  || [ "$NODE_PKG/package-lock.json" -nt "$NODE_PKG/node_modules/.package-lock.json" ]; then
  echo "run.sh: npm ci in node (the napi CLI and tsc)" >&2
  (cd "$NODE_PKG" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2)
fi
NODE_STAMP="$NODE_PKG/node_modules/.bench-native"
if [ "$smoke" = 1 ]; then node_profile=dev; else node_profile=release; fi
if ! compgen -G "$NODE_PKG/native/*.node" >/dev/null || [ ! -f "$NODE_STAMP" ] \
  || [ "$(cat "$NODE_STAMP")" != "$node_profile" ] \
  || [ -n "$(find "$ROOT/core/src" "$ROOT/core/Cargo.toml" "$ROOT/bindings/node" "$ROOT/Cargo.lock" \
    -newer "$NODE_STAMP" -print -quit)" ]; then
  echo "run.sh: building the Node addon ($node_profile) in node/native" >&2
  if [ "$node_profile" = release ]; then script=build:native:release; else script=build:native; fi
  (cd "$NODE_PKG" && npm run --silent "$script" >&2)
  echo "$node_profile" >"$NODE_STAMP"
fi

# Our Kotlin package (contenders kotlin-binding*): the jar, with the release native library,
# installed into ~/.m2 as a user would (`mvn install`), and bench/kotlin built against it.
# Rebuilt when the sources or the profile changed (the stamp, bench/kotlin/target/.bench-stamp,
# records the profile). Skipped, with
# a note, where java or mvn is missing (the driver then reports those runs as failed).
KOTLIN_STAMP="$BENCH/kotlin/target/.bench-stamp"
if command -v mvn >/dev/null && command -v java >/dev/null; then
  if [ "$smoke" = 1 ]; then kt_want=dev; else kt_want=release; fi
  if [ ! -f "$KOTLIN_STAMP" ] || [ "$(cat "$KOTLIN_STAMP")" != "$kt_want" ] \
    || [ -n "$(find "$ROOT/core/src" "$ROOT/bindings/ffi/src" "$ROOT/kotlin/src" "$ROOT/kotlin/pom.xml" \
      "$BENCH/kotlin/src" "$BENCH/kotlin/pom.xml" -newer "$KOTLIN_STAMP" -print -quit)" ]; then
    if [ "$smoke" = 1 ]; then kt_profile=dev; else kt_profile=release; fi
    echo "run.sh: installing the Kotlin jar ($kt_profile) and building bench/kotlin" >&2
    (cd "$ROOT/kotlin" && mvn -q -B -ntp -DskipTests -Dnative.profile="$kt_profile" install </dev/null >&2)
    (cd "$BENCH/kotlin" && mvn -q -B -ntp package </dev/null >&2)
    echo "$kt_profile" >"$KOTLIN_STAMP"
  fi
else
  echo "run.sh: no java or mvn: the Kotlin contenders cannot run" >&2
fi

# The Rust contenders (raw bound, our core): a debug build is enough for the smoke run.
if [ "$smoke" = 1 ]; then
  cargo build --quiet -p dsc-bench >&2
  DSC_BENCH_BIN="$CARGO_TARGET_DIR/debug/dsc-bench"
else
  cargo build --quiet --release -p dsc-bench >&2
  DSC_BENCH_BIN="$CARGO_TARGET_DIR/release/dsc-bench"
fi

export DSC_BENCH_BIN DSC_BENCH_RUST_SERVER="$SERVER_BIN" DSC_BENCH_PYTHON="$VENV/bin/python"
export DSC_BENCH_NODE="$(command -v node)" DSC_BENCH_COMMAND="bash bench/run.sh $*"
cd "$ROOT"
exec python3 "$BENCH/driver.py" "$@"
