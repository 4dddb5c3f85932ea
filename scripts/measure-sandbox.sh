#!/usr/bin/env bash
# Measures how fast cmd/sandbox serves the export of a large municipality
# (size preset "large") to curl, and the sandbox's peak RSS while it does.
# Targets: 50 MB/s or more, peak RSS under 100 MiB.
#
#   scripts/measure-sandbox.sh [runs]      (default 3 runs; port from $PORT or 28765)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
port=${PORT:-28765}
base=http://127.0.0.1:$port
tenant=5b1f3c9e-2d4a-4e6f-8a7b-9c0d1e2f3a4b
work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/sandbox" ./cmd/sandbox
cat >"$work/sandbox.yaml" <<EOF
applications:
  - client_id: measure
    client_secret: measure-secret
    scopes: [vfsapi:lmsexport]
    tenants: [$tenant]
tenants:
  - id: $tenant
    name: Storby kommune
    size: large
    seed: 20260101
EOF

"$work/sandbox" --addr "127.0.0.1:$port" --config "$work/sandbox.yaml" --log-level warn 2>"$work/sandbox.log" &
pid=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "$base/.well-known/jwks.json" && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/sandbox.log" >&2; exit 1; }
	sleep 0.1
done

token() {
	curl -s -d grant_type=client_credentials -d client_id=measure -d client_secret=measure-secret \
		-d scope=vfsapi:lmsexport -d tenant_ID=$tenant "$base/connect/token" |
		sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p'
}
tok=$(token)
[ -n "$tok" ] || { echo "measure-sandbox: no token" >&2; exit 1; }

echo "sandbox pid $pid, RSS after start: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
for i in $(seq "$runs"); do
	# size_download in bytes, speed_download in bytes per second
	read -r size speed < <(curl -s -o /dev/null -H "Authorization: Bearer $tok" \
		-w '%{size_download} %{speed_download}\n' "$base/api/external/lms/pifu")
	awk -v i="$i" -v s="$size" -v v="$speed" \
		'BEGIN { printf "run %d: %d bytes (%.1f MB) at %.1f MB/s\n", i, s, s / 1e6, v / 1e6 }'
done
# A later generation: the generator first moves its state forward.
curl -s -o /dev/null -X POST "$base/_sandbox/tenants/$tenant/advance"
read -r size speed < <(curl -s -o /dev/null -H "Authorization: Bearer $tok" \
	-w '%{size_download} %{speed_download}\n' "$base/api/external/lms/pifu")
awk -v s="$size" -v v="$speed" \
	'BEGIN { printf "after advance (generation 1): %d bytes (%.1f MB) at %.1f MB/s\n", s, s / 1e6, v / 1e6 }'
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
awk -v k="$hwm" 'BEGIN { printf "peak RSS (VmHWM): %.1f MiB\n", k / 1024 }'
