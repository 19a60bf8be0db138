#!/usr/bin/env bash
# The version of every package is the [workspace.package] version in Cargo.toml. The Rust crates
# and the Python wheel (maturin reads it from Cargo) take it from there; node/package.json,
# node/native/index.js (generated from package.json) and kotlin/pom.xml repeat it, and this
# script fails if any of them differs. Prints the version.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
version="$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version = "\([^"]*\)"/\1/p' Cargo.toml)"
[ -n "$version" ] || { echo "error: no version in [workspace.package] of Cargo.toml" >&2; exit 1; }
fail=0
check() { # check FILE FOUND
  if [ "$2" != "$version" ]; then
    echo "error: $1 has version '$2', Cargo.toml's [workspace.package] has '$version'" >&2
    fail=1
  fi
}
check node/package.json "$(node -p 'require("./node/package.json").version')"
check kotlin/pom.xml "$(sed -n '0,/<version>/ s|^  <version>\([^<]*\)</version>|\1|p' kotlin/pom.xml)"
# The napi loader checks the platform package's version against the one it was generated with.
for v in $(grep -o "bindingPackageVersion !== '[^']*'" node/native/index.js | sed "s/.*'\(.*\)'/\1/" | sort -u); do
  check node/native/index.js "$v"
done
grep -q '^dynamic = \["version"\]' python/pyproject.toml ||
  { echo "error: python/pyproject.toml must take its version from Cargo (dynamic = [\"version\"])" >&2; fail=1; }
for crate in core bindings/python bindings/node bindings/ffi; do
  grep -q '^version.workspace = true' "$crate/Cargo.toml" ||
    { echo "error: $crate/Cargo.toml must use version.workspace = true" >&2; fail=1; }
done
[ "$fail" = 0 ] || exit 1
echo "$version"
