#!/usr/bin/env bash
# Build hygiene, run by scripts/test.sh:
#   - the core's `fuzzing` feature and the fuzz targets (core/fuzz, its own workspace) compile
#     (`cargo check` on stable: the targets need nightly only to *run* under cargo-fuzz's
#     sanitizers, not to compile);
#   - the API docs build with warnings denied (broken links, bad code blocks);
#   - cargo-deny: licenses, bans (duplicate versions included) and sources (deny.toml); the
#     advisory database is not reachable from here, so .github/workflows/release.yml checks
#     advisories;
#   - MSRV: the crates (rust-version 1.88 for all, from the workspace) compile with Rust 1.88
#     (installed with rustup when missing) and the committed Cargo.lock.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need cargo "install Rust from https://rustup.rs"
cd "$ROOT"
tools="$HOME/.cache/durable-streams-client/tools"

echo "== hygiene: cargo check of the fuzzing feature and the fuzz targets" >&2
cargo check -q -p durable-streams-client --features fuzzing
# core/fuzz keeps no Cargo.lock (core/fuzz/.gitignore): it resolves against the registry.
cargo check -q --manifest-path core/fuzz/Cargo.toml --bins

echo "== hygiene: cargo doc (RUSTDOCFLAGS=-D warnings)" >&2
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --locked \
  -p durable-streams-client -p durable-streams-client-python -p durable-streams-client-node \
  -p durable-streams-client-ffi
# The bindings' internals are documented for maintainers: their private items too.
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --locked --document-private-items \
  -p durable-streams-client-python -p durable-streams-client-ffi

echo "== hygiene: cargo deny check licenses bans sources" >&2
if [ ! -x "$tools/bin/cargo-deny" ]; then
  echo "installing cargo-deny into $tools (once)" >&2
  cargo install -q --locked cargo-deny --version "^0.20" --root "$tools"
fi
"$tools/bin/cargo-deny" --all-features check --hide-inclusion-graph licenses bans sources

echo "== hygiene: MSRV (rust-version in Cargo.toml)" >&2
msrv() { # msrv VERSION PACKAGE...
  local v="$1"; shift
  rustup run "$v" rustc --version >/dev/null 2>&1 ||
    rustup toolchain install "$v" --profile minimal --no-self-update >&2
  local args=()
  for p in "$@"; do args+=(-p "$p"); done
  # Its own target directory: artifacts of another compiler version are never reused anyway.
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/msrv-$v" rustup run "$v" cargo check -q --locked "${args[@]}"
}
msrv 1.88 durable-streams-client durable-streams-client-python durable-streams-client-ffi \
  durable-streams-client-node
