#!/usr/bin/env bash
# The main job: start a local Durable Streams server, then run the quick-start example
# against it (create a JSON stream, append, read back, print).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need cargo "install Rust from https://rustup.rs"
need node "install Node.js 20 or newer"
start_server
echo "server: $DS_SERVER_URL" >&2
cargo run -q -p durable-streams-client --example quickstart -- "$DS_SERVER_URL"
