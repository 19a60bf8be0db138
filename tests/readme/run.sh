#!/usr/bin/env bash
# Runs every README example of every language twice in a row against one server, as a user
# would: the examples name their own streams, so a second run (or another language's
# examples) must not collide with the first.
#
#   Rust    README.md ```rust blocks, as programs (tests/readme/rust, built from the README)
#   Python  python/README.md ```python blocks, with the Python of $DS_PY_VENV (the package
#           installed, as scripts/test.sh leaves it)
#   Node    node/README.md ```js blocks, from a project that has the package installed by path
#           (node/ built: native addon and dist/)
#   Kotlin  kotlin/README.md and README.md ```kotlin blocks, compiled in a Maven project of
#           their own (tests/readme/kotlin) against the jar installed into ~/.m2
#           (`cd kotlin && mvn install`)
#   Swift   not run: there is no Swift compiler here (swift/README.md)
#
# The examples use http://127.0.0.1:4437; here that address is replaced by the test server's.
# Nothing is built here except the examples themselves.
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
here="$ROOT/tests/readme"
PY_VENV="${DS_PY_VENV:-$HOME/.cache/durable-streams-client/py-venv}"
[ -x "$PY_VENV/bin/python" ] || { echo "no Python environment at $PY_VENV (run scripts/test.sh)" >&2; exit 1; }
work="$(mktemp -d)"
cleanup() { stop_server; rm -rf "$work"; }
start_server
trap cleanup EXIT
echo "readme: server $DS_SERVER_URL" >&2

extract() { python3 "$here/extract.py" "$@"; }

# Runs "$@" twice; the output of a failing run goes to stderr.
twice() {
  local label="$1"; shift
  for run in 1 2; do
    if ! "$@" >"$work/out" 2>"$work/err"; then
      echo "readme: $label failed on run $run:" >&2
      cat "$work/out" "$work/err" >&2
      exit 1
    fi
    if grep -q "JNA" "$work/err"; then
      echo "readme: $label wrote JNA messages to stderr on run $run:" >&2
      cat "$work/err" >&2
      exit 1
    fi
  done
  echo "readme: $label ok (twice)" >&2
}

# --- Rust ---------------------------------------------------------------------------------
DS_README_SERVER="$DS_SERVER_URL" cargo build -q -p durable-streams-readme-examples
for name in quickstart reading producer subscriptions; do
  twice "README.md rust $name" "$CARGO_TARGET_DIR/debug/readme_$name"
done

# --- Python -------------------------------------------------------------------------------
n="$(extract "$ROOT/python/README.md" python "$work/py" py "$DS_SERVER_URL")"
for ((i = 0; i < n; i++)); do
  twice "python/README.md python block $i" "$PY_VENV/bin/python" "$work/py/example_$i.py"
done

# --- Node ---------------------------------------------------------------------------------
# What `npm install /path/to/checkout/node` makes: a link to the package in node_modules.
mkdir -p "$work/js/node_modules"
ln -s "$ROOT/node" "$work/js/node_modules/durable-streams-client"
n="$(extract "$ROOT/node/README.md" js "$work/js" mjs "$DS_SERVER_URL")"
for ((i = 0; i < n; i++)); do
  twice "node/README.md js block $i" node "$work/js/example_$i.mjs"
done

# --- Kotlin -------------------------------------------------------------------------------
src="$here/kotlin/target/readme-src"
rm -rf "$src"
# One package per block, so that each block's top-level main stays its own.
nk="$(extract "$ROOT/kotlin/README.md" kotlin "$src/kotlin" kt "$DS_SERVER_URL" $'package readme.kotlin{i}\n\n')"
nr="$(extract "$ROOT/README.md" kotlin "$src/root" kt "$DS_SERVER_URL" $'package readme.root{i}\n\n')"
(cd "$here/kotlin" && mvn -q -B -ntp package </dev/null) >&2
cp="$here/kotlin/target/classes:$here/kotlin/target/lib/*"
for ((i = 0; i < nk; i++)); do
  twice "kotlin/README.md kotlin block $i" java -cp "$cp" "readme.kotlin$i.Example_${i}Kt"
done
for ((i = 0; i < nr; i++)); do
  twice "README.md kotlin block $i" java -cp "$cp" "readme.root$i.Example_${i}Kt"
done
echo "readme: every example ran twice (Swift not run: no Swift compiler)" >&2
