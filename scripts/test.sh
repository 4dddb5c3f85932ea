#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs
# every test. Slow fault, soak and benchmark runs are behind build tags and
# flags (see README) and are not part of this command.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v xmllint >/dev/null 2>&1; then
	echo "test.sh: xmllint is missing; installing libxml2-utils" >&2
	if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libxml2-utils >/dev/null
fi
command -v xmllint >/dev/null || { echo "test.sh: xmllint still missing after install" >&2; exit 1; }

go mod download
go vet ./...
exec go test -count=1 -timeout 15m "$@" ./...
