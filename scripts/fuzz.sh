#!/usr/bin/env bash
# fuzz.sh GO FUZZTIME PKGS...: run every Fuzz target of PKGS for FUZZTIME
# each (go test runs one fuzz target per invocation). Findings are written by
# go test into the package's testdata/fuzz/, to be committed as regressions.
set -euo pipefail
go=$1 fuzztime=$2
shift 2
cd "$(dirname "$0")/.."
found=0
failed=()
for pkg in $("$go" list "$@"); do
	targets=$("$go" test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for t in $targets; do
		found=$((found + 1))
		echo "==> $pkg $t ($fuzztime)"
		if ! "$go" test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg"; then
			failed+=("$pkg $t")
		fi
	done
done
echo "fuzz: $found targets, ${#failed[@]} failed"
if [[ ${#failed[@]} -gt 0 ]]; then printf '  %s\n' "${failed[@]}"; exit 1; fi
