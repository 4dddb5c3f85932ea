#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each, so that a new
# crash fails CI: each `func FuzzX(f *testing.F)` in a _test.go file, one
# `go test -fuzz` run per target (go test fuzzes one target per run).
# FUZZTIME sets the time per target (default 20s). Minimizing a new input is
# capped at 5s (go test's default, 60s, can spend a short run's whole time
# minimizing one input grown from a large seed). A failure leaves its input
# under the package's testdata/fuzz/<FuzzX>/ to commit as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-20s}"
targets=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	while read -r file; do
		dir=$(dirname "$file")
		grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r name; do
			echo "$dir $name"
		done
	done | sort)
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
n=$(echo "$targets" | wc -l)
echo "fuzz.sh: $n targets, $fuzztime each"
failed=0
while read -r dir name; do
	echo "== $dir $name"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$dir"; then
		echo "fuzz.sh: $name in $dir failed" >&2
		failed=1
	fi
done <<<"$targets"
exit $failed
