#!/usr/bin/env bash
# OGC API Features and vector tiles: gridwatch against tipg (developmentseed's OGC Features and
# Tiles server for PostGIS, installed from PyPI into a virtualenv of its own), on the same
# database over the same loopback TCP, 2 workers each, one server at a time; the same wrk load
# (32 connections) on four requests: 10 grids, 100 grids in a bbox, one grid, a z12 tile.
#   bench/ogc.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
TIPG=.venv-tipg
SECONDS_PER_RUN=${1:-10}
command -v wrk >/dev/null || { echo "error: wrk is missing: apt-get install wrk" >&2; exit 2; }
[ -x $TIPG/bin/uvicorn ] || { echo ">> installing tipg into $TIPG"; python3 -m venv $TIPG;
  $TIPG/bin/pip install -q --progress-bar off tipg 'uvicorn[standard]'; }
$BIN/gridwatch demo load >/dev/null 2>&1
KEY=$($BIN/gridwatch keys create --role viewer --name "bench ogc" 2>/dev/null)
# the same transport for both: tipg takes no Unix-socket URL
TCP=$($BIN/python -c "from gridwatch.db import embedded_cluster as c; s = c().state()
print(f'postgresql://gridwatch:{s.password}@127.0.0.1:{s.port}/gridwatch')")
export GRIDWATCH_RATE_PER_S=1000000  # one key sends thousands of requests a second here
PORT=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
read -r CODE X Y < <($BIN/python -c "
import math, psycopg
from gridwatch.db import database_url
code, lon, lat = psycopg.connect(database_url()).execute(
    'SELECT code, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM grids ORDER BY code LIMIT 1').fetchone()
n = 2 ** 12
print(code, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))")
BBOX=100.9,36.85,101.05,36.95
mkdir -p bench/results

serve() {  # $1: label, $2: health path, then the server command; runs the four loads
  local label=$1 health=$2; shift 2
  "$@" --host 127.0.0.1 --port "$PORT" --workers 2 --no-access-log --log-level warning &
  local pid=$!
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT$health" -H "Authorization: Bearer $KEY" >/dev/null && break
    sleep 0.2; done
  for case in "${CASES[@]}"; do
    local name=${case%%=*} path=${case#*=}
    wrk -t2 -c32 -d2s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT$path" >/dev/null  # warm-up
    wrk -t2 -c32 -d"${SECONDS_PER_RUN}s" --latency -H "Authorization: Bearer $KEY" \
      "http://127.0.0.1:$PORT$path" > "bench/results/ogc-$label-$name.tmp"
  done
  kill $pid; wait $pid 2>/dev/null || true
}

CASES=("items10=/ogc/collections/grids/items?limit=10" "items100bbox=/ogc/collections/grids/items?limit=100&bbox=$BBOX"
       "feature=/ogc/collections/grids/items/$CODE" "tile12=/tiles/grids/12/$X/$Y.mvt")
GRIDWATCH_DATABASE_URL=$TCP serve gridwatch /health $BIN/uvicorn --factory gridwatch.api.app:create_app
CASES=("items10=/collections/public.grids/items?limit=10"
       "items100bbox=/collections/public.grids/items?limit=100&bbox=$BBOX"
       "feature=/collections/public.grids/items/$CODE"
       "tile12=/collections/public.grids/tiles/WebMercatorQuad/12/$X/$Y")
DATABASE_URL=$TCP TIPG_DB_SCHEMAS='["public"]' \
  serve tipg /collections $TIPG/bin/uvicorn tipg.main:app
$BIN/python bench/ogc_report.py
rm -f bench/results/ogc-*.tmp
