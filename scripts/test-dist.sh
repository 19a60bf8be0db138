#!/usr/bin/env bash
# Installs what scripts/dist.sh built, the way a user would, where no Rust toolchain exists (cargo,
# rustc and rustup are removed from PATH and the script checks they are gone), and runs each
# language's quick start (tests/dist/) against a local test server:
#   python  a fresh virtual environment where pip picks one of the two wheels in dist/python
#           (binary only, no index; it must pick cp310-abi3 on Python 3.10+), then, on 3.10+, a
#           second one with the cp39-abi3 wheel, so that both wheels run the quick start
#   node    a fresh npm project; npm installs the two tarballs from dist/npm
#   kotlin  a fresh Maven project (tests/dist/kotlin/pom.xml) depending on the jar that
#           scripts/dist.sh installed into the local Maven repository
# Prints the artifact sizes and each install's time.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need node "install Node.js 20.17 or newer"
need python3 "install Python 3.9 or newer"
need mvn "install Maven 3.8 or newer and a JDK 17 or newer"
cd "$ROOT"
version="$(bash scripts/check-version.sh)"
dist="$ROOT/dist"
wheel39="$(ls "$dist"/python/durable_streams_client-"$version"-cp39-abi3-manylinux*.whl 2>/dev/null || true)"
wheel310="$(ls "$dist"/python/durable_streams_client-"$version"-cp310-abi3-manylinux*.whl 2>/dev/null || true)"
npm_main="$dist/npm/durable-streams-client-$version.tgz"
npm_native="$dist/npm/durable-streams-client-linux-x64-gnu-$version.tgz"
jar="$dist/maven/durable-streams-client-$version.jar"
for f in "$wheel39" "$wheel310" "$npm_main" "$npm_native" "$jar"; do
  [ -n "$f" ] && [ -f "$f" ] || { echo "error: missing artifact ${f:-(wheel)}: run scripts/dist.sh first" >&2; exit 1; }
done
m2_jar="$HOME/.m2/repository/io/github/durable-streams-client/durable-streams-client/$version/durable-streams-client-$version.jar"
cmp -s "$jar" "$m2_jar" || { echo "error: $m2_jar is not dist/'s jar: run scripts/dist.sh again" >&2; exit 1; }

start_server
work="$(mktemp -d)"
trap 'stop_server; rm -rf "$work"' EXIT

# PATH without any directory that holds cargo, rustc or rustup.
clean=""
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ] && continue
  clean="${clean:+$clean:}$d"
done
export PATH="$clean"
unset CARGO_TARGET_DIR
for tool in cargo rustc rustup; do
  if command -v "$tool" >/dev/null 2>&1; then echo "error: $tool is still on PATH" >&2; exit 1; fi
done

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
report=()

echo "== test-dist: python (fresh venvs: the wheel pip picks from dist/python, then cp39-abi3)" >&2
# Makes the virtual environment `$1`, has pip install from `$3...` (no index, binary only),
# fails unless the wheel installed has the tag `$2`, then runs the quick start with it.
python_wheel() {
  local venv="$1" expected="$2" tag
  shift 2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-index --only-binary :all: "$@"
  tag="$("$venv/bin/python" -c 'import importlib.metadata as m
w = m.distribution("durable-streams-client").read_text("WHEEL") or ""
print(" ".join(line.split(": ", 1)[1] for line in w.splitlines() if line.startswith("Tag: ")))')"
  case "$tag" in
    "$expected"-*) echo "pip installed the $tag wheel" >&2 ;;
    *) echo "error: pip installed the wheel tagged '$tag', expected $expected" >&2; exit 1 ;;
  esac
  "$venv/bin/python" tests/dist/quickstart.py "$DS_SERVER_URL"
}
expected="$(py_wheel_abi python3)"
t=$(now)
python_wheel "$work/venv" "$expected" --find-links "$dist/python" durable-streams-client
report+=("python: venv + pip install of a wheel from dist/python + quick start: $(elapsed "$t")")
if [ "$expected" != cp39-abi3 ]; then
  python_wheel "$work/venv39" cp39-abi3 "$wheel39"
fi

echo "== test-dist: node (fresh npm project, the two tarballs from dist/npm)" >&2
mkdir "$work/npm"
cp tests/dist/quickstart.mjs tests/dist/quickstart.cjs "$work/npm/"
t=$(now)
(
  cd "$work/npm"
  npm init -y >/dev/null
  npm install --no-audit --no-fund --loglevel=error "$npm_native" "$npm_main"
)
report+=("node: npm install of the two tarballs: $(elapsed "$t")")
[ -f "$work/npm/node_modules/durable-streams-client-linux-x64-gnu/durable-streams-client.linux-x64-gnu.node" ] ||
  { echo "error: the platform package was not installed" >&2; exit 1; }
(cd "$work/npm" && node quickstart.mjs "$DS_SERVER_URL" && node quickstart.cjs "$DS_SERVER_URL")

echo "== test-dist: kotlin (fresh Maven project depending on the installed jar)" >&2
cp -r tests/dist/kotlin "$work/kotlin"
t=$(now)
(cd "$work/kotlin" && mvn -B -ntp -q -Dds.version="$version" compile)
report+=("kotlin: mvn compile of a project depending on the jar: $(elapsed "$t")")
(cd "$work/kotlin" && mvn -B -ntp -q -Dds.version="$version" exec:java -Dexec.args="$DS_SERVER_URL")

echo "== test-dist: ok" >&2
{
  echo "artifacts:"
  (cd "$dist" && find . -type f -printf '  %P  %s bytes\n' | sort)
  echo "clean installs (no cargo/rustc on PATH):"
  printf '  %s\n' "${report[@]}"
} >&2
