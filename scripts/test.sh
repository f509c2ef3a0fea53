#!/usr/bin/env bash
# test.sh GO TIMEOUT DDB_DIR GO_TEST_ARGS...: the body of `make test`.
# gofmt, go vet, then go test with the given arguments with DynamoDB Local
# running (fetched by make deps), and a summary at the end. With
# FUZZTIME_TEST set (e.g. 5s), every Fuzz target also runs that long; with
# BROWSER_TESTS=1, the browser library's unit tests and the real-Chromium
# tests run too. Every step runs even when an earlier one failed; the exit
# status is non-zero when any step failed.
set -euo pipefail
go=$1 timeout=$2 ddb_dir=$3
shift 3
cd "$(dirname "$0")/.."
mkdir -p .cache
log=.cache/test.log
start=$SECONDS
status=0
declare -a steps=()
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT

step() { printf '\n==> %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*' -not -path '*/node_modules/*'))
if [[ -n "$unformatted" ]]; then
	echo "not gofmt'd:"; echo "$unformatted"
	steps+=("FAIL gofmt"); status=1
else
	steps+=("ok   gofmt")
fi

step "go vet ./..."
if "$go" vet ./...; then steps+=("ok   go vet"); else steps+=("FAIL go vet"); status=1; fi

if [[ -f "$ddb_dir/DynamoDBLocal.jar" ]]; then
	step "starting DynamoDB Local"
	endpoint=$(scripts/dynamodb-local.sh start "$ddb_dir")
	cleanup+=('scripts/dynamodb-local.sh stop "$ddb_dir"')
	# store/dynamo's tests run against this endpoint when it is set.
	export DYNAMERGE_DYNAMODB_ENDPOINT=$endpoint
	echo "DYNAMERGE_DYNAMODB_ENDPOINT=$endpoint"
	steps+=("ok   DynamoDB Local at $endpoint")
else
	# Without it the DynamoDB tests skip themselves; a summary that still
	# said PASS would hide that.
	echo "DynamoDB Local is not in $ddb_dir (make deps-dynamodb fetches it)"
	steps+=("FAIL DynamoDB Local missing: its tests were skipped"); status=1
fi

step "go test -timeout $timeout $*"
set +e
"$go" test -timeout "$timeout" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -eq 0 ]]; then steps+=("ok   go test"); else steps+=("FAIL go test (exit $rc)"); status=1; fi

if [[ -n "${FUZZTIME_TEST:-}" && "${FUZZTIME_TEST}" != 0 ]]; then
	step "fuzz: every target for $FUZZTIME_TEST"
	if scripts/fuzz.sh "$go" "$FUZZTIME_TEST" ./...; then steps+=("ok   fuzz ($FUZZTIME_TEST per target)"); else steps+=("FAIL fuzz"); status=1; fi
fi

if [[ "${BROWSER_TESTS:-}" == 1 ]]; then
	# Both suites build the server from this checkout; build it once.
	bindir=$(mktemp -d)
	cleanup+=('rm -rf "$bindir"')
	export DYNAMERGE_BIN=$bindir/dynamerge
	"$go" build -o "$DYNAMERGE_BIN" ./cmd/dynamerge

	step "browser library: typecheck and unit tests (Node, fake-indexeddb, real server)"
	if (cd browser && npm test); then steps+=("ok   browser unit"); else steps+=("FAIL browser unit"); status=1; fi

	step "browser end-to-end (real Chromium)"
	if (cd browser/e2e && npm test); then steps+=("ok   browser e2e"); else steps+=("FAIL browser e2e"); status=1; fi
fi

step "summary ($((SECONDS - start))s; full log in $log)"
printf '  %s\n' "${steps[@]}"
passed=$(grep -cE '^ok[[:space:]]' "$log" || true)
failed=$(grep -E '^FAIL[[:space:]]' "$log" | awk '{print $2}' | sort -u || true)
notests=$(grep -cE '^\?[[:space:]].*\[no test files\]' "$log" || true)
echo "  packages: $passed passed, $(grep -c . <<<"$failed" || true) failed, $notests without tests"
if [[ -n "$failed" ]]; then
	echo "  failed packages:"; sed 's/^/    /' <<<"$failed"
	echo "  failed tests:"
	grep -E '^[[:space:]]*--- FAIL' "$log" | sed 's/^[[:space:]]*/    /' | sort -u | head -50
fi
skipped=$(grep -cE '^[[:space:]]*--- SKIP' "$log" || true)
[[ $skipped -gt 0 ]] && echo "  skipped tests: $skipped (run with -v to see why)"
if [[ $status -eq 0 ]]; then echo "PASS"; else echo "FAIL"; fi
exit $status
