#!/usr/bin/env bash
# build.sh [EXAMPLE_DIR]: builds an example app the way an app developer
# would get dynamerge: `npm pack` in browser/, `npm install` of that tarball
# into the example (its other dependencies as locked, from the npm registry,
# installed once and kept while the lock is unchanged), then the example's
# `npm run build` (tsc strict typecheck, vite build) into EXAMPLE_DIR/dist.
# Default EXAMPLE_DIR: browser/examples/react-todos. Prints the tarball's
# size and the build's time.
set -euo pipefail
cd "$(dirname "$0")/../.."
ex=${1:-browser/examples/react-todos}
scripts/npm-install.sh "$ex"
pack=$(mktemp -d)
trap 'rm -rf "$pack"' EXIT
tgz=$(cd browser && npm pack --silent --pack-destination "$pack")
echo "npm pack: $tgz, $(stat -c %s "$pack/$tgz") bytes"
# --no-save: the tarball changes with every build of the library, so it
# stays out of the example's package.json and lock.
(cd "$ex" && npm install --no-save --no-audit --no-fund --loglevel=error "$pack/$tgz")
start=$(date +%s%N)
(cd "$ex" && npm run --silent build)
echo "example build (tsc + vite): $(( ($(date +%s%N) - start) / 1000000 )) ms"
