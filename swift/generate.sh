#!/usr/bin/env bash
# Regenerates the Swift bindings from the uniffi library (bindings/ffi), on any host with cargo:
#   Sources/DurableStreamsFFI/DurableStreamsFFI.swift   the generated Swift API
#   FFI/DurableStreamsFFIC.h, FFI/module.modulemap      the C header and module map that
#                                                       build-xcframework.sh packs
#   generate.sh --check   fails (exit 1) when the committed files differ from fresh output.
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
(cd "$root/bindings/ffi" && "$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate --no-format \
  --library "$CARGO_TARGET_DIR/debug/$lib" --language swift --out-dir "$out") 1>&2
mv "$out/DurableStreamsFFIC.modulemap" "$out/module.modulemap"
pairs=(
  "DurableStreamsFFI.swift:Sources/DurableStreamsFFI/DurableStreamsFFI.swift"
  "DurableStreamsFFIC.h:FFI/DurableStreamsFFIC.h"
  "module.modulemap:FFI/module.modulemap"
)
status=0
for pair in "${pairs[@]}"; do
  src="$out/${pair%%:*}" dst="$here/${pair#*:}"
  if $check; then
    if ! cmp -s "$src" "$dst"; then
      echo "swift/${pair#*:} is out of date: run swift/generate.sh" >&2
      status=1
    fi
  else
    cp "$src" "$dst"
  fi
done
exit $status
