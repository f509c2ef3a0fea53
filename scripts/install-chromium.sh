#!/usr/bin/env bash
# install-chromium.sh: make sure Debian's chromium is installed for the
# browser tests (playwright-core drives /usr/bin/chromium, the path the
# tests use). Idempotent: a no-op when it is there. Installing needs root
# and apt; it runs non-interactively (CI has no terminal).
set -euo pipefail
bin=${DYNAMERGE_CHROMIUM:-/usr/bin/chromium}
if [[ -x "$bin" ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "install-chromium: $bin is missing; install it with: sudo apt-get install -y chromium" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "install-chromium: $bin is missing and this is not a Debian-like system (no apt-get); install Chromium there or set DYNAMERGE_CHROMIUM" >&2
	exit 1
fi
echo "install-chromium: apt-get install chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No recommends: the tests need the browser, not its desktop integration.
apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 chromium >/dev/null
if [[ ! -x "$bin" ]]; then
	echo "install-chromium: apt-get installed chromium but $bin is still missing" >&2
	exit 1
fi
