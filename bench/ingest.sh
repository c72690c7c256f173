#!/usr/bin/env bash
# Single-alert ingest under a steady load: wrk on loopback holding RATE POSTs per second
# (paced by bench/ingest.lua) for SECONDS against `gridwatch serve` with 2 workers. Prints
# the achieved rate, p99 latency, errors, and whether the database holds exactly the
# acknowledged alerts. Target: 1,000/s for 20 s, p99 <= 15 ms, zero errors.
#   bench/ingest.sh [rate] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RATE=${1:-1000}
SECONDS_PER_RUN=${2:-20}
command -v wrk >/dev/null || { echo "error: wrk is missing: apt-get install wrk" >&2; exit 2; }
# a fresh database with the demo county's boundaries, cameras and teams, no alerts
export GRIDWATCH_DATABASE_URL=$($BIN/python bench/common.py fresh)
export GRIDWATCH_KEY=$($BIN/gridwatch keys create --role ingest --name "bench ingest" 2>/dev/null)
export RUN_ID=$(date +%s)
export RATE
export CAMERAS=$(psql "$GRIDWATCH_DATABASE_URL" -Atc "SELECT count(*) FROM cameras WHERE active")
PORT=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$BIN/gridwatch serve --port "$PORT" --workers 2 >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
export THREADS=2 RUN_SECONDS=$SECONDS_PER_RUN
wrk -t$THREADS -c32 -d"${SECONDS_PER_RUN}s" --latency -s bench/ingest.lua "http://127.0.0.1:$PORT" > bench/results/ingest.tmp
STORED=$(psql "$GRIDWATCH_DATABASE_URL" -Atc "SELECT count(*) FROM alerts WHERE source = 'bench-$RUN_ID'")
$BIN/python bench/ingest_report.py bench/results/ingest.tmp "$STORED" "$RATE" "$SECONDS_PER_RUN"
cp bench/results/ingest.tmp /tmp/ingest_last.txt; rm -f bench/results/ingest.tmp
