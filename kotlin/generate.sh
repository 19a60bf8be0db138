#!/usr/bin/env bash
# Regenerates the Kotlin bindings of the uniffi library (bindings/ffi), which are committed under
# kotlin/src/generated/kotlin so that building the jar needs only the library (the code generator
# and its dependencies are about 4 CPU-minutes of a cold build).
#   generate.sh           rewrites the committed file
#   generate.sh --check   fails (exit 1) when the committed file differs from fresh output
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=write
[ "${1:-}" = "--check" ] && mode=check
file=io/github/durablestreamsclient/ffi/durable_streams_ffi.kt
exec bash "$here/../bindings/ffi/generate.sh" kotlin "$mode" "$file:$here/src/generated/kotlin/$file"
