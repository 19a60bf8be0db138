#!/usr/bin/env bash
# Builds what the registries would serve, for this machine's platform (linux x86_64, glibc), into
# dist/ (not committed):
#   dist/python/  two abi3 wheels (manylinux, checked by auditwheel): cp39-abi3 for CPython 3.9+
#                 and cp310-abi3 for 3.10+ (faster calls; pip prefers it where it fits), and the
#                 sdist
#   dist/npm/     durable-streams-client-VERSION.tgz (JavaScript, types, the platform loader) and
#                 durable-streams-client-linux-x64-gnu-VERSION.tgz (the addon; an optional
#                 dependency of the first, the napi-rs layout)
#   dist/maven/   durable-streams-client-VERSION.jar (with linux-x86-64/libdurable_streams_ffi.so)
#                 and its .pom; also installed into the local Maven repository (~/.m2)
# All three native libraries use the cargo profile "dist" (Cargo.toml) and share one target
# directory ($CARGO_TARGET_DIR, default ~/.cache/durable-streams-client/target). The version of
# every package is Cargo.toml's [workspace.package] version (scripts/check-version.sh).
# Other platforms are built by .github/workflows/release.yml.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need cargo "install Rust from https://rustup.rs"
need node "install Node.js 20.17 or newer"
need python3 "install Python 3.9 or newer"
need mvn "install Maven 3.8 or newer and a JDK 17 or newer"
cd "$ROOT"
version="$(bash scripts/check-version.sh)"
profile="${DS_DIST_PROFILE:-dist}"
out="$ROOT/dist"
rm -rf "$out"
mkdir -p "$out/python" "$out/npm" "$out/maven"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
step() { echo "== dist: $*" >&2; }

# The build tools live in a virtual environment outside the clone.
tools="${DS_TOOLS_VENV:-$HOME/.cache/durable-streams-client/tools-venv}"
[ -x "$tools/bin/python" ] || python3 -m venv "$tools"
"$tools/bin/pip" install -q --disable-pip-version-check "maturin>=1.16,<2" "auditwheel>=6"

step "python wheels ($profile profile, abi3 for 3.9+ and for 3.10+) and sdist, version $version"
(
  cd python
  # --auditwheel check: fail rather than bundle a shared library the manylinux policy forbids.
  for level in 39 310; do
    "$tools/bin/maturin" build --locked --profile "$profile" --auditwheel check -o "$out/python" \
      --no-default-features --features "abi3-py$level"
    wheel="$(ls "$out/python"/durable_streams_client-"$version"-cp"$level"-abi3-manylinux*.whl)"
    "$tools/bin/auditwheel" show "$wheel" >&2
  done
  "$tools/bin/maturin" sdist -o "$out/python"
)

step "npm packages ($profile profile), version $version"
(
  cd node
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  # napi's own default is cargo's dev profile, whose output folder is "debug", not "dev".
  napi_profile=(--profile "$profile")
  [ "$profile" != dev ] || napi_profile=()
  npx napi build --platform "${napi_profile[@]}" --manifest-path ../bindings/node/Cargo.toml \
    --output-dir native --js index.js --dts index.d.ts
  npm run --silent build:ts
  # The platform package, with the package.json the napi CLI writes for it (`napi
  # create-npm-dirs`, which refuses folders outside the project, is what the release workflow uses).
  mkdir -p "$stage/npm/linux-x64-gnu"
  cp native/durable-streams-client.linux-x64-gnu.node "$stage/npm/linux-x64-gnu/"
  node -e '
    const main = require("./package.json");
    const pkg = {
      name: `${main.name}-linux-x64-gnu`, version: main.version,
      description: `The linux-x64-gnu addon of ${main.name}`,
      os: ["linux"], cpu: ["x64"], libc: ["glibc"],
      main: `${main.napi.binaryName}.linux-x64-gnu.node`,
      files: [`${main.napi.binaryName}.linux-x64-gnu.node`],
      license: main.license, repository: main.repository, engines: main.engines,
    };
    require("fs").writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2) + "\n");
  ' "$stage/npm/linux-x64-gnu/package.json"
  (cd "$stage/npm/linux-x64-gnu" && npm pack -q --pack-destination "$out/npm" >/dev/null)
  # The main package: everything but the addon, which it finds in the platform package.
  mkdir -p "$stage/main/native"
  cp -r package.json README.md dist "$stage/main/"
  cp ../LICENSE "$stage/main/"
  cp native/index.js native/index.d.ts "$stage/main/native/"
  cd "$stage/main"
  npm pkg set "optionalDependencies.durable-streams-client-linux-x64-gnu=$version"
  npm pkg delete scripts devDependencies
  npm pack -q --pack-destination "$out/npm" >/dev/null
)

step "kotlin jar ($profile profile), version $version, installed into the local Maven repository"
(cd kotlin && mvn -B -ntp -Dnative.profile="$profile" -DskipTests install)
cp "kotlin/target/durable-streams-client-$version.jar" "$out/maven/"
cp kotlin/pom.xml "$out/maven/durable-streams-client-$version.pom"

step "done: $out"
(cd "$out" && find . -type f -printf '%P\t%s bytes\n' | sort) >&2
