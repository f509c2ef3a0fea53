#!/usr/bin/env bash
# fuzz.sh GO FUZZTIME PKGS...: run every Fuzz target of PKGS for FUZZTIME
# each (go test runs one fuzz target per invocation). The targets are found
# in the source (func Fuzz... in *_test.go), so that no test binary is built
# for a package without any. Findings are written by go test into the
# package's testdata/fuzz/, to be committed as regressions.
set -euo pipefail
go=$1 fuzztime=$2
shift 2
cd "$(dirname "$0")/.."
found=0
failed=()
while IFS=$'\t' read -r pkg pkgdir; do
	targets=$(cat /dev/null "$pkgdir"/*_test.go 2>/dev/null | sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' | sort -u || true)
	for t in $targets; do
		found=$((found + 1))
		echo "==> $pkg $t ($fuzztime)"
		dir=$pkgdir/testdata/fuzz/$t
		before=$(ls "$dir" 2>/dev/null | sort || true)
		out=$(mktemp)
		if ! "$go" test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$out"; then
			after=$(ls "$dir" 2>/dev/null | sort || true)
			# Go 1.26's fuzz coordinator can fail a run with a bare
			# "context deadline exceeded" at the end of -fuzztime, with no
			# failing input (golang/go#75804, fixed in Go 1.27). A real
			# finding always writes its input to testdata/fuzz/<Target>/.
			if [[ "$before" == "$after" ]] && grep -q '^    context deadline exceeded$' "$out"; then
				echo "fuzz: $t: the -fuzztime deadline race of golang/go#75804, no failing input: not a finding"
			else
				failed+=("$pkg $t")
			fi
		fi
		rm -f "$out"
	done
done < <("$go" list -f '{{.ImportPath}}{{"\t"}}{{.Dir}}' "$@")
echo "fuzz: $found targets, ${#failed[@]} failed"
if [[ ${#failed[@]} -gt 0 ]]; then printf '  %s\n' "${failed[@]}"; exit 1; fi
