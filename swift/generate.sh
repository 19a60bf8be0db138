#!/usr/bin/env bash
# Regenerates the Swift bindings from the uniffi library (bindings/ffi), on any host with cargo:
#   Sources/DurableStreamsFFI/DurableStreamsFFI.swift   the generated Swift API
#   FFI/DurableStreamsFFIC.h, FFI/module.modulemap      the C header and module map that
#                                                       build-xcframework.sh packs
#   generate.sh --check   fails (exit 1) when the committed files differ from fresh output.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=write
[ "${1:-}" = "--check" ] && mode=check
exec bash "$here/../bindings/ffi/generate.sh" swift "$mode" \
  "DurableStreamsFFI.swift:$here/Sources/DurableStreamsFFI/DurableStreamsFFI.swift" \
  "DurableStreamsFFIC.h:$here/FFI/DurableStreamsFFIC.h" \
  "DurableStreamsFFIC.modulemap:$here/FFI/module.modulemap"
