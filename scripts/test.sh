#!/usr/bin/env bash
# test.sh GO TIMEOUT DDB_DIR GO_TEST_ARGS...: the body of `make test`.
# gofmt, go vet, then go test with the given arguments (DynamoDB Local
# running when it was fetched), and a summary at the end. The exit status is
# non-zero when any step failed.
set -euo pipefail
go=$1 timeout=$2 ddb_dir=$3
shift 3
cd "$(dirname "$0")/.."
mkdir -p .cache
log=.cache/test.log
start=$SECONDS
status=0
declare -a steps=()

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
	trap 'scripts/dynamodb-local.sh stop "$ddb_dir"' EXIT
	# store/dynamo's tests run against this endpoint when it is set.
	export DYNAMERGE_DYNAMODB_ENDPOINT=$endpoint
	echo "DYNAMERGE_DYNAMODB_ENDPOINT=$endpoint"
fi

step "go test -timeout $timeout $*"
set +e
"$go" test -timeout "$timeout" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -eq 0 ]]; then steps+=("ok   go test"); else steps+=("FAIL go test (exit $rc)"); status=1; fi

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
