#!/usr/bin/env bash
# /grids/at under load: wrk on loopback, 32 connections, random points of the county's bbox,
# against our in-memory index and against a baseline endpoint that asks PostGIS once per
# request (bench/baseline_app.py). Both run with 2 workers, one after the other.
#   bench/lookup.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
SECONDS_PER_RUN=${1:-15}
WORKERS=2
command -v wrk >/dev/null || { echo "error: wrk is missing: apt-get install wrk" >&2; exit 2; }
$BIN/gridwatch demo load >/dev/null 2>&1
export GRIDWATCH_KEY=$($BIN/gridwatch keys create --role viewer --name "bench lookup" 2>/dev/null)
# one key sends thousands of requests a second here: the bench measures lookups, not the per-key limit
export GRIDWATCH_RATE_PER_S=1000000
PORT=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

run() {  # $1: label, $2: path, then the server command
  local label=$1 path=$2; shift 2
  "$@" --host 127.0.0.1 --port "$PORT" --workers $WORKERS --no-access-log --log-level warning &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
  LOOKUP_PATH=$path wrk -t2 -c32 -d3s -s bench/lookup.lua "http://127.0.0.1:$PORT" >/dev/null  # warm-up
  LOOKUP_PATH=$path wrk -t2 -c32 -d"${SECONDS_PER_RUN}s" --latency -s bench/lookup.lua \
    "http://127.0.0.1:$PORT" > "bench/results/$label.tmp"
  kill $pid; wait $pid 2>/dev/null || true
}

run ours /grids/at $BIN/uvicorn --factory gridwatch.api.app:create_app
run baseline /baseline/grids/at $BIN/uvicorn --factory --app-dir bench baseline_app:create
$BIN/python bench/lookup_report.py bench/results/ours.tmp bench/results/baseline.tmp
rm -f bench/results/ours.tmp bench/results/baseline.tmp
