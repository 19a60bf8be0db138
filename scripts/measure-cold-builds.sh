#!/usr/bin/env bash
# Measures the cold build of each package (every crate compiled from scratch; the crates are
# already downloaded) and prints one Markdown table row per package: wall time and user+sys CPU
# time (CPU time is less sensitive to other work on the machine).
#
#   scripts/measure-cold-builds.sh PROFILE [SCRATCH_DIR]
#
# PROFILE: the cargo profile of the three packages' native libraries (release, dist). Each package
# gets its own fresh target directory under SCRATCH_DIR (default ~/.cache/durable-streams-client/cold),
# which is deleted first. DS_COLD_PACKAGES (default: all four) picks rows by name, e.g.
# "python-wheel node-addon". Needs the tools of scripts/dist.sh (maturin in DS_TOOLS_VENV, npm, mvn).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
profile="${1:?usage: measure-cold-builds.sh PROFILE [SCRATCH_DIR]}"
scratch="${2:-$HOME/.cache/durable-streams-client/cold}"
tools="${DS_TOOLS_VENV:-$HOME/.cache/durable-streams-client/tools-venv}"
[ -x "$tools/bin/maturin" ] || { echo "error: maturin not found in $tools (run scripts/dist.sh once)" >&2; exit 1; }
[ -d "$ROOT/node/node_modules/@napi-rs/cli" ] || (cd "$ROOT/node" && npm ci --no-audit --no-fund --loglevel=error)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# measure NAME COMMAND...: runs COMMAND with a fresh CARGO_TARGET_DIR and prints a table row.
measure() {
  local name="$1"; shift
  case " ${DS_COLD_PACKAGES:-python-wheel node-addon kotlin-jar cargo-test} " in
    *" $name "*) ;;
    *) return 0 ;;
  esac
  export CARGO_TARGET_DIR="$scratch/$name"
  rm -rf "$CARGO_TARGET_DIR"
  /usr/bin/time -f "%e %U %S" -o "$out/time" "$@" >"$out/log" 2>&1 || { cat "$out/log" >&2; exit 1; }
  read -r wall user sys <"$out/time"
  awk -v n="$name" -v p="$profile" -v w="$wall" -v u="$user" -v s="$sys" \
    'BEGIN { printf "| %s | %s | %d m %02d s | %d m %02d s |\n", n, p, w/60, w%60, (u+s)/60, (u+s)%60 }'
  rm -rf "$CARGO_TARGET_DIR"
}

cd "$ROOT"
echo "| package | profile | wall | user+sys CPU |"
echo "| --- | --- | --- | --- |"
measure python-wheel bash -c "cd python && '$tools/bin/maturin' build --profile '$profile' -o '$out/wheel'"
measure node-addon bash -c "cd node && npx napi build --platform --profile '$profile' --manifest-path ../bindings/node/Cargo.toml --output-dir '$out/node' --no-js"
measure kotlin-jar bash -c "cd kotlin && mvn -B -ntp -Dnative.profile='$profile' -DskipTests package"
measure cargo-test cargo test --workspace --no-run
