#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, and the Rust tests against a real server
# (the tests start the server themselves).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need cargo "install Rust from https://rustup.rs"
need node "install Node.js 20 or newer"
cd "$ROOT"
bash tests/server/ensure.sh
echo "== rustfmt" >&2
cargo fmt --all -- --check
echo "== clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test" >&2
cargo test --workspace
echo "== benchmark smoke run (every scenario and contender, tiny counts; bench/README.md)" >&2
bash "$ROOT/bench/run.sh" --smoke >/dev/null
echo "== demo (the README's main job)" >&2
bash "$ROOT/scripts/demo.sh" >/dev/null
