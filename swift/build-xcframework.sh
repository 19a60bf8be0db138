#!/usr/bin/env bash
# Builds DurableStreamsFFIC.xcframework (the Rust library as static libraries, with the C
# header and module map) for the Swift package. macOS with Xcode and rustup only:
#   rustup target add aarch64-apple-darwin x86_64-apple-darwin aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
#   swift/build-xcframework.sh            # then: cd swift && swift test
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh needs macOS and Xcode" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
targets=(aarch64-apple-darwin x86_64-apple-darwin aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
for t in "${targets[@]}"; do
  (cd "$root" && cargo build --release -p durable-streams-client-ffi --target "$t")
done
lib=libdurable_streams_ffi.a
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/headers" "$work/macos" "$work/ios-sim"
cp "$here/FFI/DurableStreamsFFIC.h" "$here/FFI/module.modulemap" "$work/headers/"
# One library per platform: fat archives for the two macOS and the two simulator architectures.
lipo -create "$CARGO_TARGET_DIR/aarch64-apple-darwin/release/$lib" \
  "$CARGO_TARGET_DIR/x86_64-apple-darwin/release/$lib" -output "$work/macos/$lib"
lipo -create "$CARGO_TARGET_DIR/aarch64-apple-ios-sim/release/$lib" \
  "$CARGO_TARGET_DIR/x86_64-apple-ios/release/$lib" -output "$work/ios-sim/$lib"
rm -rf "$here/DurableStreamsFFIC.xcframework"
xcodebuild -create-xcframework \
  -library "$work/macos/$lib" -headers "$work/headers" \
  -library "$CARGO_TARGET_DIR/aarch64-apple-ios/release/$lib" -headers "$work/headers" \
  -library "$work/ios-sim/$lib" -headers "$work/headers" \
  -output "$here/DurableStreamsFFIC.xcframework"
echo "built $here/DurableStreamsFFIC.xcframework" >&2
