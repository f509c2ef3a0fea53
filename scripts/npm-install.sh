#!/usr/bin/env bash
# npm-install.sh DIR: install DIR's npm dependencies exactly as locked.
# Idempotent and cheap when nothing changed: skips when node_modules is newer
# than the lock file.
set -euo pipefail
dir=$1
cd "$(dirname "$0")/.."
if [[ ! -f "$dir/package.json" ]]; then
	echo "npm-install: $dir/package.json missing" >&2
	exit 1
fi
if ! command -v npm >/dev/null; then
	echo "npm-install: npm is not installed (apt-get install nodejs npm)" >&2
	exit 1
fi
stamp="$dir/node_modules/.dynamerge-installed"
if [[ -f "$dir/package-lock.json" ]]; then
	if [[ -f "$stamp" && "$stamp" -nt "$dir/package-lock.json" && "$stamp" -nt "$dir/package.json" ]]; then
		exit 0
	fi
	echo "npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
else
	# No lock yet: install and create one, so that the next run is exact.
	echo "npm install in $dir (no package-lock.json: commit the one this creates)"
	(cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
fi
touch "$stamp"
