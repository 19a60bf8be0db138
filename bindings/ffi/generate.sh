#!/usr/bin/env bash
# Generates the uniffi bindings of this crate for one language and writes (or checks) the files
# they are committed as. Called by swift/generate.sh and kotlin/generate.sh.
#
#   generate.sh LANGUAGE write|check SRC:DST ...
#
# SRC is a path inside the generator's output, DST the committed file. `check` fails (exit 1)
# when a committed file differs from fresh output.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
language="${1:?usage: generate.sh LANGUAGE write|check SRC:DST ...}"
mode="${2:?usage: generate.sh LANGUAGE write|check SRC:DST ...}"
shift 2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/durable-streams-client/target}"
case "$(uname -s)" in
  Darwin) lib=libdurable_streams_ffi.dylib ;;
  *) lib=libdurable_streams_ffi.so ;;
esac
(cd "$root" && cargo build -q -p durable-streams-client-ffi -p durable-streams-uniffi-bindgen) 1>&2
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Library mode reads the crate's uniffi.toml through `cargo metadata`, so run it from the crate.
(cd "$here" && "$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate --no-format \
  --library "$CARGO_TARGET_DIR/debug/$lib" --language "$language" --out-dir "$out") 1>&2
status=0
for pair in "$@"; do
  src="$out/${pair%%:*}" dst="${pair#*:}"
  if [ "$mode" = check ]; then
    if ! cmp -s "$src" "$dst"; then
      echo "${dst#"$root"/} is out of date: run $language/generate.sh" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
  fi
done
exit $status
