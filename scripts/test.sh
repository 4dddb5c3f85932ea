#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs
# every test. Slow fault, soak and benchmark runs are behind build tags and
# flags (see README) and are not part of this command.
set -euo pipefail
cd "$(dirname "$0")/.."

# xmllint (libxml2-utils) validates exports against the PIFU schema; curl runs
# the README's sandbox lines.
missing=()
command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
	echo "test.sh: installing ${missing[*]}" >&2
	if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for tool in xmllint curl; do
	command -v $tool >/dev/null || { echo "test.sh: $tool still missing after install" >&2; exit 1; }
done

go mod download
go vet ./...
exec go test -count=1 -timeout 15m "$@" ./...
