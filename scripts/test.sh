#!/usr/bin/env bash
# test.sh GO TIMEOUT DDB_DIR PKGS...: the body of `make test`.
#
# DEPS when set (a command, e.g. make deps; the run stops if it fails),
# gofmt, then every check as a job, at most TEST_JOBS at once (default: the
# number of cores), the slowest first, with DynamoDB Local running (fetched
# by make deps):
#   - go build $GO_TEST_FLAGS' build flags ./... first, so that the test jobs
#     do not compile the same dependencies side by side;
#   - go test GO_TEST_FLAGS (default -race -count=1) per package, TIMEOUT
#     per package, TEST_ARGS passed to the test binaries (e.g. -long); the
#     packages that use DynamoDB Local one at a time;
#   - go vet ./...;
#   - with FUZZTIME_TEST set (e.g. 5s), every Fuzz target for that long;
#   - with BROWSER_TESTS=1, the browser library's unit tests and the
#     real-Chromium tests, against one server binary built for both; the
#     latter build the React example from the packed library first
#     (browser/examples/build.sh).
# Each job's line is printed as it ends, with its time and the time since
# the start; a line every HEARTBEAT seconds (30) names the jobs still
# running. A job's output is shown when it fails. Everything, every job's
# whole output included, is in .cache/test.log. Every job runs even when
# another failed; the exit status is non-zero when any failed. The jobs'
# times are kept in .cache/test-times for the next run's order.
set -euo pipefail
go=$1 timeout=$2 ddb_dir=$3
shift 3
pkgs=("$@")
cd "$(dirname "$0")/.."
mkdir -p .cache
log=.cache/test.log
times=.cache/test-times
read -r -a test_flags <<<"${GO_TEST_FLAGS:--race -count=1}"
read -r -a test_args <<<"${TEST_ARGS:-}"
slots=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
heartbeat=${HEARTBEAT:-30}

# Everything printed goes to the log too (fd 3 is the terminal alone, fd 4
# the log alone); job outputs go to the log whole.
: >"$log"
exec 3>&1 4>>"$log"
exec > >(tee -a /dev/fd/4) 2>&1

start=$SECONDS
status=0
declare -a steps=()
work=$(mktemp -d)
cleanup=('rm -rf "$work"')
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT

clock() { local s=$((SECONDS - start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
step() { printf '\n==> [%s] %s\n' "$(clock)" "$*"; }
ok() { steps+=("ok   $*"); }
fail() { steps+=("FAIL $*"); status=1; }

if [[ -n "${DEPS:-}" ]]; then
	step "$DEPS"
	if ! eval "$DEPS"; then echo "FAIL: $DEPS"; exit 1; fi
	ok deps
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*' -not -path '*/node_modules/*'))
if [[ -n "$unformatted" ]]; then
	echo "not gofmt'd:"; echo "$unformatted"
	fail gofmt
else
	ok gofmt
fi

if [[ -f "$ddb_dir/DynamoDBLocal.jar" ]]; then
	step "starting DynamoDB Local"
	endpoint=$(scripts/dynamodb-local.sh start "$ddb_dir")
	cleanup+=('scripts/dynamodb-local.sh stop "$ddb_dir"')
	# store/dynamo's tests run against this endpoint when it is set.
	export DYNAMERGE_DYNAMODB_ENDPOINT=$endpoint
	echo "DYNAMERGE_DYNAMODB_ENDPOINT=$endpoint"
	ok "DynamoDB Local at $endpoint"
else
	# Without it the DynamoDB tests skip themselves; a summary that still
	# said PASS would hide that.
	echo "DynamoDB Local is not in $ddb_dir (make deps-dynamodb fetches it)"
	fail "DynamoDB Local missing: its tests were skipped"
fi

# ---- the jobs -------------------------------------------------------------

declare -A job_cmd=() job_after=() job_kind=() job_group=()
declare -a job_order=()
# job NAME KIND AFTER COMMAND [GROUP]: a job runs COMMAND (evaluated by
# bash) once the job AFTER (or none: -) has ended, whatever its result, and
# while no other job of its GROUP runs.
job() { job_order+=("$1"); job_kind[$1]=$2; job_after[$1]=$3; job_cmd[$1]=$4; job_group[$1]=${5:-}; }

build_flags=()
for f in "${test_flags[@]}"; do
	case $f in -race | -tags=* | -gcflags=* | -ldflags=* | -cover | -covermode=*) build_flags+=("$f") ;; esac
done
first_build="go build${build_flags[*]:+ ${build_flags[*]}} ./..."
job "$first_build" build - '"$go" build "${build_flags[@]}" "${pkgs[@]}"'

# The packages with tests, by directory relative to the module; the others
# only count.
mod=$("$go" list -m)
declare -a test_pkgs=()
notests=0
while read -r path has; do
	if [[ $has == yes ]]; then test_pkgs+=(".${path#"$mod"}"); else notests=$((notests + 1)); fi
done < <("$go" list -f '{{.ImportPath}} {{if or .TestGoFiles .XTestGoFiles}}yes{{else}}no{{end}}' "${pkgs[@]}")

for p in "${test_pkgs[@]}"; do
	# The packages that use DynamoDB Local take turns: it is one Java
	# process, and with two of them at once TestMultiProcessDynamo (e2e)
	# saw no event at all while store/dynamo/integration ran.
	group=
	if grep -qs 'dynamotest\|DYNAMERGE_DYNAMODB_ENDPOINT' "$p"/*_test.go; then group=dynamodb; fi
	job "go test $p" gotest "$first_build" \
		'"$go" test -timeout "$timeout" "${test_flags[@]}" '"$(printf '%q' "$p")"' ${test_args[@]:+-args "${test_args[@]}"}' "$group"
done

job "go vet ./..." other - '"$go" vet "${pkgs[@]}"'

if [[ -n "${FUZZTIME_TEST:-}" && "${FUZZTIME_TEST}" != 0 ]]; then
	# One job: the targets run one after the other, and their instrumented
	# builds share their dependencies.
	job "fuzz: every target for $FUZZTIME_TEST" fuzz - 'scripts/fuzz.sh "$go" "$FUZZTIME_TEST" "${pkgs[@]}"'
fi

if [[ "${BROWSER_TESTS:-}" == 1 ]]; then
	# Both suites run the server built from this checkout; build it once.
	export DYNAMERGE_BIN=$work/dynamerge
	bin_build="go build -o DYNAMERGE_BIN ./cmd/dynamerge"
	# After the race build, which the longest jobs wait for: on an empty
	# build cache the two would share the cores for minutes.
	job "$bin_build" build "$first_build" '"$go" build -o "$DYNAMERGE_BIN" ./cmd/dynamerge'
	job "browser library: typecheck and unit tests (Node, fake-indexeddb, real server)" browser "$bin_build" '(cd browser && npm test)'
	# Includes npm pack, the React example's install (cached) and its
	# build: test/react-example.test.mjs runs browser/examples/build.sh.
	job "browser end-to-end (real Chromium)" browser "$bin_build" '(cd browser/e2e && npm test)'
fi

# Start order: the builds, then the longest jobs of the last run first (a
# fresh clone knows from the defaults below), so that the last minutes are
# not one long job on one core.
declare -A est=(
	["go test ./e2e"]=270 ["go test ./crdt"]=190 ["go test ./store/dynamo/integration"]=100
	["go test ./server"]=30 ["go test ./store/dynamo"]=25
	["browser end-to-end (real Chromium)"]=180
	["browser library: typecheck and unit tests (Node, fake-indexeddb, real server)"]=60
	["go vet ./..."]=60
)
if [[ -f $times ]]; then
	while IFS=$'\t' read -r secs name; do est[$name]=$secs; done <"$times"
fi
mapfile -t queue < <(for n in "${job_order[@]}"; do
	case ${job_kind[$n]} in
	build) rank=999999 ;;
	fuzz) rank=${est[$n]:-60} ;; # builds instrumented binaries, then 7 targets
	*) rank=${est[$n]:-10} ;;
	esac
	printf '%s\t%s\n' "$rank" "$n"
done | sort -t $'\t' -k1,1nr -s | cut -f2-)

# ---- the scheduler ----------------------------------------------------------

step "${#queue[@]} jobs, $slots at once (TEST_JOBS), longest first; go test: -timeout $timeout ${test_flags[*]}${test_args[*]:+ -args ${test_args[*]}}"
declare -A pid_of=() started=() ended=() result=()
out_of() { printf '%s/%s.out' "$work" "$(tr -c 'A-Za-z0-9._-' _ <<<"$1")"; }
: >"$work/times"
go_outputs=()
hb_pid=
while ((${#queue[@]} > 0 || ${#pid_of[@]} > 0)); do
	# Start what may start, in queue order.
	rest=()
	for n in "${queue[@]}"; do
		a=${job_after[$n]} g=${job_group[$n]}
		busy=
		if [[ -n $g ]]; then
			for r in "${!pid_of[@]}"; do [[ ${job_group[$r]} == "$g" ]] && busy=1; done
		fi
		if ((${#pid_of[@]} < slots)) && [[ -z $busy ]] && [[ $a == - || -n ${ended[$a]:-} ]]; then
			(eval "${job_cmd[$n]}") >"$(out_of "$n")" 2>&1 </dev/null &
			pid_of[$n]=$!
			started[$n]=$SECONDS
		else
			rest+=("$n")
		fi
	done
	queue=("${rest[@]}")
	if ((${#pid_of[@]} == 0)); then
		echo "test.sh: jobs waiting for a job that is not there: ${queue[*]}"
		fail "jobs never started: ${queue[*]}"
		break
	fi
	[[ -n $hb_pid ]] || { sleep "$heartbeat" & hb_pid=$!; }
	set +e
	wait -n -p done_pid "${pid_of[@]}" "$hb_pid"
	rc=$?
	set -e
	if [[ $done_pid == "$hb_pid" ]]; then
		hb_pid=
		running=
		for n in "${!pid_of[@]}"; do running+="${running:+; }$n ($((SECONDS - started[$n]))s)"; done
		printf '     [%s] running: %s; %d waiting\n' "$(clock)" "$running" "${#queue[@]}"
		continue
	fi
	for n in "${!pid_of[@]}"; do [[ ${pid_of[$n]} == "$done_pid" ]] && break; done
	unset -v 'pid_of[$n]' # quoted: the subscript is expanded once
	ended[$n]=1
	secs=$((SECONDS - started[$n]))
	printf '%s\t%s\n' "$secs" "$n" >>"$work/times"
	out=$(out_of "$n")
	[[ ${job_kind[$n]} == gotest ]] && go_outputs+=("$out")
	{ printf '\n==> %s (exit %d, %ds)\n' "$n" "$rc" "$secs"; cat "$out"; } >&4
	if [[ $rc -eq 0 ]]; then
		printf 'ok   %-60s %4ds  [%s]\n' "$n" "$secs" "$(clock)"
		ok "$n (${secs}s)"
	else
		printf 'FAIL %-60s %4ds  [%s], exit %d:\n' "$n" "$secs" "$(clock)" "$rc"
		sed 's/^/     | /' "$out" >&3
		fail "$n (exit $rc)"
	fi
done
[[ -z $hb_pid ]] || kill "$hb_pid" 2>/dev/null || true
sort -t $'\t' -k1,1nr "$work/times" | awk -F'\t' '{print $1 "\t" $2}' >"$times" || true

# ---- summary ----------------------------------------------------------------

step "summary ($(clock); full log in $log)"
printf '  %s\n' "${steps[@]}"
all_go=$work/go-test.all
cat /dev/null "${go_outputs[@]}" >"$all_go"
passed=$(grep -cE '^ok[[:space:]]' "$all_go" || true)
failed=$(grep -E '^FAIL[[:space:]]' "$all_go" | awk '{print $2}' | sort -u || true)
echo "  packages: $passed passed, $(grep -c . <<<"$failed" || true) failed, $notests without tests"
if [[ -n "$failed" ]]; then
	echo "  failed packages:"; sed 's/^/    /' <<<"$failed"
	echo "  failed tests:"
	grep -E '^[[:space:]]*--- FAIL' "$all_go" | sed 's/^[[:space:]]*/    /' | sort -u | head -50
fi
skipped=$(grep -cE '^[[:space:]]*--- SKIP' "$all_go" || true)
[[ $skipped -gt 0 ]] && echo "  skipped tests: $skipped (run with -v to see why)"
if [[ $status -eq 0 ]]; then echo "PASS"; else echo "FAIL"; fi
exit $status
