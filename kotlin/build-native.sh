#!/usr/bin/env bash
# Builds the uniffi library (bindings/ffi) and generates its Kotlin bindings, for the Maven
# build (generate-sources phase). Output goes to stderr.
#
#   build-native.sh OUT_DIR [PROFILE]     PROFILE: a cargo profile: release (default), dist or dev
#
# Writes OUT_DIR/generated-sources/uniffi (Kotlin) and
# OUT_DIR/generated-resources/native/linux-x86-64/libdurable_streams_ffi.so (bundled in the jar,
# where JNA finds it). Only the host's library is built: linux-x86-64 on this project's machines.
# The release workflow (.github/workflows/release.yml) builds the other platforms' libraries and
# sets DS_EXTRA_NATIVE_DIR to a folder of JNA resource folders (darwin-aarch64/, win32-x86-64/,
# ...), which are copied next to the host's so that one jar carries them all.
set -euo pipefail
exec 1>&2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:?usage: build-native.sh OUT_DIR [release|dev]}"
profile="${2:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/durable-streams-client/target}"
case "$profile" in
  dev) dir=debug ;;
  release | dist) dir="$profile" ;;
  *) echo "build-native.sh: unknown profile $profile" >&2; exit 2 ;;
esac
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) prefix=linux-x86-64; lib=libdurable_streams_ffi.so ;;
  Linux-aarch64) prefix=linux-aarch64; lib=libdurable_streams_ffi.so ;;
  Darwin-arm64) prefix=darwin-aarch64; lib=libdurable_streams_ffi.dylib ;;
  Darwin-x86_64) prefix=darwin-x86-64; lib=libdurable_streams_ffi.dylib ;;
  *) echo "build-native.sh: unsupported host $(uname -s)-$(uname -m)" >&2; exit 2 ;;
esac
cd "$root"
# Not quiet: cargo's progress lines (and its "Blocking waiting for file lock" note, when another
# build holds the target directory) show that the build is moving.
echo "build-native.sh: cargo build --profile $profile -p durable-streams-client-ffi (target: $CARGO_TARGET_DIR)"
cargo build --profile "$profile" -p durable-streams-client-ffi
# The code generator is a build tool: always the debug build (much faster to compile).
echo "build-native.sh: cargo build -p durable-streams-uniffi-bindgen (debug)"
cargo build -p durable-streams-uniffi-bindgen
rm -rf "$out/generated-sources/uniffi" "$out/generated-resources/native"
mkdir -p "$out/generated-sources/uniffi" "$out/generated-resources/native/$prefix"
# Library mode reads the crate's uniffi.toml through `cargo metadata`, so run it from the crate.
(cd bindings/ffi && "$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate --no-format \
  --library "$CARGO_TARGET_DIR/$dir/$lib" --language kotlin \
  --out-dir "$out/generated-sources/uniffi")
cp "$CARGO_TARGET_DIR/$dir/$lib" "$out/generated-resources/native/$prefix/$lib"
if [ -n "${DS_EXTRA_NATIVE_DIR:-}" ]; then
  for d in "$DS_EXTRA_NATIVE_DIR"/*/; do
    [ "$(basename "$d")" = "$prefix" ] && continue
    echo "build-native.sh: adding $(basename "$d") from $DS_EXTRA_NATIVE_DIR"
    cp -r "$d" "$out/generated-resources/native/"
  done
fi
