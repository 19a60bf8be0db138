#!/usr/bin/env bash
# Peak RSS of reading a large JSON stream from offset -1 (BENCHMARKS.md, "Large reads"):
#   bash bench/large-read.sh [MESSAGES] [MSG_BYTES]     default 2,097,152 x 1,024 B = 2 GiB
# Starts the Rust server (memory durability, from the bench cache that bench/run.sh fills),
# seeds one stream, then reads it whole with each client: the streaming forms, and json()
# with its limit raised for comparison (and Node's body(), the same bytes whole, before Node's
# json(), which exceeds V8's default heap at 2 GiB and ends the script). Needs a release build
# of dsc-bench, the Python extension in $DS_PY_VENV (or the bench venv) and node/ built
# (bench/run.sh builds them).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
BENCH="$ROOT/bench"
CACHE="${DSC_BENCH_CACHE:-$HOME/.cache/dsc-bench}"
count="${1:-2097152}"
size="${2:-1024}"
server_bin="$CACHE/server-0.1.5/bin/durable-streams-server"
[ -x "$server_bin" ] || { echo "large-read.sh: run bench/run.sh once to install the Rust server" >&2; exit 1; }
python="${DSC_BENCH_PYTHON:-$CACHE/venv/bin/python}"
(cd "$ROOT" && cargo build --quiet --release -p dsc-bench) >&2
dsc="${CARGO_TARGET_DIR:-$ROOT/target}/release/dsc-bench"

data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$server_bin" --durability memory --host 127.0.0.1 --port "$port" --data-dir "$data" >"$data/log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
url="http://127.0.0.1:$port/v1/stream/large-read"
curl -sf -X PUT -H "Content-Type: application/json" "$url" >/dev/null
echo "seeding $count messages of $size bytes" >&2
"$dsc" seed "$url" "$count" "$size" >/dev/null
"$dsc" large-read "$url" stream
"$python" "$BENCH/python/large_read.py" "$url" stream
node "$BENCH/node/large-read.mjs" "$url"
"$dsc" large-read "$url" json
"$python" "$BENCH/python/large_read.py" "$url" json
node "$BENCH/node/large-read.mjs" "$url" body
node "$BENCH/node/large-read.mjs" "$url" json
