#!/usr/bin/env bash
# Single-alert ingest under a steady load: wrk on loopback holding RATE POSTs per second
# (paced by bench/ingest.lua) for SECONDS against gridwatch with 2 workers; first against
# the baseline in the same server (bench/baseline_app.py: the same request, validated, then
# an empty transaction instead of ingest), then against POST /alerts. Prints both, the
# ratio of their p99s, errors, and whether the database holds exactly the acknowledged
# alerts. Targets: 1,000/s, 0 errors, stored == acknowledged, p99 <= 3x the baseline's.
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
export RATE
export CAMERAS=$(psql "$GRIDWATCH_DATABASE_URL" -Atc "SELECT count(*) FROM cameras WHERE active")
PORT=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$BIN/uvicorn --factory --app-dir bench baseline_app:create --host 127.0.0.1 --port "$PORT" --workers 2 \
  --no-access-log --log-level warning &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
export THREADS=2
RUN_ID="$(date +%s)-warm-up" RUN_SECONDS=3 INGEST_PATH=/alerts \
  wrk -t$THREADS -c32 -d3s -s bench/ingest.lua "http://127.0.0.1:$PORT" >/dev/null  # both paths warm
export RUN_SECONDS=$SECONDS_PER_RUN
for run in baseline ours; do
  export RUN_ID="$(date +%s)-$run"
  INGEST_PATH=$([ $run = ours ] && echo /alerts || echo /baseline/alerts) \
    wrk -t$THREADS -c32 -d"${SECONDS_PER_RUN}s" --latency -s bench/ingest.lua "http://127.0.0.1:$PORT" \
    > "bench/results/ingest-$run.tmp"
done
STORED=$(psql "$GRIDWATCH_DATABASE_URL" -Atc "SELECT count(*) FROM alerts WHERE source = 'bench-$RUN_ID'")
$BIN/python bench/ingest_report.py bench/results/ingest-ours.tmp bench/results/ingest-baseline.tmp "$STORED" \
  "$RATE" "$SECONDS_PER_RUN"
rm -f bench/results/ingest-ours.tmp bench/results/ingest-baseline.tmp
