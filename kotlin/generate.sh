#!/usr/bin/env bash
# Regenerates the Kotlin bindings of the uniffi library (bindings/ffi), which are committed under
# kotlin/src/generated/kotlin so that building the jar needs only the library (the code generator
# and its dependencies are about 4 CPU-minutes of a cold build).
#   generate.sh           rewrites the committed file
#   generate.sh --check   fails (exit 1) when the committed file differs from fresh output
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/durable-streams-client/target}"
check=false
[ "${1:-}" = "--check" ] && check=true
case "$(uname -s)" in
  Darwin) lib=libdurable_streams_ffi.dylib ;;
  *) lib=libdurable_streams_ffi.so ;;
esac
(cd "$root" && cargo build -q -p durable-streams-client-ffi -p durable-streams-uniffi-bindgen) 1>&2
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Library mode reads the crate's uniffi.toml through `cargo metadata`, so run it from the crate.
(cd "$root/bindings/ffi" && "$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate --no-format \
  --library "$CARGO_TARGET_DIR/debug/$lib" --language kotlin --out-dir "$out") 1>&2
rel=io/github/durablestreamsclient/ffi/durable_streams_ffi.kt
dst="$here/src/generated/kotlin/$rel"
if $check; then
  cmp -s "$out/$rel" "$dst" || { echo "kotlin/src/generated/kotlin/$rel is out of date: run kotlin/generate.sh" >&2; exit 1; }
else
  mkdir -p "$(dirname "$dst")"
  cp "$out/$rel" "$dst"
fi
