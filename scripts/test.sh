#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, the Rust tests, and the Python, Node and Kotlin
# packages' tests against a real server (the tests start the server themselves).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need cargo "install Rust from https://rustup.rs"
need node "install Node.js 20 or newer"
need python3 "install Python 3.9 or newer"
need mvn "install Maven 3.8 or newer and a JDK 17 or newer"
cd "$ROOT"
bash tests/server/ensure.sh
echo "== rustfmt" >&2
cargo fmt --all -- --check
echo "== clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test" >&2
cargo test --workspace
# The Node and FFI binding crates set `test = false`, so the line above skips them; their unit
# tests (string conversion, the C fast path) are run by name.
cargo test -p durable-streams-client-node -p durable-streams-client-ffi --lib
echo "== build hygiene: fuzz targets, rustdoc, cargo deny, MSRV (scripts/hygiene.sh)" >&2
bash scripts/hygiene.sh
echo "== benchmark smoke run (every scenario and contender, tiny counts; bench/README.md)" >&2
bash "$ROOT/bench/run.sh" --smoke >/dev/null
echo "== demo (the README's main job)" >&2
bash "$ROOT/scripts/demo.sh" >/dev/null
echo "== python package: build, ruff, mypy --strict, stubtest of _native.pyi, pytest" >&2
# A virtual environment outside the clone; the extension is built in debug mode (faster to
# build, and the tests measure behaviour, not speed) into the same cargo target directory.
PY_VENV="${DS_PY_VENV:-$HOME/.cache/durable-streams-client/py-venv}"
[ -x "$PY_VENV/bin/python" ] || python3 -m venv "$PY_VENV"
"$PY_VENV/bin/pip" install -q --disable-pip-version-check maturin pytest ruff mypy
# The build for this interpreter's stable-ABI level, as pip would pick from the two wheels (the
# abi3-py39 one is installed and run by scripts/test-dist.sh below).
PATH="$PY_VENV/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev $(py_abi_args "$PY_VENV/bin/python")" \
  "$PY_VENV/bin/pip" install -q \
  --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./python
examples="$(mktemp -d)"
(
  cd python
  "$PY_VENV/bin/ruff" check .
  "$PY_VENV/bin/ruff" format --check .
  "$PY_VENV/bin/python" tests/readme.py "$examples"
  "$PY_VENV/bin/mypy" --strict "$examples" src/durable_streams_client
  # The hand-written stub of the native module against the built extension.
  "$PY_VENV/bin/python" -m mypy.stubtest durable_streams_client._native
  "$PY_VENV/bin/python" -m pytest -q tests
)
rm -rf "$examples"
echo "== node package: npm ci, addon (debug), generated files up to date, tsc --strict, node --test" >&2
(
  cd node
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  # The addon in debug mode (the tests measure behaviour, not speed); napi regenerates
  # native/index.js and native/index.d.ts, tsc regenerates dist/: both are committed, so any
  # difference means the committed files drifted from the sources.
  npm run --silent build:native
  npm run --silent build:ts
  git diff --exit-code -- native dist
  drift="$(git status --porcelain -- native dist)"
  [ -z "$drift" ] || { echo "untracked generated files: $drift" >&2; exit 1; }
  npm run --silent typecheck
  node --test test/
)
echo "== kotlin package: native library, generated bindings, JUnit 5 (Maven), jar into ~/.m2" >&2
# Dependencies come from Maven Central into ~/.m2; the native library is a debug build sharing
# the cargo target directory. `install` puts the jar where the README examples' project finds it.
(cd kotlin && mvn -B -ntp -Dnative.profile=dev install)
echo "== README examples: every language's, twice in a row against one server" >&2
# Reuses what the steps above built: the Python environment, node/ and the installed jar.
bash tests/readme/run.sh
echo "== packages: scripts/dist.sh, then scripts/test-dist.sh (clean installs, no Rust on PATH)" >&2
# In CI the packages are built with the tests' dev profile, so the crates compiled above are
# reused and this step checks packaging and installation, not optimisation; a release build is
# `bash scripts/dist.sh` (profile "dist"). DS_DIST_PROFILE=dist here builds the release ones.
DS_DIST_PROFILE="${DS_DIST_PROFILE:-dev}" bash scripts/dist.sh
bash scripts/test-dist.sh
echo "== swift and kotlin: the committed generated bindings match the library" >&2
bash swift/generate.sh --check
bash kotlin/generate.sh --check
